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

/** An error when `text` nests deeper than `maxJsonDepth`; scans only as far as the first violation. */
function nestingError(text: string, subject: string): InvalidRequestError | null {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c)
        index++; // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      depth++;
      if (depth > maxJsonDepth)
        return new InvalidRequestError(`The JSON ${subject} nests deeper than ${maxJsonDepth} levels`, { details: { max_depth: maxJsonDepth } });
    } else if (code === 0x7d || code === 0x5d) depth--;
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
