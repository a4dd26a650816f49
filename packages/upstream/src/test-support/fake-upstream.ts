import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the fake does with the next generation requests. */
export type FakeBehaviour =
  /** Streams the words of the last user message back, one chunk each, `delayMs` apart. */
  | { kind: 'echo'; delayMs?: number }
  /** Answers this status and body before any byte of a stream. */
  | { kind: 'status'; status: number; body?: unknown }
  /** Streams `chunks` (at least 1) chunks of the echo, then destroys the socket. */
  | { kind: 'cut'; chunks: number }
  /** Sends the headers after `delayMs`, then echoes. */
  | { kind: 'slow'; delayMs: number }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** Sends the first chunk of the echo, then waits for `release()`. */
  | { kind: 'gate' }
  /** Streams one call of the tool `lookup` with its arguments in three fragments. */
  | { kind: 'tool-call' };

/** One request the fake received. */
export interface FakeRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
}

/** A tiny OpenAI-compatible server on 127.0.0.1 for upstream tests: models, streamed chat and completions, embeddings, faults. */
export interface FakeUpstream {
  /** The base URL, `http://127.0.0.1:PORT/v1`. */
  readonly url: string;
  readonly requests: FakeRequest[];
  behaviour: FakeBehaviour;
  /** What `GET /v1/models` lists. */
  models: string[];
  /** Generation requests whose connection closed before the fake finished them (a client that aborted). */
  readonly abandoned: number;
  /** Lets a `gate` stream go on. */
  release(): void;
  close(): Promise<void>;
}

const sse = (response: ServerResponse, value: unknown): boolean => response.write(`data: ${typeof value === 'string' ? value : JSON.stringify(value)}\n\n`);

function lastUserText(body: Record<string, unknown> | undefined): string {
  if (typeof body?.['prompt'] === 'string') return body['prompt'];
  const messages = (body?.['messages'] ?? []) as Array<{ role: string; content: unknown }>;
  const last = [...messages].reverse().find((message) => message.role === 'user');
  if (typeof last?.content === 'string') return last.content;
  if (Array.isArray(last?.content)) return (last.content as Array<{ text?: string }>).map((part) => part.text ?? '').join('');
  return '';
}

/** Starts the fake; `models` defaults to `['echo']`. */
export async function startFakeUpstream(options: { models?: string[]; behaviour?: FakeBehaviour } = {}): Promise<FakeUpstream> {
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();
  let abandoned = 0;
  let gates: Array<() => void> = [];
  const state = { behaviour: options.behaviour ?? { kind: 'echo' }, models: options.models ?? ['echo'] };

  const stream = async (request: IncomingMessage, response: ServerResponse, body: Record<string, unknown> | undefined): Promise<void> => {
    const behaviour = state.behaviour;
    const completion = request.url?.endsWith('/completions') === true && !request.url.endsWith('/chat/completions');
    const words = lastUserText(body).split(/\s+/u).filter(Boolean);
    let finished = false;
    // A function, not the property: the client may go at any await.
    const gone = (): boolean => response.destroyed;
    response.once('close', () => {
      if (!finished) abandoned += 1;
    });
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
      id: 'fake-1',
      object: completion ? 'text_completion' : 'chat.completion.chunk',
      created: 1,
      model: body?.['model'],
      choices: [completion ? { index: 0, text: delta['content'] ?? '', finish_reason: finish } : { index: 0, delta, finish_reason: finish }],
    });
    if (behaviour.kind === 'status') {
      finished = true;
      response.writeHead(behaviour.status, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify(behaviour.body ?? { error: { message: `fake failure ${behaviour.status}`, type: 'server_error' } }));
      return;
    }
    if (behaviour.kind === 'hang') return;
    if (behaviour.kind === 'slow') {
      // Ends early when the client gives up, so no timer outlives the test.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, behaviour.delayMs);
        response.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (gone()) return;
    response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    response.flushHeaders();
    if (!completion) sse(response, chunk({ role: 'assistant', content: '' }));
    if (behaviour.kind === 'tool-call') {
      sse(response, chunk({ tool_calls: [{ index: 0, id: 'call_fake', type: 'function', function: { name: 'lookup', arguments: '' } }] }));
      for (const fragment of ['{"q":', '"tab', 'agent"}']) sse(response, chunk({ tool_calls: [{ index: 0, function: { arguments: fragment } }] }));
      sse(response, chunk({}, 'tool_calls'));
    } else {
      for (const [index, word] of words.entries()) {
        const piece = chunk({ content: index === 0 ? word : ` ${word}` });
        if (behaviour.kind === 'cut' && index === behaviour.chunks - 1) {
          finished = true;
          // The last chunk is handed to the socket (its write callback), then the connection drops mid-stream.
          await new Promise<void>((resolve) => response.write(`data: ${JSON.stringify(piece)}\n\n`, () => resolve()));
          response.socket?.destroy();
          return;
        }
        sse(response, piece);
        if (behaviour.kind === 'gate' && index === 0) await new Promise<void>((resolve) => gates.push(resolve));
        if (behaviour.kind === 'echo' && behaviour.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
        if (gone()) return;
      }
      sse(response, chunk({}, 'stop'));
    }
    sse(response, {
      id: 'fake-1',
      object: 'chat.completion.chunk',
      created: 1,
      model: body?.['model'],
      choices: [],
      usage: { prompt_tokens: 7, completion_tokens: Math.max(1, words.length), total_tokens: 7 + words.length },
    });
    sse(response, '[DONE]');
    finished = true;
    response.end();
  };

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
      const path = (request.url ?? '').replace(/^\/v1/u, '');
      requests.push({ method: request.method ?? '', path, headers: request.headers, body });
      const json = (status: number, value: unknown): void => {
        response.writeHead(status, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify(value));
      };
      if (request.method === 'GET' && path === '/models') {
        json(200, { object: 'list', data: state.models.map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'fake' })) });
      } else if (request.method === 'POST' && (path === '/chat/completions' || path === '/completions')) {
        void stream(request, response, body);
      } else if (request.method === 'POST' && path === '/embeddings') {
        if (state.behaviour.kind === 'status') {
          json(state.behaviour.status, { error: { message: `fake failure ${state.behaviour.status}` } });
          return;
        }
        const input = (Array.isArray(body?.['input']) ? body['input'] : [body?.['input']]) as string[];
        json(200, {
          object: 'list',
          data: input.map((text, index) => ({ object: 'embedding', index, embedding: [text.length, 1, 0] })),
          usage: { prompt_tokens: input.length * 2, total_tokens: input.length * 2 },
        });
      } else {
        json(404, { error: { message: `no route ${request.method ?? ''} ${path}` } });
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(value) {
      state.behaviour = value;
    },
    get models() {
      return state.models;
    },
    set models(value) {
      state.models = value;
    },
    get abandoned() {
      return abandoned;
    },
    release() {
      for (const open of gates) open();
      gates = [];
    },
    async close() {
      for (const open of gates) open();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
