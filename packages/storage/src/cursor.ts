import { InvalidRequestError, safeParseJson } from '@tabagent/values';

/** A keyset position: the sort value of the last row returned and its insertion sequence. */
export interface CursorPosition {
  sortValue: number;
  seq: number;
}

/** Encodes a keyset position (sort value, insertion sequence) as an opaque cursor. */
export function encodeCursor(sortValue: number, seq: number): string {
  return Buffer.from(JSON.stringify([sortValue, seq]), 'utf8').toString('base64url');
}

/** Decodes a cursor made by `encodeCursor`; anything else is an InvalidRequestError. */
export function decodeCursor(cursor: string): CursorPosition {
  const parsed = safeParseJson(Buffer.from(cursor, 'base64url').toString('utf8'));
  const value = parsed.success ? parsed.value : undefined;
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'number' || !Number.isSafeInteger(value[1])) {
    throw new InvalidRequestError('Invalid cursor');
  }
  return { sortValue: value[0], seq: value[1] as number };
}
