import type { IncomingMessage } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { InvalidRequestError, PayloadTooLargeError, TabAgentError, UnsupportedMediaTypeError, parseJsonYielding } from '@tabagent/values';
import { Decompress as ZstdDecompress } from 'fzstd';

/** Empty bodies mean "no fields" (routes whose request is all optional, or path/query only). */
const emptyBody: unknown = undefined;

/** True for `application/json` and `application/<anything>+json`, parameters ignored. */
export function isJsonContentType(contentType: string): boolean {
  const semicolon = contentType.indexOf(';');
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}

/** Options of `readJsonBody`. */
export interface ReadJsonBodyOptions {
  /**
   * Refuse a body not labelled JSON (415). Set for browser requests (those with an `Origin`): a
   * page's cross-site "simple request" can send text/plain or form bodies without a preflight.
   * Other clients (curl's `-d`, `requests.post(data=...)`) often label JSON wrongly; their body is
   * parsed as JSON whatever its Content-Type, as Ollama and llama-server do.
   */
  requireJsonContentType: boolean;
}

/**
 * Reads and parses a JSON request body, enforcing the size limit while reading (and up front
 * from `Content-Length`), so an oversized body is refused without being buffered. Resolves to
 * `undefined` for an empty body. Rejects with `PayloadTooLargeError` (413),
 * `UnsupportedMediaTypeError` (415) or `InvalidRequestError` (400, malformed JSON).
 *
 * A body with a `Content-Encoding` (gzip, deflate, br, zstd, or a list of them) is decoded as it
 * arrives: the compressed bytes count against `limitBytes`, and so does the output of every
 * decoding step, which stops as soon as it passes the limit (a 64 KiB gzip of 64 MiB of zeros is
 * refused after about 1 MiB of output, never inflated in full).
 */
export function readJsonBody(request: IncomingMessage, limitBytes: number, options: ReadJsonBodyOptions = { requireJsonContentType: true }): Promise<unknown> {
  const lengthHeader = request.headers['content-length'];
  const hasChunkedBody = request.headers['transfer-encoding'] !== undefined;
  const declaredLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
  const contentType = request.headers['content-type'];
  // Checked before the empty-body shortcut: a page's text/plain POST with no body is still refused.
  if (options.requireJsonContentType && (contentType === undefined || !isJsonContentType(contentType))) {
    return Promise.reject(
      new UnsupportedMediaTypeError(
        `Browser requests must send Content-Type: application/json, got ${contentType === undefined ? 'no Content-Type' : JSON.stringify(contentType)}`,
      ),
    );
  }
  if (!hasChunkedBody && (declaredLength === undefined || declaredLength === 0)) return Promise.resolve(emptyBody);
  if (declaredLength !== undefined && !Number.isFinite(declaredLength)) {
    return Promise.reject(new InvalidRequestError('Invalid Content-Length header'));
  }
  if (declaredLength !== undefined && declaredLength > limitBytes) return Promise.reject(tooLarge(limitBytes));
  const encodingHeader = request.headers['content-encoding'];
  if (encodingHeader !== undefined) {
    const codings = parseContentCodings(encodingHeader);
    if (codings instanceof Error) return Promise.reject(codings);
    if (codings.length > 0) return readEncodedJsonBody(request, limitBytes, codings);
  }

  const chunks: Buffer[] = [];
  return readBody(request, limitBytes, (done) => ({
    write: (chunk) => void chunks.push(chunk),
    end: (received) => done(chunks, received),
    close: () => undefined,
  }));
}

/** Where `readBody` hands the request's bytes: kept as they are, or decoded. */
interface BodySink {
  /** The next bytes of the request, already counted against the limit. */
  write(chunk: Buffer): void;
  /** The request's bytes ended, `received` of them. */
  end(received: number): void;
  /** Reading is over (done or failed): release what the sink holds. */
  close(): void;
}

/**
 * Reads a request's bytes into a sink, refusing more than `limitBytes` (413) and a body that
 * breaks off (400); the sink calls `done` with the body's bytes (parsed as JSON here) or `fail`.
 */
function readBody(
  request: IncomingMessage,
  limitBytes: number,
  sinkOf: (done: (chunks: Buffer[], length: number) => void, fail: (error: Error) => void) => BodySink,
): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    let received = 0;
    let settled = false;
    const cleanup = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
      sink.close();
    };
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(error);
    };
    const done = (chunks: Buffer[], length: number): void => {
      if (settled) return;
      settled = true;
      cleanup();
      parseBody(chunks, length, resolve, reject);
    };
    // The sink may call done or fail only once bytes arrive, after this assignment.
    const sink = sinkOf(done, fail);
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limitBytes) {
        fail(tooLarge(limitBytes));
        return;
      }
      sink.write(chunk);
    };
    const onEnd = (): void => {
      if (!settled) sink.end(received);
    };
    const onError = (error: Error): void => fail(new InvalidRequestError('The request body could not be read', { cause: error }));
    const onAborted = (): void => fail(new InvalidRequestError('The client aborted the request body'));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  });
}

/** Parses the bytes read (or decoded) as the JSON body. */
function parseBody(chunks: Buffer[], length: number, resolve: (value: unknown) => void, reject: (error: Error) => void): void {
  const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, length).toString('utf8');
  if (text.trim().length === 0) {
    resolve(emptyBody);
    return;
  }
  // The limits every transport applies (nesting, array length), as `safeParseJson`; a body over
  // 256 KiB is parsed in slices of about 2 ms, so a 16 MiB one does not stall other requests.
  parseJsonYielding(text, { subject: 'body' }).then(
    (parsed) => (parsed.success ? resolve(parsed.value) : reject(parsed.error)),
    (error: unknown) => reject(error instanceof Error ? error : new InvalidRequestError('The request body could not be parsed')),
  );
}

/** The content codings this reader decodes (RFC 9110 section 8.4.1); `x-gzip` is gzip's old alias. */
const decodableCodings = ['gzip', 'x-gzip', 'deflate', 'br', 'zstd'] as const;
type DecodableCoding = (typeof decodableCodings)[number];

/**
 * Each coding adds a decoder (zlib's holds a 32 KiB window and more); no client stacks more than
 * two, and Node accepts 16 KiB of headers, room for thousands of `gzip,` tokens.
 */
const maxContentCodings = 4;

/**
 * The codings of a `Content-Encoding` value in the order they were applied, `identity` and empty
 * items left out; a `UnsupportedMediaTypeError` (415) for one this reader cannot decode.
 */
function parseContentCodings(header: string): DecodableCoding[] | Error {
  const codings: DecodableCoding[] = [];
  for (const item of header.split(',')) {
    const coding = item.trim().toLowerCase();
    if (coding === '' || coding === 'identity') continue;
    if (!(decodableCodings as readonly string[]).includes(coding)) {
      return new UnsupportedMediaTypeError(`Unsupported Content-Encoding ${JSON.stringify(coding)}; this server decodes gzip, deflate, br and zstd`, {
        details: { content_encoding: coding },
      });
    }
    codings.push(coding as DecodableCoding);
  }
  if (codings.length > maxContentCodings) {
    return new UnsupportedMediaTypeError(`Content-Encoding lists ${codings.length} codings; this server decodes at most ${maxContentCodings}`);
  }
  return codings;
}

/** One decoding step: bytes in through `write`/`end`, decoded bytes out through its `DecodingEvents`. */
interface DecodingStage {
  write(chunk: Buffer): void;
  end(): void;
  /** Stops decoding at once; no event follows. */
  destroy(): void;
}

interface DecodingEvents {
  onData: (chunk: Buffer) => void;
  onEnd: () => void;
  /** A `TabAgentError` is final; any other error means the data is corrupt. */
  onError: (error: Error) => void;
}

/**
 * `readJsonBody` for a body with content codings: the request's bytes go through one decoding
 * stage per coding, the last applied decoded first. Every stage's output is capped at
 * `limitBytes` (the decoded body can be no larger than a plain one, and a stack such as
 * `gzip, gzip` cannot inflate a bomb in its middle stage), and past it every stage is destroyed.
 */
function readEncodedJsonBody(request: IncomingMessage, limitBytes: number, codings: readonly DecodableCoding[]): Promise<unknown> {
  return readBody(request, limitBytes, (done, fail) => {
    const decoded: Buffer[] = [];
    let decodedLength = 0;
    let closed = false;
    // Decoding order is the reverse of the order the codings were applied in.
    const order = [...codings].reverse();
    const stages: DecodingStage[] = order.map((coding, index) => {
      let produced = 0;
      const events: DecodingEvents = {
        onData: (chunk) => {
          if (closed) return;
          produced += chunk.length;
          if (produced > limitBytes) {
            fail(decodedTooLarge(limitBytes));
            return;
          }
          const next = stages[index + 1];
          if (next === undefined) {
            decoded.push(chunk);
            decodedLength += chunk.length;
          } else next.write(chunk);
        },
        onEnd: () => {
          if (closed) return;
          const next = stages[index + 1];
          if (next === undefined) done(decoded, decodedLength);
          else next.end();
        },
        onError: (error) => {
          if (TabAgentError.isInstance(error)) fail(error);
          else fail(new InvalidRequestError(`The request body could not be decompressed (${coding}): ${error.message}`, { cause: error }));
        },
      };
      return coding === 'zstd' ? zstdStage(limitBytes, events) : zlibStage(coding, events);
    });
    const first = stages[0] as DecodingStage;
    return {
      write: (chunk) => first.write(chunk),
      // No bytes at all is an empty body, as without a coding (an empty gzip stream is not valid gzip).
      end: (received) => (received === 0 ? done(decoded, 0) : first.end()),
      close: () => {
        closed = true;
        for (const stage of stages) stage.destroy();
      },
    };
  });
}

/**
 * A node:zlib stream: it inflates on the libuv thread pool in chunks of 16 KiB, so a large body
 * does not block the event loop, and `destroy` stops it between two chunks.
 */
function zlibStage(coding: Exclude<DecodableCoding, 'zstd'>, events: DecodingEvents): DecodingStage {
  const stream = coding === 'br' ? createBrotliDecompress() : coding === 'deflate' ? createInflate() : createGunzip();
  stream.on('data', events.onData);
  stream.on('end', events.onEnd);
  stream.on('error', events.onError);
  // The input written is already capped at `limitBytes`, so it is queued without backpressure.
  return { write: (chunk) => void stream.write(chunk), end: () => void stream.end(), destroy: () => void stream.destroy() };
}

/** Thrown from fzstd's output callback to abandon the block being decoded once the stage is destroyed. */
const stopDecoding = new Error('Decoding stopped');

/**
 * zstd through fzstd (node:zlib of Node 20 has none): synchronous, one network chunk per `push`,
 * each decoded block (at most 128 KiB) handed out as it is produced, so the output cap
 * interrupts it at the next block. `ZstdFrameGuard` checks the frames before fzstd sees them.
 */
function zstdStage(limitBytes: number, events: DecodingEvents): DecodingStage {
  const guard = new ZstdFrameGuard(limitBytes);
  let destroyed = false;
  const decompressor = new ZstdDecompress((data) => {
    if (destroyed) throw stopDecoding;
    events.onData(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  /** False when decoding failed or the stage was destroyed meanwhile (by the output cap). */
  const push = (chunk: Uint8Array, final: boolean): boolean => {
    try {
      decompressor.push(chunk, final);
      return !destroyed;
    } catch (error) {
      if (error !== stopDecoding) events.onError(error instanceof Error ? error : new Error(String(error)));
      return false;
    }
  };
  return {
    write: (chunk) => {
      if (destroyed) return;
      const { safeLength, error } = guard.scan(chunk);
      if (error === undefined) {
        push(chunk, false);
        return;
      }
      // The bytes before the offending header still go through: in a zip bomb they pass the
      // output cap first, which makes it the 413 it is rather than a 400.
      if (push(chunk.subarray(0, safeLength), false)) events.onError(error);
    },
    end: () => {
      if (destroyed) return;
      // fzstd parses a truncated frame header at the end (a window read from it included).
      const error = guard.truncation();
      if (error !== undefined) events.onError(error);
      else if (push(new Uint8Array(0), true)) events.onEnd();
    },
    destroy: () => {
      destroyed = true;
    },
  };
}

/**
 * The largest zstd window accepted: RFC 9659 bars HTTP's zstd encoders from larger ones, and
 * fzstd allocates the whole window when it reads a frame header (up to 2 GiB for 6 bytes).
 */
const maxZstdWindowBytes = 8 * 1024 * 1024;
/** zstd's Block_Maximum_Size. */
const maxZstdBlockBytes = 128 * 1024;
const zstdFrameMagic = 0xfd2fb528;
const zstdSkippableFrameMagic = 0x184d2a50;

/**
 * Reads zstd frame and block headers ahead of fzstd, which trusts them. A single-segment frame's
 * window is its content size, refused (413) past `limitBytes`; any other window past 8 MiB is
 * refused. fzstd also slides its whole window for every block it decodes, so 4-byte blocks under
 * an 8 MiB window would cost 2 million times their size: the windows allocated and slid are
 * charged against a budget that data with ordinary 128 KiB blocks stays well within (64 times
 * `limitBytes` for blocks of 128 KiB under 8 MiB windows, plus 64 more windows).
 */
class ZstdFrameGuard {
  /** Bytes of the frame or block header being read. */
  private readonly header: number[] = [];
  /** False while the next header is a frame's, true while it is a block's. */
  private inFrame = false;
  private skipBytes = 0;
  private windowBytes = 0;
  private hasChecksum = false;
  private work = 0;
  private readonly workBudget: number;

  constructor(private readonly limitBytes: number) {
    this.workBudget = 64 * limitBytes + 64 * maxZstdWindowBytes;
  }

  /**
   * Scans the next chunk. On a refusal, `safeLength` is the number of its bytes before the one
   * that completes the offending header, so that fzstd, given only those, cannot act on it.
   */
  scan(chunk: Uint8Array): { safeLength: number; error?: Error } {
    let index = 0;
    while (index < chunk.length) {
      if (this.skipBytes > 0) {
        const skipped = Math.min(this.skipBytes, chunk.length - index);
        index += skipped;
        this.skipBytes -= skipped;
        continue;
      }
      this.header.push(chunk[index] as number);
      index += 1;
      const error = this.inFrame ? this.readBlockHeader() : this.readFrameHeader();
      if (error !== undefined) return { safeLength: index - 1, error };
    }
    return { safeLength: chunk.length };
  }

  /** The error for a body that ends inside a frame (fzstd would read past a truncated header). */
  truncation(): Error | undefined {
    return this.inFrame || this.header.length > 0 || this.skipBytes > 0 ? new Error('unexpected end of zstd data') : undefined;
  }

  private readFrameHeader(): Error | undefined {
    const header = this.header;
    if (header.length < 4) return undefined;
    const magic = readLittleEndian(header, 0, 4);
    if (magic - (magic % 16) === zstdSkippableFrameMagic) {
      if (header.length < 8) return undefined;
      this.skipBytes = readLittleEndian(header, 4, 4);
      header.length = 0;
      return undefined;
    }
    if (magic !== zstdFrameMagic) return new Error('invalid zstd data');
    if (header.length < 5) return undefined;
    const descriptor = header[4] as number;
    const singleSegment = (descriptor >> 5) & 1;
    const contentSizeFlag = descriptor >> 6;
    const contentSizeBytes = contentSizeFlag === 0 ? singleSegment : 1 << contentSizeFlag;
    const headerLength = 5 + (singleSegment === 1 ? 0 : 1) + ([0, 1, 2, 4][descriptor & 3] as number) + contentSizeBytes;
    if (header.length < headerLength) return undefined;
    const contentSize =
      contentSizeBytes === 0 ? undefined : readLittleEndian(header, headerLength - contentSizeBytes, contentSizeBytes) + (contentSizeBytes === 2 ? 256 : 0);
    if (contentSize !== undefined && contentSize > this.limitBytes) return decodedTooLarge(this.limitBytes);
    let windowBytes: number;
    if (singleSegment === 1) windowBytes = contentSize ?? 0;
    else {
      const windowDescriptor = header[5] as number;
      const base = 2 ** (10 + (windowDescriptor >> 3));
      windowBytes = base + (base / 8) * (windowDescriptor & 7);
      if (windowBytes > maxZstdWindowBytes) return new Error(`its window of ${windowBytes} bytes exceeds the ${maxZstdWindowBytes} bytes RFC 9659 allows`);
    }
    this.windowBytes = windowBytes;
    this.hasChecksum = ((descriptor >> 2) & 1) === 1;
    this.inFrame = true;
    header.length = 0;
    return this.charge(windowBytes);
  }

  private readBlockHeader(): Error | undefined {
    const header = this.header;
    if (header.length < 3) return undefined;
    const value = readLittleEndian(header, 0, 3);
    const last = value & 1;
    const type = (value >> 1) & 3;
    const size = value >>> 3;
    if (type === 3) return new Error('invalid zstd block type');
    if (size > maxZstdBlockBytes) return new Error(`a block of ${size} bytes exceeds the zstd maximum of ${maxZstdBlockBytes}`);
    // Raw and RLE blocks of size 0 decode to nothing, and fzstd's slide of nothing costs nothing.
    const slides = type === 2 || size > 0;
    this.skipBytes = type === 1 ? 1 : size;
    if (last === 1) {
      this.skipBytes += this.hasChecksum ? 4 : 0;
      this.inFrame = false;
    }
    header.length = 0;
    return slides ? this.charge(this.windowBytes) : undefined;
  }

  private charge(bytes: number): Error | undefined {
    this.work += bytes;
    return this.work > this.workBudget ? new Error('too many small blocks or frames for their window size') : undefined;
  }
}

/** Unsigned little-endian integer of `length` bytes (up to 8, exact below 2^53). */
function readLittleEndian(bytes: readonly number[], offset: number, length: number): number {
  let value = 0;
  for (let index = length - 1; index >= 0; index -= 1) value = value * 256 + (bytes[offset + index] as number);
  return value;
}

function decodedTooLarge(limitBytes: number): Error {
  return new PayloadTooLargeError(`The decompressed request body exceeds the limit of ${limitBytes} bytes`, { details: { limit_bytes: limitBytes } });
}

function tooLarge(limitBytes: number): Error {
  return new PayloadTooLargeError(`The request body exceeds the limit of ${limitBytes} bytes`, { details: { limit_bytes: limitBytes } });
}

export { maxJsonArrayLength, maxJsonDepth } from '@tabagent/values';
