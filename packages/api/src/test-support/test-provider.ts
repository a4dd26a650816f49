import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import {
  ModelNotFoundError,
  ModelNotLoadedError,
  NotImplementedError,
  createAppStateProvider,
  routeIds,
  type AppStateProvider,
  type CallContext,
  type HandlerMap,
  type RouteChunk,
  type RouteId,
  type RouteResponse,
} from '@tabagent/values';
import type { ApiRouterOptions } from '../api-router-options.js';
import { createApiApp } from '../create-api-app.js';
import { createApiHttpServer } from '../create-api-http-server.js';

/** What the test handlers observed, for assertions about cancellation and context. */
export interface TestProviderProbe {
  /** Contexts of every call, in order. */
  readonly contexts: CallContext[];
  /** Resolves with the route id whose signal fired, once any handler sees its signal abort. */
  readonly aborted: Promise<string>;
}

function chunk(index: number, content: string, requestId: string): RouteChunk<'chat.completions'> {
  return {
    id: `chatcmpl-${requestId}`,
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'test-model',
    choices: [{ index: 0, delta: index === 0 ? { role: 'assistant', content } : { content }, finish_reason: null }],
    request_id: requestId,
  };
}

function waitForAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * A provider with a complete handler map: every route answers 501 except `health`,
 * `chat.completions` (behaviour chosen by the model name) and `models.get` (path parameter).
 *
 * Chat models: `no-such-model` -> ModelNotFoundError; `boom` -> plain Error with a secret;
 * `hang` -> waits for the abort signal; `late-signal` -> reads the signal only after 300 ms; with `stream: true`: `test-model` -> 3 chunks,
 * `explode-mid-stream` -> 1 chunk then ModelNotLoadedError, `slow` -> 1 chunk then waits for abort.
 */
export function createTestProvider(): { provider: AppStateProvider; probe: TestProviderProbe } {
  const contexts: CallContext[] = [];
  let reportAbort: (id: string) => void = () => undefined;
  const aborted = new Promise<string>((resolve) => {
    reportAbort = resolve;
  });
  const watch = (id: RouteId, context: CallContext): void => {
    if (!contexts.includes(context)) contexts.push(context);
    if (context.signal.aborted) reportAbort(id);
    else context.signal.addEventListener('abort', () => reportAbort(id), { once: true });
  };

  const notBuilt = Object.fromEntries(
    routeIds.map((id) => [id, () => Promise.reject(new NotImplementedError(`${id} is not built in the test provider`, { details: { capability: id } }))]),
  );

  const chat: HandlerMap['chat.completions'] = async (request, context) => {
    if (request.model === 'late-signal') {
      // Reads the signal only after the client is gone: it must already be aborted.
      contexts.push(context);
      await new Promise((resolve) => setTimeout(resolve, 300));
      watch('chat.completions', context);
      return waitForAbort(context.signal);
    }
    watch('chat.completions', context);
    if (request.model === 'no-such-model') throw new ModelNotFoundError(`Model ${request.model} is not registered`);
    if (request.model === 'boom') throw new Error('secret internal detail at /home/user/.tabagent');
    if (request.model === 'hang') return waitForAbort(context.signal);
    if (!request.stream) {
      const response: RouteResponse<'chat.completions'> = {
        id: `chatcmpl-${context.requestId}`,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: request.model ?? 'test-model',
        choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop', logprobs: null }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        request_id: context.requestId,
      };
      return response;
    }
    const model = request.model;
    async function* stream(): AsyncGenerator<RouteChunk<'chat.completions'>> {
      yield chunk(0, 'one', context.requestId);
      if (model === 'explode-mid-stream') throw new ModelNotLoadedError('The model was unloaded during generation');
      if (model === 'slow') await waitForAbort(context.signal);
      if (model === 'until-stopped') {
        // Like a generation: an abort ends it with a last chunk, not an error.
        await waitForAbort(context.signal).catch(() => undefined);
        yield chunk(1, 'stopped', context.requestId);
        return;
      }
      yield chunk(1, 'two', context.requestId);
      yield chunk(2, 'three', context.requestId);
    }
    return stream();
  };

  const overrides: Partial<HandlerMap> = {
    health: (_request, context) => {
      watch('health', context);
      return Promise.resolve({ status: 'ok', service: 'tabagent-server', version: '9.9.9', uptime_seconds: 1, timestamp: '2026-01-01T00:00:00.000Z' });
    },
    'chat.completions': chat,
    'models.get': (request, context) => {
      watch('models.get', context);
      if (request.model === 'missing') return Promise.reject(new ModelNotFoundError(`Model ${request.model} is not registered`));
      return Promise.resolve({
        id: request.model,
        object: 'model',
        created: 1,
        owned_by: 'test',
        format: 'gguf',
        task: 'text-generation',
        path: `/models/${request.model}.gguf`,
        size_bytes: 10,
        loaded: false,
        is_default: false,
        details: { architecture: null, parameters: null, context_length: null, quantization: null, embedding_length: null, has_chat_template: null },
        chat_template: null,
      });
    },
  };
  const handlers = { ...notBuilt, ...overrides } as unknown as HandlerMap;
  return { provider: createAppStateProvider(handlers), probe: { contexts, aborted } };
}

/** A running test server on an ephemeral 127.0.0.1 port. */
export interface TestServer {
  readonly baseUrl: string;
  readonly port: number;
  readonly probe: TestProviderProbe;
  close(): Promise<void>;
}

/**
 * Starts `createApiApp` over the test provider on 127.0.0.1:0, served by `createApiHttpServer`
 * (or by plain `http.createServer` when `plainNodeServer` is set).
 */
export async function startTestServer(options: Partial<ApiRouterOptions> & { plainNodeServer?: boolean } = {}): Promise<TestServer> {
  const { provider, probe } = createTestProvider();
  const { plainNodeServer = false, ...routerOptions } = options;
  const app = createApiApp(provider, { allowedOrigins: ['chrome-extension://abcdefghijklmnopabcdefghijklmnop'], ...routerOptions });
  const server: Server = plainNodeServer ? createServer(app) : createApiHttpServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    probe,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
