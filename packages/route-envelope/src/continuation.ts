import { InvalidRequestError, safeParseJson } from '@tabagent/values';

/**
 * One part of a route-envelope message too large for a single native-messaging frame.
 *
 * The JSON text of the whole message is cut into string slices; part `i` (0-based) of `parts`
 * carries slice `i` in `data_chunk`. Joining every `data_chunk` in part order and parsing the
 * result gives the original message. Parts of one message are written consecutively.
 */
export interface ContinuationMessage {
  request_id: string | number | null;
  part: number;
  parts: number;
  data_chunk: string;
}

/** Whether a message is a continuation part. */
export function isContinuationMessage(value: unknown): value is ContinuationMessage {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  // A route request names its route; a part never does.
  if ('id' in candidate || 'route' in candidate) return false;
  return typeof candidate.data_chunk === 'string' && Number.isInteger(candidate.part) && Number.isInteger(candidate.parts);
}

function encodedBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Splits the JSON text of a message into continuation parts whose own JSON is at most
 * `maxBytes` bytes each.
 */
export function splitIntoContinuations(json: string, requestId: string | number | null, maxBytes: number): ContinuationMessage[] {
  const overhead = encodedBytes({ request_id: requestId, part: Number.MAX_SAFE_INTEGER, parts: Number.MAX_SAFE_INTEGER, data_chunk: '' });
  const budget = maxBytes - overhead;
  if (budget < 16) throw new RangeError(`maxBytes ${maxBytes} leaves no room for continuation data`);
  const slices: string[] = [];
  let start = 0;
  while (start < json.length) {
    let length = Math.min(budget, json.length - start);
    for (;;) {
      // Never cut a surrogate pair: each slice stays well-formed UTF-16.
      if (start + length < json.length && isHighSurrogate(json.charCodeAt(start + length - 1))) length = length > 1 ? length - 1 : 2;
      const size = encodedBytes(json.slice(start, start + length));
      if (size <= budget) break;
      length = Math.max(1, Math.min(length - 1, Math.floor((length * budget) / size)));
    }
    slices.push(json.slice(start, start + length));
    start += length;
  }
  return slices.map((data_chunk, part) => ({ request_id: requestId, part, parts: slices.length, data_chunk }));
}

/** Client-side reassembly of continuation parts (for new clients and tests). */
export interface ContinuationReassembler {
  /**
   * Takes the next message from the host. Returns the message to act on: a non-continuation
   * message as is, the whole original message when its last part arrives, or `undefined`
   * while parts are still missing. Throws `InvalidRequestError` on parts out of order.
   */
  accept(message: unknown): unknown;
  /**
   * Takes the next part of a split message and returns the whole message's JSON text when this
   * was its last part, unparsed (for `parseJsonYielding`), or `undefined` while parts are missing.
   * Throws `InvalidRequestError` on parts out of order.
   */
  acceptPart(part: ContinuationMessage): string | undefined;
  /** Request ids with parts still missing. */
  readonly pending: ReadonlyArray<string | number | null>;
  /** Forgets the parts received so far for a request id. */
  discard(requestId: string | number | null): void;
}

class OrderedContinuationReassembler implements ContinuationReassembler {
  private readonly partial = new Map<string | number | null, { parts: number; slices: string[] }>();

  get pending(): ReadonlyArray<string | number | null> {
    return [...this.partial.keys()];
  }

  discard(requestId: string | number | null): void {
    this.partial.delete(requestId);
  }

  accept(message: unknown): unknown {
    if (!isContinuationMessage(message)) return message;
    const text = this.acceptPart(message);
    if (text === undefined) return undefined;
    const parsed = safeParseJson(text);
    if (!parsed.success) throw parsed.error;
    return parsed.value;
  }

  acceptPart(message: ContinuationMessage): string | undefined {
    const key = message.request_id;
    const entry = this.partial.get(key) ?? { parts: message.parts, slices: [] };
    if (message.part !== entry.slices.length || message.parts !== entry.parts) {
      this.partial.delete(key);
      throw new InvalidRequestError(`Continuation part ${message.part}/${message.parts} of ${String(key)} arrived out of order`);
    }
    entry.slices.push(message.data_chunk);
    if (entry.slices.length < entry.parts) {
      this.partial.set(key, entry);
      return undefined;
    }
    this.partial.delete(key);
    return entry.slices.join('');
  }
}

/** Creates a reassembler for continuation parts. */
export function createContinuationReassembler(): ContinuationReassembler {
  return new OrderedContinuationReassembler();
}
