import { InvalidRequestError, parseJsonYielding, safeParseJson, type TabAgentError } from '@tabagent/values';
import { defaultMaxIncomingBytes, frameHeaderBytes } from './frame-limits.js';

/** One outcome of feeding bytes to the decoder. */
export type DecodedFrame =
  /** A well-formed frame holding valid UTF-8 JSON. */
  | { kind: 'message'; value: unknown; byteLength: number }
  /** A well-framed message whose body is not UTF-8 or not JSON; the stream is still in sync. */
  | { kind: 'malformed'; error: TabAgentError; byteLength: number }
  /**
   * A length prefix above the limit. The decoder cannot know where the next frame starts, so
   * the stream can no longer be trusted: the decoder stops and returns nothing more.
   */
  | { kind: 'oversize'; declaredBytes: number; maxBytes: number }
  /** A frame over `deferAboveBytes`, not decoded yet: `decodeLargeFrame` decodes it without holding the event loop. */
  | { kind: 'large'; body: Buffer; byteLength: number };

/** Options of `createFrameDecoder`. */
export interface FrameDecoderOptions {
  /** Largest accepted frame body in bytes (default 64 MiB, Chrome's browser-to-host limit). */
  maxFrameBytes?: number;
  /**
   * Frames with a longer body come back as `large`, for `decodeLargeFrame` (default: none; every
   * frame is decoded in `push`, which holds the event loop for one JSON.parse of it).
   */
  deferAboveBytes?: number;
}

/** Incremental decoder of length-prefixed JSON frames; accepts any split of the byte stream. */
export interface FrameDecoder {
  /** Feeds the next bytes; returns every frame they complete, in order. */
  push(chunk: Uint8Array): DecodedFrame[];
  /** Bytes held for a frame that is not complete yet. */
  readonly bufferedBytes: number;
  /** True once an oversize length was seen; every later `push` returns nothing. */
  readonly failed: boolean;
}

class LengthPrefixedFrameDecoder implements FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expectedBodyBytes: number | null = null;
  private hasFailed = false;

  private readonly deferAboveBytes: number;

  constructor(options: FrameDecoderOptions) {
    this.maxFrameBytes = options.maxFrameBytes ?? defaultMaxIncomingBytes;
    this.deferAboveBytes = options.deferAboveBytes ?? Number.POSITIVE_INFINITY;
  }

  get bufferedBytes(): number {
    return this.buffered + (this.expectedBodyBytes === null ? 0 : frameHeaderBytes);
  }

  get failed(): boolean {
    return this.hasFailed;
  }

  push(chunk: Uint8Array): DecodedFrame[] {
    if (this.hasFailed || chunk.length === 0) return [];
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.length;
    const frames: DecodedFrame[] = [];
    for (;;) {
      if (this.expectedBodyBytes === null) {
        if (this.buffered < frameHeaderBytes) break;
        const declaredBytes = this.take(frameHeaderBytes).readUInt32LE(0);
        if (declaredBytes > this.maxFrameBytes) {
          this.hasFailed = true;
          this.chunks = [];
          this.buffered = 0;
          frames.push({ kind: 'oversize', declaredBytes, maxBytes: this.maxFrameBytes });
          break;
        }
        this.expectedBodyBytes = declaredBytes;
      }
      if (this.buffered < this.expectedBodyBytes) break;
      const body = this.take(this.expectedBodyBytes);
      this.expectedBodyBytes = null;
      frames.push(body.length > this.deferAboveBytes ? { kind: 'large', body, byteLength: body.length } : this.decodeBody(body));
    }
    return frames;
  }

  private decodeBody(body: Buffer): DecodedFrame {
    let text: string;
    try {
      text = this.textDecoder.decode(body);
    } catch (cause) {
      return { kind: 'malformed', error: new InvalidRequestError('Malformed frame: the message is not valid UTF-8', { cause }), byteLength: body.length };
    }
    const parsed = safeParseJson(text);
    if (!parsed.success) return { kind: 'malformed', error: parsed.error, byteLength: body.length };
    return { kind: 'message', value: parsed.value, byteLength: body.length };
  }

  /** Removes and returns the next `count` bytes (the caller checked they are buffered). */
  private take(count: number): Buffer {
    this.buffered -= count;
    const first = this.chunks[0];
    if (first !== undefined && first.length >= count) {
      if (first.length === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    // Gather the pieces once, so a large frame sent in many small chunks costs one copy.
    const result = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const next = this.chunks[0] as Buffer;
      const needed = count - filled;
      if (next.length <= needed) {
        next.copy(result, filled);
        filled += next.length;
        this.chunks.shift();
      } else {
        next.copy(result, filled, 0, needed);
        this.chunks[0] = next.subarray(needed);
        filled += needed;
      }
    }
    return result;
  }
}

const decodeSliceBytes = 1024 * 1024;

/**
 * Decodes a `large` frame as `push` decodes the others (UTF-8, then JSON with the same limits), a
 * megabyte of UTF-8 and about 2 ms of JSON at a time, yielding between: a 64 MiB frame does not
 * stop the host from answering other frames and the extension's pings for the 50+ ms one
 * TextDecoder and JSON.parse pass over it take.
 */
export async function decodeLargeFrame(frame: { body: Buffer; byteLength: number }): Promise<DecodedFrame> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const parts: string[] = [];
  try {
    for (let offset = 0; offset < frame.body.length; offset += decodeSliceBytes) {
      const end = Math.min(frame.body.length, offset + decodeSliceBytes);
      parts.push(decoder.decode(frame.body.subarray(offset, end), { stream: end < frame.body.length }));
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (cause) {
    return { kind: 'malformed', error: new InvalidRequestError('Malformed frame: the message is not valid UTF-8', { cause }), byteLength: frame.byteLength };
  }
  const parsed = await parseJsonYielding(parts.join(''));
  if (!parsed.success) return { kind: 'malformed', error: parsed.error, byteLength: frame.byteLength };
  return { kind: 'message', value: parsed.value, byteLength: frame.byteLength };
}

/** Creates an incremental frame decoder. */
export function createFrameDecoder(options: FrameDecoderOptions = {}): FrameDecoder {
  return new LengthPrefixedFrameDecoder(options);
}
