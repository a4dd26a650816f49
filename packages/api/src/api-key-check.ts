import { createHash, timingSafeEqual } from 'node:crypto';

/** Checks `Authorization: Bearer <key>` in constant time (both sides hashed to equal length). */
export class ApiKeyCheck {
  private readonly expectedDigest: Buffer;

  constructor(apiKey: string) {
    this.expectedDigest = digest(apiKey);
  }

  /** True when the header carries the configured key. */
  accepts(authorizationHeader: string | undefined): boolean {
    if (authorizationHeader === undefined) return false;
    const match = /^Bearer[ \t]+(.+)$/i.exec(authorizationHeader.trim());
    if (match === null || match[1] === undefined) return false;
    return timingSafeEqual(digest(match[1].trim()), this.expectedDigest);
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
