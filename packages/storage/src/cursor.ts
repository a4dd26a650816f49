import { InvalidRequestError } from '@tabagent/values';

/** Encodes a keyset position (sort value, id) as an opaque cursor. */
export function encodeCursor(sortValue: number, id: string): string {
  return Buffer.from(JSON.stringify([sortValue, id]), 'utf8').toString('base64url');
}

/** Decodes a cursor made by `encodeCursor`; anything else is an InvalidRequestError. */
export function decodeCursor(cursor: string): { sortValue: number; id: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (error) {
    throw new InvalidRequestError('Invalid cursor', { cause: error });
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'number' || typeof parsed[1] !== 'string') {
    throw new InvalidRequestError('Invalid cursor');
  }
  return { sortValue: parsed[0], id: parsed[1] };
}
