import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

/** A response read in full. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Options of `rawRequest`. */
export interface RawRequestOptions {
  port: number;
  method: string;
  path: string;
  headers?: Record<string, string | number>;
  /** Sent in pieces (chunked) when an array is given. */
  body?: string | Buffer | Array<string | Buffer>;
}

/**
 * One request through node:http, for what fetch cannot do (a forged Host header, a body larger
 * than its Content-Length promise, chunked bodies). Write errors after the server answered are
 * ignored: the server may close early on purpose (413).
 */
export function rawRequest(options: RawRequestOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port: options.port, method: options.method, path: options.path, headers: options.headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    let answered = false;
    request.on('response', () => {
      answered = true;
    });
    request.on('error', (error) => {
      if (!answered) reject(error);
    });
    const body = options.body;
    if (Array.isArray(body)) {
      for (const piece of body) request.write(piece);
      request.end();
    } else {
      request.end(body);
    }
  });
}
