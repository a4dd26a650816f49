import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { UpstreamMemberConfig } from './upstream-config.js';

/** Why a call to a member failed, and whether another member may be tried (nothing was received yet). */
export class UpstreamFailure extends Error {
  constructor(
    message: string,
    readonly phase: 'connect' | 'first-byte' | 'status' | 'body',
    /** The member's HTTP status, for `status`. */
    readonly status?: number,
    /** The member's own error message, when it sent one. */
    readonly upstreamMessage?: string,
  ) {
    super(message);
    this.name = 'UpstreamFailure';
  }
}

/** A keep-alive connection pool per member, as many sockets as requests it may have in flight. */
export function memberAgent(config: UpstreamMemberConfig): http.Agent {
  const options = { keepAlive: true, maxSockets: config.maxInFlight, maxFreeSockets: Math.min(config.maxInFlight, 8), scheduling: 'lifo' as const };
  return config.url.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
}

/**
 * Sends one request to a member and resolves with the response once its headers arrive. The
 * connection has `connectTimeoutMs`, the headers `firstByteTimeoutMs`; the signal (a client gone,
 * a stop) destroys the request at once. Only the member's key is sent: the client's own headers
 * never reach this function.
 */
export function openUpstream(
  config: UpstreamMemberConfig,
  agent: http.Agent,
  call: { method: 'GET' | 'POST'; path: string; body?: unknown; signal?: AbortSignal | undefined; accept?: string },
): Promise<IncomingMessage> {
  const url = new URL(`${config.url}${call.path}`);
  const body = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
  const headers: Record<string, string | number> = { Accept: call.accept ?? 'application/json', 'User-Agent': 'tabagent-upstream' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = body.length;
  }
  if (config.key !== undefined) headers['Authorization'] = `Bearer ${config.key}`;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    if (call.signal?.aborted === true) {
      reject(call.signal.reason as Error);
      return;
    }
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (): void => {
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
    };
    const request = client.request(url, { method: call.method, headers, agent, setHost: true });
    const fail = (error: Error): void => {
      if (settled) return;
      finish();
      request.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(call.signal?.reason instanceof Error ? call.signal.reason : new Error('aborted'));
    call.signal?.addEventListener('abort', onAbort, { once: true });
    request.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(
        () => fail(new UpstreamFailure(`no connection to ${config.url} within ${config.connectTimeoutMs} ms`, 'connect')),
        config.connectTimeoutMs,
      );
      timers.push(timer);
      socket.once('connect', () => clearTimeout(timer));
    });
    timers.push(
      setTimeout(
        () => fail(new UpstreamFailure(`no response from ${config.url} within ${config.firstByteTimeoutMs} ms`, 'first-byte')),
        config.firstByteTimeoutMs,
      ),
    );
    request.on('error', (error: NodeJS.ErrnoException) => {
      const phase = error.code === 'ECONNREFUSED' || error.code === 'ENOTFOUND' || error.code === 'EHOSTUNREACH' ? 'connect' : 'first-byte';
      fail(new UpstreamFailure(`${config.url}: ${error.code ?? error.message}`, phase));
    });
    request.on('response', (response) => {
      if (settled) {
        response.destroy();
        return;
      }
      finish();
      // Aborting after the headers destroys the body, which the reader then sees as aborted.
      const onBodyAbort = (): void => {
        response.destroy(call.signal?.reason instanceof Error ? call.signal.reason : new Error('aborted'));
      };
      call.signal?.addEventListener('abort', onBodyAbort, { once: true });
      response.once('close', () => call.signal?.removeEventListener('abort', onBodyAbort));
      resolve(response);
    });
    request.end(body);
  });
}

/**
 * A response body's chunks, failing when the body goes silent for `idleTimeoutMs` or grows past
 * `maxBytes` (an endless body from a broken member must not fill this server's memory).
 */
async function* chunksOf(response: IncomingMessage, limits: { idleTimeoutMs: number; maxBytes: number }, what: string): AsyncGenerator<Buffer> {
  let received = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => response.destroy(new UpstreamFailure(`${what} went silent for ${limits.idleTimeoutMs} ms`, 'body')), limits.idleTimeoutMs);
  };
  arm();
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > limits.maxBytes) throw new UpstreamFailure(`${what} is larger than ${limits.maxBytes} bytes`, 'body');
      arm();
      yield chunk;
    }
    // A body that ended before its Content-Length (a socket closed mid-body) is not a whole answer.
    if (!response.complete) throw new UpstreamFailure(`${what} ended before it was complete`, 'body');
  } catch (error) {
    if (error instanceof UpstreamFailure) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNRESET' || (error as Error).message === 'aborted') throw new UpstreamFailure(`${what} was cut off (${code ?? 'aborted'})`, 'body');
    throw error;
  } finally {
    clearTimeout(timer);
    response.destroy();
  }
}

/** A whole (not streamed) response body as text, within the limits. */
export async function readUpstreamBody(response: IncomingMessage, limits: { idleTimeoutMs: number; maxBytes: number }, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of chunksOf(response, limits, what)) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The `data:` payloads of a server-sent event stream, one per event (multi-line data joined with
 * newlines; comments and other fields skipped), as they arrive. Each event is bounded by `maxBytes`.
 */
export async function* sseDataOf(response: IncomingMessage, limits: { idleTimeoutMs: number; maxBytes: number }, what: string): AsyncGenerator<string> {
  let pending = '';
  let data: string[] = [];
  const decoder = new TextDecoder();
  // The whole stream may be long; one event may not exceed the limit.
  for await (const chunk of chunksOf(response, { idleTimeoutMs: limits.idleTimeoutMs, maxBytes: Number.POSITIVE_INFINITY }, what)) {
    pending += decoder.decode(chunk, { stream: true });
    if (pending.length > limits.maxBytes) throw new UpstreamFailure(`${what}: one event is larger than ${limits.maxBytes} bytes`, 'body');
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline).replace(/\r$/u, '');
      pending = pending.slice(newline + 1);
      if (line === '') {
        if (data.length > 0) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
      newline = pending.indexOf('\n');
    }
  }
  if (data.length > 0) yield data.join('\n');
}

/** The message of an error body in any of the shapes engines use: OpenAI's, a problem document, Ollama's. */
export function errorMessageOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; detail?: unknown; title?: unknown; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (typeof parsed.error === 'object' && parsed.error !== null) {
      const inner = parsed.error as { message?: unknown; detail?: unknown };
      if (typeof inner.message === 'string') return inner.message;
      if (typeof inner.detail === 'string') return inner.detail;
    }
    if (typeof parsed.detail === 'string') return parsed.detail;
    if (typeof parsed.message === 'string') return parsed.message;
    if (typeof parsed.title === 'string') return parsed.title;
  } catch {
    // Not JSON: the text itself, shortened.
  }
  const text = body.trim();
  return text === '' ? undefined : text.slice(0, 300);
}
