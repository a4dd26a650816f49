import fc from 'fast-check';
import { createFrameDecoder, decodeLargeFrame, type DecodedFrame } from './frame-decoder.js';
import { encodeFrame, encodeFrameText } from './frame-encoder.js';
import { rawFrame } from './test-support/host-harness.js';

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const offsets = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const offset of offsets) {
    pieces.push(bytes.subarray(start, offset));
    start = offset;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

function messagesOf(frames: DecodedFrame[]): unknown[] {
  return frames.map((frame) => (frame.kind === 'message' ? frame.value : frame));
}

describe('frame codec', () => {
  it('hands frames over deferAboveBytes back undecoded, and decodeLargeFrame decodes them as push does the others', async () => {
    const value = { id: 'documents.ingest', request_id: 'big', payload: { text: 'é "quoted" 🙂\n'.repeat(40_000), list: [1, 2, 3] } };
    const bodies = [
      Buffer.from(JSON.stringify(value), 'utf8'),
      Buffer.concat([Buffer.from(JSON.stringify(value), 'utf8').subarray(0, 300_000), Buffer.from([0xc3, 0x28])]),
      Buffer.from(`${JSON.stringify(value).slice(0, -1)},}`, 'utf8'),
    ];
    const stream = Buffer.concat(bodies.map((body) => rawFrame(body)));
    const deferred = createFrameDecoder({ deferAboveBytes: 1000 }).push(stream);
    expect(deferred.map((frame) => frame.kind)).toEqual(['large', 'large', 'large']);
    const decoded = await Promise.all(deferred.map((frame) => decodeLargeFrame(frame as DecodedFrame & { kind: 'large' })));
    const direct = createFrameDecoder().push(stream);
    expect(decoded.map((frame) => (frame.kind === 'malformed' ? [frame.kind, frame.error.code, frame.byteLength] : frame))).toEqual(
      direct.map((frame) => (frame.kind === 'malformed' ? [frame.kind, frame.error.code, frame.byteLength] : frame)),
    );
    expect(messagesOf(decoded)[0]).toEqual(value);
    expect(decoded.map((frame) => (frame.kind === 'malformed' ? frame.error.message.split(':')[0] : frame.kind))).toEqual([
      'message',
      'Malformed frame',
      'Malformed JSON',
    ]);
  });

  it('encodes a 32-bit little-endian byte length followed by UTF-8 JSON', () => {
    const frame = encodeFrame({ text: 'é' });
    expect([...frame.subarray(0, 4)]).toEqual([13, 0, 0, 0]);
    expect(frame.subarray(4).toString('utf8')).toBe('{"text":"é"}');
    expect(encodeFrameText('null')).toEqual(Buffer.from([4, 0, 0, 0, 0x6e, 0x75, 0x6c, 0x6c]));
  });

  it('decodes any sequence of messages under any split of the byte stream', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (values, cuts) => {
        const normalised = values.map((value) => JSON.parse(JSON.stringify(value)) as unknown);
        const stream = Buffer.concat(values.map((value) => encodeFrame(value)));
        const decoder = createFrameDecoder();
        const decoded = splitAt(stream, cuts).flatMap((piece) => decoder.push(piece));
        expect(messagesOf(decoded)).toEqual(normalised);
        expect(decoder.bufferedBytes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes a stream fed one byte at a time', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 1, maxLength: 5 }), (values) => {
        const stream = Buffer.concat(values.map((value) => encodeFrame(value)));
        const decoder = createFrameDecoder();
        const decoded: DecodedFrame[] = [];
        for (let index = 0; index < stream.length; index += 1) decoded.push(...decoder.push(stream.subarray(index, index + 1)));
        expect(messagesOf(decoded)).toEqual(values.map((value) => JSON.parse(JSON.stringify(value)) as unknown));
      }),
      { numRuns: 100 },
    );
  });

  it('decodes many frames delivered in one chunk and reports partial frames as buffered', () => {
    const decoder = createFrameDecoder();
    const stream = Buffer.concat([encodeFrame({ a: 1 }), encodeFrame([2]), encodeFrame('three'), encodeFrame({ d: 4 }).subarray(0, 6)]);
    expect(messagesOf(decoder.push(stream))).toEqual([{ a: 1 }, [2], 'three']);
    expect(decoder.bufferedBytes).toBe(6);
    expect(messagesOf(decoder.push(encodeFrame({ d: 4 }).subarray(6)))).toEqual([{ d: 4 }]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('reports invalid UTF-8 and invalid JSON as malformed frames and keeps decoding', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 10 }), (cuts) => {
        const stream = Buffer.concat([
          rawFrame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])),
          rawFrame(Buffer.from('{"unterminated": ', 'utf8')),
          rawFrame(Buffer.alloc(0)),
          encodeFrame({ after: true }),
        ]);
        const decoder = createFrameDecoder();
        const decoded = splitAt(stream, cuts).flatMap((piece) => decoder.push(piece));
        expect(decoded.map((frame) => frame.kind)).toEqual(['malformed', 'malformed', 'malformed', 'message']);
        const [badUtf8, badJson] = decoded;
        expect(badUtf8?.kind === 'malformed' && badUtf8.error.message).toBe('Malformed frame: the message is not valid UTF-8');
        expect(badJson?.kind === 'malformed' && badJson.error.code).toBe('invalid_request');
        expect(badJson?.kind === 'malformed' && badJson.error.message.startsWith('Malformed JSON: ')).toBe(true);
        expect(decoded[3]).toEqual({ kind: 'message', value: { after: true }, byteLength: 14 });
      }),
    );
  });

  it('reports JSON nested deeper than 64 levels, or with an array over 100,000 items, as malformed, as HTTP bodies are', () => {
    const decoder = createFrameDecoder();
    const deep = `${'['.repeat(65)}${']'.repeat(65)}`;
    const long = JSON.stringify({ id: 'embeddings', payload: { input: new Array<number>(100_001).fill(1) } });
    const decoded = decoder.push(Buffer.concat([rawFrame(Buffer.from(deep)), rawFrame(Buffer.from(long)), encodeFrame({ after: true })]));
    expect(decoded.map((frame) => (frame.kind === 'malformed' ? frame.error.message : frame.kind))).toEqual([
      'The JSON message nests deeper than 64 levels',
      'A JSON array in the message has 100001 items; the limit is 100000',
      'message',
    ]);
  });

  it('stops at a declared length above the limit: the stream can no longer be trusted', () => {
    const decoder = createFrameDecoder({ maxFrameBytes: 100 });
    const stream = Buffer.concat([encodeFrame({ ok: 1 }), rawFrame(Buffer.alloc(10), 101), encodeFrame({ ignored: true })]);
    expect(decoder.push(stream)).toEqual([
      { kind: 'message', value: { ok: 1 }, byteLength: 8 },
      { kind: 'oversize', declaredBytes: 101, maxBytes: 100 },
    ]);
    expect(decoder.failed).toBe(true);
    expect(decoder.push(encodeFrame({ later: true }))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('accepts a frame of exactly the limit and the default limit of 64 MiB', () => {
    const body = Buffer.from(JSON.stringify('y'.repeat(98)));
    expect(createFrameDecoder({ maxFrameBytes: 100 }).push(rawFrame(body))).toEqual([{ kind: 'message', value: 'y'.repeat(98), byteLength: 100 }]);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(64 * 1024 * 1024 + 1, 0);
    expect(createFrameDecoder().push(header)).toEqual([{ kind: 'oversize', declaredBytes: 64 * 1024 * 1024 + 1, maxBytes: 64 * 1024 * 1024 }]);
    header.writeUInt32LE(64 * 1024 * 1024, 0);
    expect(createFrameDecoder().push(header)).toEqual([]);
  });

  it('reassembles a 5 MB frame sent in 1000-byte chunks', () => {
    const value = { text: 'z'.repeat(5 * 1024 * 1024) };
    const stream = encodeFrame(value);
    const decoder = createFrameDecoder();
    const decoded: DecodedFrame[] = [];
    for (let start = 0; start < stream.length; start += 1000) decoded.push(...decoder.push(stream.subarray(start, start + 1000)));
    expect(decoded).toHaveLength(1);
    expect(decoded[0]?.kind === 'message' && (decoded[0].value as { text: string }).text.length).toBe(5 * 1024 * 1024);
  });
});
