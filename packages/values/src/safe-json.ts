import { InvalidRequestError } from './errors.js';

/** Result of `safeParseJson`: the value, or a typed error; never throws. */
export type SafeJsonResult = { success: true; value: unknown } | { success: false; error: InvalidRequestError };

/** Deepest JSON nesting accepted (objects and arrays). */
export const maxJsonDepth = 64;
/** Longest JSON array accepted (token prompts and embedding batches stay well under it). */
export const maxJsonArrayLength = 100_000;

/** Options of `safeParseJson`. */
export interface SafeJsonOptions {
  /** What the text is, in messages: "The JSON body nests ...", "A JSON array in the body ..." (default "message"). */
  subject?: string;
}

/** The next quote or bracket: what the nesting scan needs to look at, found natively. */
const structural = /["[\]{}]/gu;

/**
 * An error when `text` nests deeper than `maxJsonDepth`; scans only as far as the first violation.
 * It jumps from one quote or bracket to the next, and over a string's content to its closing
 * quote, with native searches: a character loop cost 6 times a JSON.parse (90 ms for a 16 MiB
 * body holding one image), this about one.
 */
function nestingError(text: string, subject: string): InvalidRequestError | null {
  let depth = 0;
  structural.lastIndex = 0;
  for (let match = structural.exec(text); match !== null; match = structural.exec(text)) {
    const code = text.charCodeAt(match.index);
    if (code === 0x22) {
      // A string: its end is the next quote not escaped by an odd run of backslashes.
      let end = text.indexOf('"', match.index + 1);
      for (;;) {
        if (end === -1) return null; // unterminated: JSON.parse reports it
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      structural.lastIndex = end + 1;
    } else if (code === 0x7b || code === 0x5b) {
      depth++;
      if (depth > maxJsonDepth)
        return new InvalidRequestError(`The JSON ${subject} nests deeper than ${maxJsonDepth} levels`, { details: { max_depth: maxJsonDepth } });
    } else depth--;
  }
  return null;
}

/** An error when any array in `value` is longer than `maxJsonArrayLength` (walked without recursion). */
function longArrayError(value: unknown, subject: string): InvalidRequestError | null {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (Array.isArray(next)) {
      if (next.length > maxJsonArrayLength) {
        return new InvalidRequestError(`A JSON array in the ${subject} has ${next.length} items; the limit is ${maxJsonArrayLength}`, {
          details: { max_array_length: maxJsonArrayLength },
        });
      }
      for (const item of next) if (typeof item === 'object' && item !== null) pending.push(item);
    } else if (typeof next === 'object' && next !== null) {
      for (const item of Object.values(next)) if (typeof item === 'object' && item !== null) pending.push(item);
    }
  }
  return null;
}

/**
 * Parses JSON text without throwing; a syntax error becomes an `invalid_request` error, and so do
 * text nesting deeper than `maxJsonDepth` (checked before parsing, so it costs a scan, not a parse
 * or a stack overflow further on) and an array longer than `maxJsonArrayLength`. Every transport
 * parses through this (HTTP bodies, native-messaging frames, WebRTC messages, continuation parts),
 * so the limits hold whichever way a request comes.
 */
export function safeParseJson(text: string, options: SafeJsonOptions = {}): SafeJsonResult {
  const subject = options.subject ?? 'message';
  const nesting = nestingError(text, subject);
  if (nesting) return { success: false, error: nesting };
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return { success: false, error: new InvalidRequestError(`Malformed JSON: ${reason}`, { cause }) };
  }
  const long = longArrayError(value, subject);
  return long ? { success: false, error: long } : { success: true, value };
}
