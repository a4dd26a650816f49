import { randomBytes } from 'node:crypto';

/**
 * Request ids: a random per-factory prefix plus a base-36 counter. Unique within a process and
 * across restarts in practice, and far cheaper than a UUID per request.
 */
export function createCounterRequestIdFactory(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let counter = 0;
  return () => {
    counter += 1;
    return `${prefix}-${counter.toString(36)}`;
  };
}

const clientRequestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** Whether a client-sent `X-Request-Id` is safe to reuse (no header injection, bounded size). */
export function isAcceptableClientRequestId(value: string): boolean {
  return clientRequestIdPattern.test(value);
}
