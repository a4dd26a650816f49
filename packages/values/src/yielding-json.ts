import { InvalidRequestError } from './errors.js';
import { maxJsonArrayLength, maxJsonDepth, safeParseJson, type SafeJsonOptions, type SafeJsonResult } from './safe-json.js';

/**
 * Texts up to this many characters are parsed in one `JSON.parse` (about a millisecond for 256 KiB
 * of small objects here); longer ones in slices by `parseJsonYielding`.
 */
export const yieldingJsonThresholdChars = 256 * 1024;

/** Options of `parseJsonYielding`. */
export interface YieldingJsonOptions extends SafeJsonOptions {
  /** Texts up to this many characters are parsed at once (default `yieldingJsonThresholdChars`). */
  thresholdChars?: number;
  /** How long the parse may hold the event loop before it yields (default 2 ms). */
  sliceMs?: number;
  /** Most characters handed to one `JSON.parse` (default 64 Ki, a few tenths of a millisecond). */
  unitChars?: number;
}

/**
 * `safeParseJson` that does not hold the event loop: a long text is parsed in slices of about
 * `sliceMs`, yielding between them, so one 16 MiB request body does not stall every other request
 * for the 20–40 ms a `JSON.parse` of it takes. A worker would not help: handing the parsed value
 * back (a structured clone) costs about as much as parsing it.
 *
 * The work is still `JSON.parse`'s: a walk of the text's structure finds runs of whole array
 * elements or object members up to `unitChars` long, and each run is parsed natively; only
 * containers larger than that are built here, and strings larger than that are parsed in pieces
 * (cut between escapes) and joined. The result, the syntax it accepts and the limits (depth,
 * array length) are `safeParseJson`'s; a syntax error's message may word the position differently.
 */
export async function parseJsonYielding(text: string, options: YieldingJsonOptions = {}): Promise<SafeJsonResult> {
  if (text.length <= (options.thresholdChars ?? yieldingJsonThresholdChars)) return safeParseJson(text, options);
  const parser = new SlicedJsonParser(text, options.subject ?? 'message', options.unitChars ?? 64 * 1024, options.sliceMs ?? 2);
  try {
    return { success: true, value: await parser.parse() };
  } catch (error) {
    if (error instanceof Refusal) return { success: false, error: error.error };
    throw error;
  }
}

/** A refusal on its way out of the parser (the error is returned, not thrown, by `parseJsonYielding`). */
class Refusal extends Error {
  constructor(readonly error: InvalidRequestError) {
    super(error.message);
  }
}

type Frame = { kind: 'array'; value: unknown[] } | { kind: 'object'; value: Record<string, unknown>; key: string };
type State = 'value' | 'after' | 'firstOrEnd' | 'member';

const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/uy;
const whitespace = /[ \t\n\r]*/uy;
/** What a JSON string's text must be decoded for: an escape, or a control character it may not hold. */
const needsDecoding = /[\\\u0000-\u001f]/u;

class SlicedJsonParser {
  private position = 0;
  private sliceStarted = performance.now();
  private readonly stack: Frame[] = [];
  /** Quotes, brackets and commas: what a scan for the end of a run looks at. */
  private readonly structural = /["[\]{},]/gu;

  constructor(
    private readonly text: string,
    private readonly subject: string,
    private readonly unitChars: number,
    private readonly sliceMs: number,
  ) {}

  /** Yields to the event loop when this slice has run its time. */
  private async pause(): Promise<void> {
    if (performance.now() - this.sliceStarted <= this.sliceMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.sliceStarted = performance.now();
  }

  async parse(): Promise<unknown> {
    let state: State = 'value';
    for (;;) {
      await this.pause();
      this.skipWhitespace();
      const frame = this.stack.at(-1);
      if (state === 'value' || state === 'member') {
        // A run of whole elements (or members) parsed natively, when the next ones are small.
        if (frame !== undefined && (frame.kind === 'array') === (state === 'value') && this.run(frame)) {
          state = 'after';
          continue;
        }
        if (state === 'member') {
          await this.member(frame as Frame & { kind: 'object' });
          state = 'value';
          continue;
        }
        const code = this.text.charCodeAt(this.position);
        if (code === 0x7b || code === 0x5b) {
          this.open(code === 0x7b ? { kind: 'object', value: {}, key: '' } : { kind: 'array', value: [] });
          state = 'firstOrEnd';
          continue;
        }
        const value = code === 0x22 ? await this.string() : this.literal();
        if (frame === undefined) return this.end(value);
        this.attach(frame, value);
        state = 'after';
      } else if (state === 'firstOrEnd') {
        const top = frame as Frame;
        if (this.text.charCodeAt(this.position) === (top.kind === 'object' ? 0x7d : 0x5d)) {
          this.position += 1;
          const closed = this.close();
          if (closed !== undefined) return this.end(closed.value);
          state = 'after';
        } else state = top.kind === 'object' ? 'member' : 'value';
      } else {
        const top = frame as Frame;
        const code = this.text.charCodeAt(this.position);
        if (code === 0x2c) {
          this.position += 1;
          state = top.kind === 'object' ? 'member' : 'value';
        } else if (code === (top.kind === 'object' ? 0x7d : 0x5d)) {
          this.position += 1;
          const closed = this.close();
          if (closed !== undefined) return this.end(closed.value);
        } else this.syntax(top.kind === 'object' ? "',' or '}'" : "',' or ']'");
      }
    }
  }

  /**
   * Parses the next elements (or members) of `frame` natively when whole ones end within
   * `unitChars`: up to the last comma at this level in that span, or the closing bracket.
   */
  private run(frame: Frame): boolean {
    const { text, structural } = this;
    const start = this.position;
    const limit = start + this.unitChars;
    const close = frame.kind === 'object' ? 0x7d : 0x5d;
    let depth = 0;
    let boundary = -1;
    let closed = false;
    structural.lastIndex = start;
    for (let match = structural.exec(text); match !== null && match.index < limit; match = structural.exec(text)) {
      const code = text.charCodeAt(match.index);
      if (code === 0x22) {
        // A string that does not close within the unit ends the run before it.
        const close = this.closingQuote(match.index + 1, limit);
        if (close === -1) break;
        structural.lastIndex = close + 1;
      } else if (code === 0x2c) {
        if (depth === 0) boundary = match.index;
      } else if (code === 0x7b || code === 0x5b) {
        depth += 1;
        if (this.stack.length + depth > maxJsonDepth) throw this.tooDeep();
      } else if (depth === 0) {
        if (code === close) {
          boundary = match.index;
          closed = true;
        }
        break;
      } else depth -= 1;
    }
    if (boundary <= start) return false;
    const body = text.slice(start, boundary);
    // `[1, ]`: a closing bracket after a comma is JSON.parse's error, left to the value path to report.
    if (closed && body.trim() === '') return false;
    const parsed = this.native(frame.kind === 'object' ? `{${body}}` : `[${body}]`);
    checkArrays(parsed, this.subject);
    if (frame.kind === 'array') {
      for (const item of parsed as unknown[]) frame.value.push(item);
      if (frame.value.length > maxJsonArrayLength) throw this.tooLong(frame.value.length);
    } else {
      for (const key of Object.keys(parsed as object)) setMember(frame.value, key, (parsed as Record<string, unknown>)[key]);
    }
    // Left at the comma or the bracket: the 'after' state takes it.
    this.position = boundary;
    return true;
  }

  /** A member's key and colon, when the member is too large for a run. */
  private async member(frame: Frame & { kind: 'object' }): Promise<void> {
    if (this.text.charCodeAt(this.position) !== 0x22) this.syntax('a string key');
    frame.key = await this.string();
    this.skipWhitespace();
    if (this.text.charCodeAt(this.position) !== 0x3a) this.syntax("':'");
    this.position += 1;
  }

  private open(frame: Frame): void {
    this.position += 1;
    this.stack.push(frame);
    if (this.stack.length > maxJsonDepth) throw this.tooDeep();
  }

  /** Pops the finished container into its parent; returns it when it was the outermost. */
  private close(): Frame | undefined {
    const frame = this.stack.pop() as Frame;
    const parent = this.stack.at(-1);
    if (parent === undefined) return frame;
    this.attach(parent, frame.value);
    return undefined;
  }

  private attach(frame: Frame, value: unknown): void {
    if (frame.kind === 'array') {
      frame.value.push(value);
      if (frame.value.length > maxJsonArrayLength) throw this.tooLong(frame.value.length);
    } else setMember(frame.value, frame.key, value);
  }

  /** The whole value: nothing but whitespace may follow it. */
  private end(value: unknown): unknown {
    this.skipWhitespace();
    if (this.position < this.text.length) this.syntax('the end of the text');
    return value;
  }

  /**
   * A string value or key: parsed at once when it closes within `unitChars`, otherwise in pieces cut
   * between escapes. Pieces without an escape or a control character are the text itself: slices
   * of it, joined (V8 copies neither a slice nor the join until the string is read). Only the others
   * are decoded, by JSON.parse, which also refuses what a JSON string may not hold.
   */
  private async string(): Promise<string> {
    const { text } = this;
    const start = this.position;
    const first = this.closingQuote(start + 1, start + 1 + this.unitChars);
    if (first !== -1) {
      this.position = first + 1;
      return this.native(text.slice(start, first + 1)) as string;
    }
    let value = '';
    let from = start + 1;
    let plainFrom = from;
    for (;;) {
      const limit = from + this.unitChars;
      const close = this.closingQuote(from, limit);
      if (close === -1 && limit >= text.length) {
        this.position = text.length;
        this.syntax('the end of a string');
      }
      let to = close === -1 ? this.escapeSafeCut(from, limit) : close;
      // A unit shorter than the escape that starts the piece: the piece is that escape.
      if (to <= from && close === -1) to = from + (text.charCodeAt(from + 1) === 0x75 ? 6 : 2);
      const piece = text.slice(from, to);
      if (needsDecoding.test(piece)) {
        value += text.slice(plainFrom, from);
        value += this.native(`"${piece}"`) as string;
        plainFrom = to;
      }
      from = to;
      if (close !== -1) {
        this.position = close + 1;
        return value + text.slice(plainFrom, close);
      }
      await this.pause();
    }
  }

  /**
   * The index of the quote that closes the string being read, looked for in [from, limit) only (a
   * search to the end of a 16 MiB text per piece would be quadratic); -1 when it is not there.
   */
  private closingQuote(from: number, limit: number): number {
    const { text } = this;
    const window = text.slice(from, Math.min(limit, text.length));
    for (let at = window.indexOf('"'); at !== -1; at = window.indexOf('"', at + 1)) {
      let backslashes = 0;
      while (text.charCodeAt(from + at - 1 - backslashes) === 0x5c) backslashes += 1;
      if (backslashes % 2 === 0) return from + at;
    }
    return -1;
  }

  /** `to`, or an earlier position when `to` would cut an escape (`\x` or `\uXXXX`) in two. */
  private escapeSafeCut(from: number, to: number): number {
    const { text } = this;
    for (let backslash = to - 1; backslash >= Math.max(from, to - 6); backslash -= 1) {
      if (text.charCodeAt(backslash) !== 0x5c) continue;
      let run = 1;
      while (backslash - run >= from && text.charCodeAt(backslash - run) === 0x5c) run += 1;
      // An even run ends in a complete `\\`; an odd one's last backslash starts an escape.
      if (run % 2 === 0) return to;
      const length = text.charCodeAt(backslash + 1) === 0x75 ? 6 : 2;
      return backslash + length > to ? backslash : to;
    }
    return to;
  }

  private literal(): unknown {
    literal.lastIndex = this.position;
    const match = literal.exec(this.text);
    if (match === null) this.syntax('a value');
    this.position += match[0].length;
    return JSON.parse(match[0]) as unknown;
  }

  private native(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new Refusal(new InvalidRequestError(`Malformed JSON: ${reason} (in the part that starts at position ${this.position})`, { cause }));
    }
  }

  private skipWhitespace(): void {
    whitespace.lastIndex = this.position;
    whitespace.exec(this.text);
    this.position = whitespace.lastIndex;
  }

  private syntax(expected: string): never {
    const found = this.position < this.text.length ? JSON.stringify(this.text[this.position]) : 'the end of the text';
    throw new Refusal(new InvalidRequestError(`Malformed JSON: expected ${expected}, found ${found} at position ${this.position}`));
  }

  private tooDeep(): Refusal {
    return new Refusal(new InvalidRequestError(`The JSON ${this.subject} nests deeper than ${maxJsonDepth} levels`, { details: { max_depth: maxJsonDepth } }));
  }

  private tooLong(length: number): Refusal {
    return new Refusal(
      new InvalidRequestError(`A JSON array in the ${this.subject} has ${length} items; the limit is ${maxJsonArrayLength}`, {
        details: { max_array_length: maxJsonArrayLength },
      }),
    );
  }
}

/** Sets a member as JSON.parse does: `__proto__` becomes an own property, not the prototype. */
function setMember(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

/** The array limit inside a natively parsed run (its depth was checked by the scan). */
function checkArrays(value: unknown, subject: string): void {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (Array.isArray(next)) {
      if (next.length > maxJsonArrayLength)
        throw new Refusal(
          new InvalidRequestError(`A JSON array in the ${subject} has ${next.length} items; the limit is ${maxJsonArrayLength}`, {
            details: { max_array_length: maxJsonArrayLength },
          }),
        );
      for (const item of next) if (typeof item === 'object' && item !== null) pending.push(item);
    } else if (typeof next === 'object' && next !== null) {
      for (const item of Object.values(next)) if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
}
