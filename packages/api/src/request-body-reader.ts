import type { IncomingMessage } from 'node:http';
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError, parseJsonYielding } from '@tabagent/values';

/** Empty bodies mean "no fields" (routes whose request is all optional, or path/query only). */
const emptyBody: unknown = undefined;

/** True for `application/json` and `application/<anything>+json`, parameters ignored. */
export function isJsonContentType(contentType: string): boolean {
  const semicolon = contentType.indexOf(';');
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}

/** Options of `readJsonBody`. */
export interface ReadJsonBodyOptions {
  /**
   * Refuse a body not labelled JSON (415). Set for browser requests (those with an `Origin`): a
   * page's cross-site "simple request" can send text/plain or form bodies without a preflight.
   * Other clients (curl's `-d`, `requests.post(data=...)`) often label JSON wrongly; their body is
   * parsed as JSON whatever its Content-Type, as Ollama and llama-server do.
   */
  requireJsonContentType: boolean;
}

/**
 * Reads and parses a JSON request body, enforcing the size limit while reading (and up front
 * from `Content-Length`), so an oversized body is refused without being buffered. Resolves to
 * `undefined` for an empty body. Rejects with `PayloadTooLargeError` (413),
 * `UnsupportedMediaTypeError` (415) or `InvalidRequestError` (400, malformed JSON).
 */
export function readJsonBody(request: IncomingMessage, limitBytes: number, options: ReadJsonBodyOptions = { requireJsonContentType: true }): Promise<unknown> {
  const lengthHeader = request.headers['content-length'];
  const hasChunkedBody = request.headers['transfer-encoding'] !== undefined;
  const declaredLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
  const contentType = request.headers['content-type'];
  // Checked before the empty-body shortcut: a page's text/plain POST with no body is still refused.
  if (options.requireJsonContentType && (contentType === undefined || !isJsonContentType(contentType))) {
    return Promise.reject(
      new UnsupportedMediaTypeError(
        `Browser requests must send Content-Type: application/json, got ${contentType === undefined ? 'no Content-Type' : JSON.stringify(contentType)}`,
      ),
    );
  }
  if (!hasChunkedBody && (declaredLength === undefined || declaredLength === 0)) return Promise.resolve(emptyBody);
  if (declaredLength !== undefined && !Number.isFinite(declaredLength)) {
    return Promise.reject(new InvalidRequestError('Invalid Content-Length header'));
  }
  if (declaredLength !== undefined && declaredLength > limitBytes) return Promise.reject(tooLarge(limitBytes));

  return new Promise<unknown>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const cleanup = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
    };
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limitBytes) {
        fail(tooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      if (settled) return;
      settled = true;
      cleanup();
      const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, received).toString('utf8');
      if (text.trim().length === 0) {
        resolve(emptyBody);
        return;
      }
      // The limits every transport applies (nesting, array length), as `safeParseJson`; a body over
      // 256 KiB is parsed in slices of about 2 ms, so a 16 MiB one does not stall other requests.
      parseJsonYielding(text, { subject: 'body' }).then(
        (parsed) => (parsed.success ? resolve(parsed.value) : reject(parsed.error)),
        (error: unknown) => reject(error instanceof Error ? error : new InvalidRequestError('The request body could not be parsed')),
      );
    };
    const onError = (error: Error): void => fail(new InvalidRequestError('The request body could not be read', { cause: error }));
    const onAborted = (): void => fail(new InvalidRequestError('The client aborted the request body'));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  });
}

function tooLarge(limitBytes: number): Error {
  return new PayloadTooLargeError(`The request body exceeds the limit of ${limitBytes} bytes`, { details: { limit_bytes: limitBytes } });
}

export { maxJsonArrayLength, maxJsonDepth } from '@tabagent/values';
