import {
  CancelledError,
  ModelNotFoundError,
  NotImplementedError,
  createAppStateProvider,
  routeIds,
  type AppStateProvider,
  type CallContext,
  type Handler,
  type HandlerMap,
  type RouteChunk,
  type RouteId,
  type RouteResponse,
} from '@tabagent/values';

/** A complete map in which every route answers 501, as the server's not-built handlers do. */
export function createNotImplementedHandlers(): HandlerMap {
  const entries = routeIds.map((id) => {
    const handler: Handler<RouteId> = async () => {
      throw new NotImplementedError(`${id} is not available: no backend in this test`, { details: { capability: 'test', route: id } });
    };
    return [id, handler] as const;
  });
  return Object.fromEntries(entries) as unknown as HandlerMap;
}

/** The stats `stats.get` reports after a fake generation of this request. */
function finishedStats(requestId: string): NonNullable<RouteResponse<'stats.get'>['last']> {
  return {
    model: 'tiny-llama',
    request_id: requestId,
    time_to_first_token_ms: 12,
    tokens_per_second: 50,
    prompt_tokens: 7,
    completion_tokens: 3,
    total_time_ms: 60,
    finish_reason: 'stop',
    finished_at: '2026-01-01T00:00:00.000Z',
  };
}

function waitForAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    const fail = (): void => reject(new CancelledError('Generation stopped'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new CancelledError('Generation stopped'));
      },
      { once: true },
    );
  });
}

/** Fixed system description the tests assert against. */
export const testSystemInfo: RouteResponse<'system.info'> = {
  os: { platform: 'linux', distro: 'Debian GNU/Linux', release: '12', arch: 'x64', hostname: 'test-host' },
  cpu: { manufacturer: 'AMD', brand: 'EPYC 7B13', architecture: 'x64', physical_cores: 2, logical_cores: 4, speed_ghz: 2.45, simd: ['avx2'] },
  memory: { total_mb: 24576, available_mb: 20000, used_mb: 4576 },
  gpus: [],
  node_version: 'v20.20.2',
  server_version: '1.2.3',
};

type LoadedModel = RouteResponse<'models.loaded'>['models'][number];

/** Observable state of the test backend. */
export interface TestBackendState {
  registered: Map<string, string>;
  loaded: Map<string, LoadedModel>;
  defaultModel: string | null;
  params: RouteResponse<'params.get'>;
  lastChatRequest: unknown;
  lastStats: RouteResponse<'stats.get'>['last'];
  generations: Map<string, AbortController>;
  contexts: CallContext[];
}

/**
 * Real handlers for a handful of routes over in-memory state (the rest answer 501): enough to
 * exercise every legacy mapping, streaming, stop and abort.
 */
export function createTestProvider(): { provider: AppStateProvider; state: TestBackendState } {
  const state: TestBackendState = {
    registered: new Map([
      ['tiny-llama', '/models/tiny-llama.gguf'],
      ['tiny-embedder', '/models/tiny-embedder'],
    ]),
    loaded: new Map(),
    defaultModel: null,
    params: {
      temperature: 0.7,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      repeat_penalty: 1.1,
      frequency_penalty: 0,
      presence_penalty: 0,
      max_tokens: 512,
      seed: null,
      stop: [],
      system_prompt: null,
    },
    lastChatRequest: undefined,
    lastStats: null,
    generations: new Map(),
    contexts: [],
  };
  const loadedEntry = (model: string): LoadedModel => ({
    model,
    format: model.includes('embedder') ? 'onnx' : 'gguf',
    task: model.includes('embedder') ? 'embedding' : 'text-generation',
    loaded_at: '2026-01-01T00:00:00.000Z',
    last_used_at: '2026-01-01T00:00:00.000Z',
    expires_at: null,
    context_size: 512,
    gpu_layers: 0,
    total_layers: 2,
    device: 'cpu',
    threads: 1,
    memory_mb: 12,
  });
  async function* streamWords(words: string[], context: CallContext): AsyncIterable<RouteChunk<'chat.completions'>> {
    for (const word of words) {
      await sleep(20, context.signal);
      yield {
        id: 'chatcmpl-test',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'tiny-llama',
        choices: [{ index: 0, delta: { content: word }, finish_reason: null }],
        request_id: context.requestId,
      };
    }
  }
  const handlers: HandlerMap = {
    ...createNotImplementedHandlers(),
    health: async () => ({ status: 'ok', service: 'tabagent-server', version: '1.2.3', uptime_seconds: 5, timestamp: '2026-01-01T00:00:00.000Z' }),
    'system.info': async () => testSystemInfo,
    'hardware.info': async () => ({
      cpu: testSystemInfo.cpu,
      memory: testSystemInfo.memory,
      gpus: [],
      advice: { recommended_threads: 2, execution_providers: ['cpu'], llama_gpu_backends: ['vulkan'] },
    }),
    'system.logs': async (request) => {
      const all = Array.from({ length: 20_000 }, (_unused, index) => `2026-01-01T00:00:00.000Z INFO line ${index} ${'x'.repeat(100)}`);
      return { lines: all.slice(-request.lines).join('\n'), log_file: '/data/logs/tabagent.log', total_lines: all.length };
    },
    'models.register': async (request) => {
      const id =
        request.id ??
        request.path
          .split('/')
          .pop()
          ?.replace(/\.gguf$/, '') ??
        'model';
      state.registered.set(id, request.path);
      return {
        id,
        object: 'model',
        created: 1,
        owned_by: 'local',
        format: 'gguf',
        task: 'text-generation',
        path: request.path,
        size_bytes: 1000,
        loaded: false,
        is_default: false,
        details: { architecture: 'llama', parameters: 1000, context_length: 512, quantization: 'F32', embedding_length: 8, has_chat_template: true },
      };
    },
    'models.load': async (request) => {
      if (!state.registered.has(request.model)) throw new ModelNotFoundError(`Model ${request.model} is not registered`);
      const entry = loadedEntry(request.model);
      const already = state.loaded.has(request.model);
      state.loaded.set(request.model, entry);
      if (entry.task === 'text-generation') state.defaultModel = request.model;
      return { ...entry, status: already ? 'already_loaded' : 'loaded', load_time_ms: 3 };
    },
    'models.unload': async (request) => {
      const was = state.loaded.delete(request.model);
      if (state.defaultModel === request.model) state.defaultModel = null;
      return { status: was ? 'unloaded' : 'not_loaded', model: request.model };
    },
    'models.loaded': async () => ({ models: [...state.loaded.values()], total: state.loaded.size, default_model: state.defaultModel }),
    'models.delete': async (request) => {
      if (!state.registered.delete(request.model)) throw new ModelNotFoundError(`Model ${request.model} is not registered`);
      return { status: 'unregistered', model: request.model };
    },
    'models.list': async () => ({ object: 'list', data: [] }),
    'params.get': async () => state.params,
    'params.set': async (request) => {
      state.params = { ...state.params, ...request };
      return state.params;
    },
    'stats.get': async () => ({ last: state.lastStats, models: [] }),
    'generation.halt': async () => {
      const ids = [...state.generations.keys()];
      for (const controller of state.generations.values()) controller.abort();
      return { status: 'halted', was_generating: ids.length > 0, stopped: ids.length, stopped_request_ids: ids };
    },
    'generation.stop': async (request) => {
      const controller = state.generations.get(request.request_id);
      controller?.abort();
      return { status: controller ? 'stopped' : 'not_found', request_id: request.request_id, stopped: controller ? 1 : 0 };
    },
    // The legacy generate action's route: an echo of the last message, with the stats stats.get then reports.
    'legacy.generate': async (request, context) => {
      state.lastChatRequest = request;
      state.contexts.push(context);
      const last = request.messages[request.messages.length - 1];
      // 'slow' runs until stopped (generation.stop, halt, or the session ending), as chat.completions does.
      if (last?.content === 'slow') {
        const controller = new AbortController();
        const stop = (): void => controller.abort();
        context.signal.addEventListener('abort', stop, { once: true });
        state.generations.set(context.requestId, controller);
        try {
          await waitForAbort(controller.signal);
        } finally {
          state.generations.delete(context.requestId);
          context.signal.removeEventListener('abort', stop);
        }
      }
      state.lastStats = finishedStats(context.requestId);
      return {
        text: `echo: ${last?.content ?? ''}`,
        stats: { time_to_first_token: 12, tokens_per_second: 50, input_tokens: 7, output_tokens: 3, total_time: 60 },
        finish_reason: 'stop',
        model: request.model ?? request.model_id ?? 'tiny-llama',
        request_id: context.requestId,
        usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
      };
    },
    'chat.completions': async (request, context) => {
      state.lastChatRequest = request;
      state.contexts.push(context);
      const last = request.messages[request.messages.length - 1];
      const prompt = typeof last?.content === 'string' ? last.content : '';
      if (request.stream) return streamWords(['one ', 'two ', 'three'], context);
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      context.signal.addEventListener('abort', stop, { once: true });
      state.generations.set(context.requestId, controller);
      try {
        if (prompt === 'slow') await waitForAbort(controller.signal);
        const text = `echo: ${prompt}`;
        state.lastStats = finishedStats(context.requestId);
        return {
          id: 'chatcmpl-test',
          object: 'chat.completion',
          created: 1,
          model: request.model ?? 'tiny-llama',
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }],
          usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
          request_id: context.requestId,
        };
      } finally {
        state.generations.delete(context.requestId);
        context.signal.removeEventListener('abort', stop);
      }
    },
    'hf.token.status': async () => ({ has_token: false, message: 'No token stored' }),
  };
  return { provider: createAppStateProvider(handlers), state };
}
