import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createGgufModelBackend, createGgufModelManager, ggufModelInspector, type GgufModelManager } from '@tabagent/gguf-loader';
import { writeBrokenGguf, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import {
  ChatCompletionChunk,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionResponse,
  LoadModelResponse,
  ModelListResponse,
  StatsResponse,
  TabAgentError,
  createAppStateProvider,
  isChunkStream,
  parseRouteRequest,
  type AppStateProvider,
  type CallContext,
  type RouteChunk,
  type RouteId,
  type RouteRequestInput,
} from '@tabagent/values';
import { createModelRegistry, createModelResolver, type ModelRegistry } from '@tabagent/model-cache';
import { createGenerationHandlers, createModelHandlers, createNotBuiltHandlers, createRunningRequests } from '@tabagent/services';

let root: string;
let modelsDir: string;
let manager: GgufModelManager;
let registry: ModelRegistry;
let provider: AppStateProvider;
let counter = 0;

function contextFor(signal: AbortSignal = new AbortController().signal, requestId = `req-${++counter}`): CallContext {
  return { requestId, signal, transport: 'in-process', caller: {} };
}

async function call<K extends RouteId>(id: K, raw: RouteRequestInput<K>, context: CallContext = contextFor()) {
  return provider.handle(id, parseRouteRequest(id, raw), context);
}

async function callOnce<K extends RouteId>(id: K, raw: RouteRequestInput<K>, context?: CallContext) {
  const result = await call(id, raw, context);
  if (isChunkStream(result)) throw new Error(`${id} streamed`);
  return result;
}

async function callStream<K extends 'chat.completions' | 'completions'>(
  id: K,
  raw: RouteRequestInput<K>,
  context?: CallContext,
): Promise<AsyncIterable<RouteChunk<K>>> {
  const result = await call(id, raw, context);
  if (!isChunkStream(result)) throw new Error(`${id} did not stream`);
  return result as AsyncIterable<RouteChunk<K>>;
}

async function caught(promise: Promise<unknown>): Promise<TabAgentError> {
  const error: unknown = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(TabAgentError.isInstance(error)).toBe(true);
  return error as TabAgentError;
}

/** No end-of-generation token can be sampled: such a generation ends only by max_tokens or a stop. */
const ignoreEos = { ignore_eos: true } as const;
/**
 * Each run evaluates its whole prompt: a run that reuses the previous one's KV cache computes the
 * last prompt token in another batch split, whose logits can differ in the last digits.
 */
const evaluateAll = { cache_prompt: false } as const;

/** Waits until the generations are running (as halt_status reports them). */
async function untilActive(count: number): Promise<void> {
  while (((await callOnce('generation.halt_status', {})) as { active_requests: number }).active_requests < count) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const user = (content: string) => [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content },
];

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'gen-handlers-'));
  modelsDir = path.join(root, 'data', 'models');
  mkdirSync(modelsDir, { recursive: true });
  writeTinyLlamaGguf(path.join(modelsDir, 'tiny.gguf'));
  manager = createGgufModelManager({ gpu: false, defaultThreads: 1, defaultContextSize: 2048, sequences: 2, chatWrapper: 'general', defaultKeepAlive: -1 });
  registry = createModelRegistry({ dataDir: path.join(root, 'data'), inspectors: [ggufModelInspector], modelDirs: [root] });
  const models = createModelResolver({ registry, backends: [createGgufModelBackend(manager)] });
  const availableMemory = async () => ({ ramBytes: 4 * 1024 ** 3, vramBytes: 0 });
  provider = createAppStateProvider({
    ...createNotBuiltHandlers(() => ({ capability: 'test', detail: 'not in this test' })),
    ...createModelHandlers({ models, availableMemory }),
    ...createGenerationHandlers({ models, running: createRunningRequests() }),
  });
});

afterAll(async () => {
  await manager.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('generation and model handlers over a real tiny GGUF', () => {
  it('lists the model in the models folder, not loaded', async () => {
    const list = ModelListResponse.parse(await callOnce('models.list', {}));
    expect(list.data.map((model) => [model.id, model.format, model.task, model.loaded, model.is_default])).toEqual([
      ['tiny', 'gguf', 'text-generation', false, false],
    ]);
    expect(list.data[0]?.details).toMatchObject({ architecture: 'llama', context_length: 2048, quantization: 'F16' });
    expect(await callOnce('models.get', { model: 'tiny' })).toMatchObject({ id: 'tiny', loaded: false });
    expect((await caught(call('models.get', { model: 'nope' }))).code).toBe('model_not_found');
  });

  it('answers a chat naming no model with the only model, loading it on demand', async () => {
    const context = contextFor();
    const response = ChatCompletionResponse.parse(
      await callOnce('chat.completions', { messages: user('Hello'), max_tokens: 5, seed: 1, ...ignoreEos }, context),
    );
    expect(response).toMatchObject({ id: `chatcmpl-${context.requestId}`, object: 'chat.completion', model: 'tiny', request_id: context.requestId });
    expect(response.choices[0]).toMatchObject({ index: 0, finish_reason: 'length', logprobs: null, message: { role: 'assistant' } });
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([5, 6]).toContain(response.usage.completion_tokens);
    expect(response.usage.total_tokens).toBe(response.usage.prompt_tokens + response.usage.completion_tokens);
    const loaded = await callOnce('models.loaded', {});
    expect(loaded).toMatchObject({
      total: 1,
      default_model: null,
      models: [{ model: 'tiny', format: 'gguf', task: 'text-generation', gpu_layers: 0, device: 'cpu', threads: 1, context_size: 2048 }],
    });
  });

  it('streams chat chunks: role first, content deltas, finish_reason and usage last, request_id on each', async () => {
    const body = { messages: user('Stream'), max_tokens: 8, seed: 5, ...ignoreEos, ...evaluateAll };
    const whole = ChatCompletionResponse.parse(await callOnce('chat.completions', body));
    const context = contextFor();
    const chunks: RouteChunk<'chat.completions'>[] = [];
    for await (const chunk of await callStream('chat.completions', { ...body, stream: true }, context)) chunks.push(ChatCompletionChunk.parse(chunk));
    expect(chunks.every((chunk) => chunk.request_id === context.requestId && chunk.id === `chatcmpl-${context.requestId}`)).toBe(true);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const last = chunks[chunks.length - 1];
    expect(last?.choices[0]?.finish_reason).toBe('length');
    expect(last?.usage).toEqual(whole.usage);
    expect(chunks.slice(0, -1).every((chunk) => chunk.choices[0]?.finish_reason === null)).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(whole.choices[0]?.message.content);
  });

  it('completes raw prompts, streaming and not, with echo', async () => {
    const body = { prompt: 'the world', max_tokens: 6, seed: 2, ...ignoreEos, ...evaluateAll };
    const whole = CompletionResponse.parse(await callOnce('completions', body));
    expect(whole.choices[0]?.finish_reason).toBe('length');
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([6, 7]).toContain(whole.usage.completion_tokens);
    const texts: string[] = [];
    let final: RouteChunk<'completions'> | undefined;
    for await (const chunk of await callStream('completions', { ...body, prompt: ['the world'], stream: true })) {
      final = CompletionChunk.parse(chunk);
      texts.push(final.choices[0]?.text ?? '');
    }
    expect(texts.join('')).toBe(whole.choices[0]?.text);
    expect(final?.usage).toEqual(whole.usage);
    const echoed = CompletionResponse.parse(await callOnce('completions', { ...body, echo: true }));
    expect(echoed.choices[0]?.text).toBe(`the world${whole.choices[0]?.text ?? ''}`);
  });

  it('stops one generation by request id and reports it in halt status', async () => {
    const context = contextFor();
    // Only the stop can end it: no end-of-generation token, and a budget far beyond the context.
    const stream = await callStream('chat.completions', { messages: user('Long'), max_tokens: 1_000_000, stream: true, ...ignoreEos }, context);
    const chunks: RouteChunk<'chat.completions'>[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (chunks.length === 3) {
        expect(await callOnce('generation.halt_status', {})).toMatchObject({ generating: true, active_requests: 1, active_request_ids: [context.requestId] });
        expect(await callOnce('generation.stop', { request_id: context.requestId })).toEqual({ status: 'stopped', request_id: context.requestId, stopped: 1 });
      }
    }
    const last = chunks[chunks.length - 1];
    // OpenAI's values: a stopped generation is 'stop', and says so beside it.
    expect([last?.choices[0]?.finish_reason, last?.tabagent]).toEqual(['stop', { cancelled: true }]);
    expect(last?.usage?.completion_tokens).toBeGreaterThanOrEqual(2);
    expect(await callOnce('generation.stop', { request_id: context.requestId })).toEqual({ status: 'not_found', request_id: context.requestId, stopped: 0 });
    expect(await callOnce('generation.halt_status', {})).toMatchObject({ generating: false, active_requests: 0 });
  });

  it('halts every generation, and a client disconnect (signal) cancels a non-streaming one', async () => {
    const first = contextFor();
    const second = contextFor();
    const endless = { max_tokens: 1_000_000, seed: 3, ...ignoreEos };
    const a = callOnce('chat.completions', { messages: user('A'), ...endless }, first);
    const b = callOnce('chat.completions', { messages: user('B'), ...endless }, second);
    await untilActive(2);
    const halt = await callOnce('generation.halt', {});
    expect(halt).toMatchObject({ status: 'halted', was_generating: true, stopped: 2 });
    expect([...(halt as { stopped_request_ids: string[] }).stopped_request_ids].sort()).toEqual([first.requestId, second.requestId].sort());
    for (const response of await Promise.all([a, b])) {
      const parsed = ChatCompletionResponse.parse(response);
      expect([parsed.choices[0]?.finish_reason, parsed.tabagent]).toEqual(['stop', { cancelled: true }]);
    }
    expect((await callOnce('generation.halt_status', {})) as { last_halt_time: string | null }).toMatchObject({ last_halt_time: expect.any(String) });

    const disconnect = new AbortController();
    const pending = callOnce('chat.completions', { messages: user('C'), ...endless }, contextFor(disconnect.signal));
    await untilActive(1);
    disconnect.abort();
    const disconnected = ChatCompletionResponse.parse(await pending);
    expect([disconnected.choices[0]?.finish_reason, disconnected.tabagent]).toEqual(['stop', { cancelled: true }]);
  });

  it('returns JSON that matches a response_format schema, and tool_calls for a forced tool', async () => {
    const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] } }, required: ['answer'] };
    const json = ChatCompletionResponse.parse(
      await callOnce('chat.completions', {
        messages: user('JSON'),
        max_tokens: 100,
        seed: 4,
        response_format: { type: 'json_schema', json_schema: { name: 'answer', schema } },
      }),
    );
    expect(['yes', 'no']).toContain((JSON.parse(json.choices[0]?.message.content ?? '') as { answer: string }).answer);

    const tools = [
      { type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { q: { enum: ['a', 'b'] } }, required: ['q'] } } },
    ];
    const called = ChatCompletionResponse.parse(
      await callOnce('chat.completions', { messages: user('Use the tool'), max_tokens: 100, tools, tool_choice: 'required' }),
    );
    expect(called.choices[0]?.finish_reason).toBe('tool_calls');
    expect(called.choices[0]?.message.content).toBeNull();
    expect(called.choices[0]?.message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'lookup' } });
    expect(['a', 'b']).toContain((JSON.parse(called.choices[0]?.message.tool_calls?.[0]?.function.arguments ?? '') as { q: string }).q);

    // The tool result goes back as a tool message; the model answers after it.
    const followUp = ChatCompletionResponse.parse(
      await callOnce('chat.completions', {
        messages: [
          ...user('Use the tool'),
          { role: 'assistant', content: null, tool_calls: called.choices[0]?.message.tool_calls },
          { role: 'tool', tool_call_id: called.choices[0]?.message.tool_calls?.[0]?.id, content: '{"ok":true}' },
        ],
        max_tokens: 4,
        tools,
      }),
    );
    expect(followUp.usage.prompt_tokens).toBeGreaterThan(called.usage.prompt_tokens);
  });

  it('persists default parameters and applies them to requests', async () => {
    const params = await callOnce('params.set', { max_tokens: 3, temperature: 0.5 });
    expect(params).toMatchObject({ max_tokens: 3, temperature: 0.5, top_k: 40, seed: null });
    expect(await callOnce('params.get', {})).toEqual(params);
    const response = ChatCompletionResponse.parse(await callOnce('chat.completions', { messages: user('Defaults'), ...ignoreEos }));
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([3, 4]).toContain(response.usage.completion_tokens);
    await callOnce('params.set', { max_tokens: 512, temperature: 0.8 });
  });

  it('reports time to first token, tokens per second and token counts per model', async () => {
    const stats = StatsResponse.parse(await callOnce('stats.get', {}));
    expect(stats.last?.model).toBe('tiny');
    const tiny = stats.models.find((entry) => entry.model === 'tiny');
    expect(tiny?.generations).toBeGreaterThan(5);
    expect(tiny?.mean_time_to_first_token_ms).toBeGreaterThan(0);
    expect(tiny?.mean_tokens_per_second).toBeGreaterThan(0);
    expect(tiny?.recent.every((entry) => entry.prompt_tokens > 0)).toBe(true);
  });

  it('loads with options, reports already_loaded, unloads, selects defaults and refuses ambiguity', async () => {
    copyFileSync(path.join(modelsDir, 'tiny.gguf'), path.join(modelsDir, 'second.gguf'));
    const loaded = LoadModelResponse.parse(await callOnce('models.load', { model: 'second', context_size: 256, threads: 1, keep_alive: '10m' }));
    expect(loaded).toMatchObject({ status: 'loaded', model: 'second', context_size: 256, gpu_layers: 0, total_layers: 3, device: 'cpu' });
    expect(loaded.expires_at).not.toBeNull();
    expect(LoadModelResponse.parse(await callOnce('models.load', { model_id: 'second' })).status).toBe('already_loaded');
    expect(await callOnce('models.unload', { model: 'second' })).toEqual({ status: 'unloaded', model: 'second' });
    expect(await callOnce('models.unload', { model: 'second' })).toEqual({ status: 'not_loaded', model: 'second' });

    // Two text models, one loaded: the loaded one answers.
    expect(ChatCompletionResponse.parse(await callOnce('chat.completions', { messages: user('x'), max_tokens: 1 })).model).toBe('tiny');
    await callOnce('models.unload', { model: 'tiny' });
    expect((await caught(call('chat.completions', { messages: user('x'), max_tokens: 1 }))).code).toBe('model_not_found');
    expect(await callOnce('models.select', { model: 'second' })).toEqual({ status: 'selected', default_model: 'second' });
    expect(ChatCompletionResponse.parse(await callOnce('chat.completions', { messages: user('x'), max_tokens: 1 })).model).toBe('second');
    expect((await callOnce('models.list', {})) as { data: { id: string; is_default: boolean }[] }).toMatchObject({
      data: expect.arrayContaining([expect.objectContaining({ id: 'second', is_default: true, loaded: true })]),
    });
    // The remembered context size is used when it loads on demand.
    expect(manager.get('second')?.contextSize).toBe(256);
  });

  it("estimates memory and compatibility with node-llama-cpp's estimate", async () => {
    const estimate = await callOnce('resources.estimate', { model: 'tiny', context_size: 512 });
    expect(estimate).toMatchObject({
      model: 'tiny',
      fits_in_ram: true,
      fits_in_vram: true,
      can_load: true,
      reason: null,
      available_ram_mb: 4096,
      estimated_vram_mb: 0,
    });
    expect((estimate as { estimated_ram_mb: number }).estimated_ram_mb).toBeGreaterThan(0);
    expect(await callOnce('resources.compatibility', { model: 'tiny' })).toMatchObject({ model: 'tiny', compatible: true, recommended_device: 'cpu' });
  });

  it('refuses a broken model with invalid_model and keeps serving', async () => {
    writeBrokenGguf(path.join(modelsDir, 'broken.gguf'), 'missing-feed-forward-length');
    const error = await caught(call('chat.completions', { model: 'broken', messages: user('x'), max_tokens: 1 }));
    expect(error.code).toBe('invalid_model');
    expect(error.message).toMatch(/feed_forward_length/);
    expect((await caught(call('models.load', { model: 'broken' }))).code).toBe('invalid_model');
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([1, 2]).toContain(
      ChatCompletionResponse.parse(await callOnce('chat.completions', { model: 'tiny', messages: user('alive'), max_tokens: 1, ...ignoreEos })).usage
        .completion_tokens,
    );
    expect(await callOnce('models.delete', { model: 'broken' })).toEqual({ status: 'deleted', model: 'broken' });
    expect(existsSync(path.join(modelsDir, 'broken.gguf'))).toBe(false);
  });

  it('registers an outside file and only unregisters it on delete', async () => {
    const outside = path.join(root, 'outside.gguf');
    writeTinyLlamaGguf(outside, { seed: 9 });
    expect(await callOnce('models.register', { path: outside, id: 'outer' })).toMatchObject({ id: 'outer', path: outside, format: 'gguf', loaded: false });
    await callOnce('chat.completions', { model: 'outer', messages: user('hi'), max_tokens: 1 });
    expect(await callOnce('models.delete', { model: 'outer' })).toEqual({ status: 'unregistered', model: 'outer' });
    expect(existsSync(outside)).toBe(true);
    expect(manager.get('outer')).toBeUndefined();
  });
});
