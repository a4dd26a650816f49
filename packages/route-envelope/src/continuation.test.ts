import fc from 'fast-check';
import { createContinuationReassembler, isContinuationMessage, splitIntoContinuations } from './continuation.js';

describe('continuation messages', () => {
  it('split any JSON text into parts that each fit the limit and reassemble to the original', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 120, max: 600 }), (value, maxBytes) => {
        const json = JSON.stringify({ request_id: 'r1', ok: true, data: value });
        const parts = splitIntoContinuations(json, 'r1', maxBytes);
        for (const [index, part] of parts.entries()) {
          expect(Buffer.byteLength(JSON.stringify(part), 'utf8')).toBeLessThanOrEqual(maxBytes);
          expect(part).toMatchObject({ request_id: 'r1', part: index, parts: parts.length });
        }
        const reassembler = createContinuationReassembler();
        const results = parts.map((part) => reassembler.accept(part));
        expect(results.slice(0, -1).every((result) => result === undefined)).toBe(true);
        expect(results[results.length - 1]).toEqual(JSON.parse(json));
        expect(reassembler.pending).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('never cuts a surrogate pair and counts escaped characters', () => {
    const json = JSON.stringify({ text: '😀"\n\u0001'.repeat(200) });
    const parts = splitIntoContinuations(json, 7, 128);
    for (const part of parts) {
      expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThanOrEqual(128);
      expect(/[\ud800-\udbff]$/.test(part.data_chunk)).toBe(false);
    }
    expect(parts.map((part) => part.data_chunk).join('')).toBe(json);
  });

  it('passes ordinary messages through and rejects parts out of order', () => {
    const reassembler = createContinuationReassembler();
    expect(reassembler.accept({ request_id: 'a', ok: true, data: 1 })).toEqual({ request_id: 'a', ok: true, data: 1 });
    expect(isContinuationMessage({ request_id: 'a', part: 0, parts: 2, data_chunk: '{' })).toBe(true);
    expect(reassembler.accept({ request_id: 'a', part: 0, parts: 2, data_chunk: '{"x"' })).toBeUndefined();
    expect(reassembler.pending).toEqual(['a']);
    expect(() => reassembler.accept({ request_id: 'a', part: 0, parts: 2, data_chunk: ':1}' })).toThrow('Continuation part 0/2 of a arrived out of order');
    expect(reassembler.pending).toEqual([]);
  });
});
