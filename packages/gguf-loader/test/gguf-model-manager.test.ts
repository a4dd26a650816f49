import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeneralChatWrapper } from 'node-llama-cpp';
import { TabAgentError } from '@tabagent/values';
import type { ChatGenerationRequest, GenerationDelta, GenerationResult } from '@tabagent/values';
import { createGgufModelManager, type GgufModelManager } from '../src/index.js';
import { writeBrokenGguf, writeTinyLlamaGguf } from '../src/test-support/index.js';

const directory = mkdtempSync(join(tmpdir(), 'gguf-manager-'));
const modelPath = join(directory, 'tiny.gguf');
let manager: GgufModelManager;

const ask = (content: string, extra: Partial<ChatGenerationRequest> = {}): ChatGenerationRequest => ({
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content },
  ],
  maxTokens: 12,
  temperature: 0.8,
  seed: 42,
  ...extra,
});

/** The answer's text deltas, and the prompt's size as the run reported it before generating. */
async function collect(
  run: AsyncIterable<GenerationDelta> & { result: Promise<GenerationResult> },
): Promise<{ deltas: string[]; promptTokens: number[]; result: GenerationResult }> {
  const deltas: string[] = [];
  const promptTokens: number[] = [];
  for await (const delta of run) {
    if (delta.kind === 'prompt') promptTokens.push(delta.promptTokens);
    else if (delta.kind === 'content' || delta.kind === 'reasoning') deltas.push(delta.text);
  }
  return { deltas, promptTokens, result: await run.result };
}

async function caught(promise: Promise<unknown>): Promise<TabAgentError> {
  const error: unknown = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(TabAgentError.isInstance(error)).toBe(true);
  return error as TabAgentError;
}

beforeAll(async () => {
  writeTinyLlamaGguf(modelPath);
  manager = createGgufModelManager({
    gpu: false,
    defaultThreads: 1,
    defaultContextSize: 1024,
    sequences: 2,
    chatWrapper: new GeneralChatWrapper(),
    availableMemory: async () => ({ ramBytes: 8 * 1024 ** 3, vramBytes: 0 }),
  });
  await manager.load('tiny', modelPath, { keepAlive: -1 });
});

afterAll(async () => {
  await manager.dispose();
  rmSync(directory, { recursive: true, force: true });
});

describe('GgufModelManager (real node-llama-cpp, tiny random llama)', () => {
  it('loads a model and reports where its layers went', async () => {
    const loaded = manager.get('tiny');
    expect(loaded).toMatchObject({
      id: 'tiny',
      path: modelPath,
      contextSize: 1024,
      sequences: 2,
      gpuLayers: 0,
      totalLayers: 3,
      device: 'cpu',
      threads: 1,
      expiresAt: null,
    });
    expect(loaded?.memoryBytes).toBeGreaterThan(0);
    const again = await manager.load('tiny', modelPath);
    expect(again.alreadyLoaded).toBe(true);
    expect(manager.list().map((model) => model.id)).toEqual(['tiny']);
  });

  it('chats without streaming, with real token counts and max_tokens -> length', async () => {
    const result = await manager.chat('tiny', ask('Hello world')).result;
    expect(result.finishReason).toBe('length');
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([12, 13]).toContain(result.completionTokens);
    expect(result.promptTokens).toBeGreaterThan(5);
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.timeToFirstTokenMs).not.toBeNull();
    expect(result.tokensPerSecond).toBeGreaterThan(0);
  });

  it('streams deltas that add up to the final text', async () => {
    const { deltas, promptTokens, result } = await collect(manager.chat('tiny', ask('Stream please')));
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(result.text);
    // The prompt's size is reported once, before any text, and is the result's prompt tokens.
    expect(promptTokens).toEqual([result.promptTokens]);
    expect(await manager.countChatTokens('tiny', ask('Stream please'))).toBe(result.promptTokens);
  });

  it('gives the same output for the same seed and another for another seed', async () => {
    const first = await manager.chat('tiny', ask('Seeded', { seed: 7, maxTokens: 16, cachePrompt: false })).result;
    const second = await manager.chat('tiny', ask('Seeded', { seed: 7, maxTokens: 16, cachePrompt: false })).result;
    const other = await manager.chat('tiny', ask('Seeded', { seed: 8, maxTokens: 16, cachePrompt: false })).result;
    expect(second.text).toBe(first.text);
    expect(other.text).not.toBe(first.text);
  });

  it('completes a raw prompt', async () => {
    const result = await manager.complete('tiny', { prompt: 'the world', maxTokens: 6, seed: 1, cachePrompt: false }).result;
    expect(result.finishReason).toBe('length');
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([6, 7]).toContain(result.completionTokens);
    expect(result.promptTokens).toBeGreaterThanOrEqual(4);
    expect(result.text.length).toBeGreaterThan(0);
    const again = await manager.complete('tiny', { prompt: 'the world', maxTokens: 6, seed: 1, cachePrompt: false }).result;
    expect(again.text).toBe(result.text);
  });

  it('stops before a stop sequence', async () => {
    const request = { prompt: 'hello', maxTokens: 40, seed: 3, temperature: 0.9 };
    const full = await manager.complete('tiny', request).result;
    // A stop string that starts inside a token drops that token's leading text (node-llama-cpp),
    // so the stop is a character after a non-space character (pieces here are single characters).
    const match = /[A-Za-z0-9.,!?]([A-Za-z0-9])/.exec(full.text.slice(2));
    expect(match).not.toBeNull();
    const stop = (match as RegExpExecArray)[1] as string;
    const stopped = await manager.complete('tiny', { ...request, stop: [stop] }).result;
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it('constrains output to a JSON schema', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' }, color: { enum: ['red', 'green'] } }, required: ['ok', 'color'] };
    for (const seed of [1, 2, 3]) {
      const result = await manager.chat('tiny', ask('JSON please', { seed, maxTokens: 200, responseFormat: { type: 'json_schema', schema } })).result;
      expect(result.finishReason).toBe('stop');
      const parsed = JSON.parse(result.text) as { ok: unknown; color: unknown };
      expect(typeof parsed.ok).toBe('boolean');
      expect(['red', 'green']).toContain(parsed.color);
      expect(Object.keys(parsed).sort()).toEqual(['color', 'ok']);
    }
  });

  it('returns a forced tool call as tool_calls', async () => {
    const tools = [
      {
        name: 'get_weather',
        description: 'Weather of a city',
        parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Rome'] } }, required: ['city'] },
      },
      { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } },
    ];
    const named = await manager.chat('tiny', ask('Weather?', { maxTokens: 200, tools, toolChoice: { name: 'get_weather' } })).result;
    expect(named.finishReason).toBe('tool_calls');
    expect(named.text).toBe('');
    expect(named.toolCalls).toHaveLength(1);
    expect(named.toolCalls[0]?.name).toBe('get_weather');
    expect(named.toolCalls[0]?.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(['Paris', 'Rome']).toContain((JSON.parse(named.toolCalls[0]?.arguments ?? '') as { city: string }).city);

    const required = await manager.chat('tiny', ask('Anything', { maxTokens: 200, tools, toolChoice: 'required' })).result;
    expect(required.finishReason).toBe('tool_calls');
    expect(['get_weather', 'get_time']).toContain(required.toolCalls[0]?.name);
  });

  it('documents tools in the prompt when the model may choose (auto)', async () => {
    const tools = [{ name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
    const plain = await manager.chat('tiny', ask('Weather?', { maxTokens: 4 })).result;
    const withTools = await manager.chat('tiny', ask('Weather?', { maxTokens: 4, tools })).result;
    expect(withTools.promptTokens).toBeGreaterThan(plain.promptTokens + 50);
    expect(['length', 'stop', 'tool_calls']).toContain(withTools.finishReason);
    const none = await manager.chat('tiny', ask('Weather?', { maxTokens: 4, tools, toolChoice: 'none' })).result;
    expect(none.promptTokens).toBe(plain.promptTokens);
  });

  it('ignore_eos runs past the token where the same seed stops', async () => {
    // Find a seed whose completion samples end-of-sequence early (the random vocabulary makes that
    // about 1 in 340 per token), then run that seed again with ignoreEos.
    const request = { prompt: 'the', maxTokens: 48, temperature: 1 };
    let stopped: { seed: number; result: GenerationResult } | undefined;
    for (let seed = 1; seed <= 300 && stopped === undefined; seed += 1) {
      const result = await manager.complete('tiny', { ...request, seed }).result;
      if (result.finishReason === 'stop') stopped = { seed, result };
    }
    expect(stopped).toBeDefined();
    const { seed, result } = stopped as { seed: number; result: GenerationResult };
    expect(result.completionTokens).toBeLessThan(48);
    const ignored = await manager.complete('tiny', { ...request, seed, ignoreEos: true }).result;
    expect(ignored.finishReason).toBe('length');
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([48, 49]).toContain(ignored.completionTokens);
    const chat = await manager.chat('tiny', ask('Go on', { maxTokens: 40, ignoreEos: true })).result;
    expect(chat.finishReason).toBe('length');
  });

  it('aborts mid-stream with the partial text and cancelled', async () => {
    const controller = new AbortController();
    // ignoreEos and no token limit: only the abort can end it.
    const run = manager.chat('tiny', ask('Long answer', { maxTokens: undefined, ignoreEos: true, signal: controller.signal }));
    const deltas: string[] = [];
    for await (const delta of run) {
      if (delta.kind !== 'content') continue;
      deltas.push(delta.text);
      if (deltas.length === 3) controller.abort();
    }
    const result = await run.result;
    expect(result.finishReason).toBe('cancelled');
    expect(result.text.startsWith(deltas.slice(0, 3).join(''))).toBe(true);
    expect(result.completionTokens).toBeGreaterThanOrEqual(3);
  });

  it('an abort before the first token (during prompt evaluation) is a cancelled result, not an error', async () => {
    for (let turns = 0; turns < 8; turns += 1) {
      const controller = new AbortController();
      const run = manager.chat('tiny', ask('Abort early', { maxTokens: undefined, ignoreEos: true, signal: controller.signal }));
      for (let turn = 0; turn < turns; turn += 1) await new Promise((resolve) => setImmediate(resolve));
      controller.abort();
      const result = await run.result;
      expect(result.finishReason).toBe('cancelled');
    }
  });

  it('runs concurrent streams (more than the sequences, so some queue) with the same output as alone', async () => {
    // Every run evaluates its whole prompt (cachePrompt false), so queueing is the only difference:
    // with reuse, logits computed in another batch split can differ in the last digits.
    const seeds = [11, 12, 13];
    const alone: string[] = [];
    for (const seed of seeds) alone.push((await manager.chat('tiny', ask('Together', { seed, maxTokens: 24, cachePrompt: false })).result).text);
    const together = await Promise.all(seeds.map((seed) => collect(manager.chat('tiny', ask('Together', { seed, maxTokens: 24, cachePrompt: false })))));
    expect(together.map(({ result }) => result.text)).toEqual(alone);
    expect(together.map(({ deltas }) => deltas.join(''))).toEqual(alone);
  });

  it('embeds texts: dimension, unit length, deterministic', async () => {
    const embedder = await manager.embedder('tiny');
    expect(embedder.dimensions).toBe(64);
    const { vectors, tokenCounts } = await embedder.embed(['hello world', 'the cat']);
    expect(vectors).toHaveLength(2);
    for (const vector of vectors) {
      expect(vector.length).toBe(64);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    }
    expect(tokenCounts.every((count) => count > 0)).toBe(true);
    const again = await embedder.embed(['hello world']);
    expect(Array.from(again.vectors[0] ?? [])).toEqual(Array.from(vectors[0] ?? []));
  });

  it('truncates an input longer than its context to what fits, BOS and EOS included (it was an internal error)', async () => {
    const embedder = await manager.embedder('tiny');
    const { vectors, tokenCounts } = await embedder.embed(['x'.repeat(20_000), 'word '.repeat(5_000)]);
    expect(vectors.map((vector) => vector.length)).toEqual([64, 64]);
    expect(tokenCounts).toEqual([embedder.maxTokens - 2, embedder.maxTokens - 2]);
  });

  it('refuses every broken file with invalid_model and keeps working', async () => {
    for (const kind of ['duplicate-token', 'missing-feed-forward-length', 'missing-head-count', 'tensor-outside-file'] as const) {
      const path = join(directory, `${kind}.gguf`);
      writeBrokenGguf(path, kind);
      const error = await caught(manager.load(kind, path));
      expect(error.code).toBe('invalid_model');
      expect(manager.get(kind)).toBeUndefined();
    }
    const result = await manager.chat('tiny', ask('Still alive?', { maxTokens: 3 })).result;
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([3, 4]).toContain(result.completionTokens);
  });

  it('refuses a load that does not fit with out_of_memory and the figures', async () => {
    const small = createGgufModelManager({
      gpu: false,
      defaultThreads: 1,
      defaultContextSize: 512,
      availableMemory: async () => ({ ramBytes: 1024 * 1024, vramBytes: 0 }),
    });
    try {
      const error = await caught(small.load('tiny', modelPath));
      expect(error.code).toBe('out_of_memory');
      expect(error.details).toMatchObject({ model: 'tiny', available_ram_mb: 1 });
      expect(error.details?.['required_ram_mb']).toEqual(expect.any(Number));
      const estimate = await small.estimate(modelPath);
      expect(estimate).toMatchObject({ canLoad: false, fitsInRam: false, gpuLayers: 0, contextSize: 512 });
    } finally {
      await small.dispose();
    }
  });

  it('unloads after a keep-alive expires, after keep_alive 0, and on request', async () => {
    await manager.load('short', modelPath, { keepAlive: '300ms', contextSize: 256 });
    expect(manager.get('short')?.expiresAt).toBeInstanceOf(Date);
    const loadedAt = Date.now();
    while (manager.get('short') !== undefined && Date.now() - loadedAt < 5000) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(manager.get('short')).toBeUndefined();
    // Not before its keep-alive.
    expect(Date.now() - loadedAt).toBeGreaterThanOrEqual(250);

    await manager.load('once', modelPath, { contextSize: 256 });
    await manager.chat('once', ask('Once', { maxTokens: 2, keepAlive: 0 })).result;
    for (let waited = 0; manager.get('once') !== undefined && waited < 5000; waited += 25) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(manager.get('once')).toBeUndefined();

    await manager.load('gone', modelPath, { contextSize: 256 });
    expect(await manager.unload('gone')).toBe(true);
    expect(await manager.unload('gone')).toBe(false);
    // A generation for a model unloaded under it loads it again as it was (Ollama's on-demand load)...
    expect((await manager.chat('gone', ask('Hi', { maxTokens: 2 })).result).completionTokens).toBeGreaterThan(0);
    expect(manager.get('gone')?.contextSize).toBe(256);
    expect(await manager.unload('gone')).toBe(true);
    // ...and one for a model this manager never loaded is not loaded.
    const error = await caught(manager.chat('never-loaded', ask('Hi')).result);
    expect(error.code).toBe('model_not_loaded');
  });
});
