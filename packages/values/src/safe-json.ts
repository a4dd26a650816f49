import { InvalidRequestError } from './errors.js';

/** Result of `safeParseJson`: the value, or a typed error; never throws. */
export type SafeJsonResult = { success: true; value: unknown } | { success: false; error: InvalidRequestError };

/** Parses JSON text without throwing; a syntax error becomes an `invalid_request` error. */
export function safeParseJson(text: string): SafeJsonResult {
  try {
    return { success: true, value: JSON.parse(text) as unknown };
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return { success: false, error: new InvalidRequestError(`Malformed JSON: ${reason}`, { cause }) };
  }
}
