import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGgufModelBackend, createGgufModelManager, ggufModelInspector, type GgufModelManager } from '@tabagent/gguf-loader';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { createModelRegistry, createModelResolver, type ModelResolver } from '@tabagent/model-cache';
import { createOnnxModelBackend, createOnnxModelPool, createOnnxTextEmbedder, onnxModelInspector, type OnnxModelPool } from '@tabagent/onnx-loader';
import { writeTinyCrossEncoderModel, writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { TabAgentError } from '@tabagent/values';

// An unload (keep-alive expiry, POST /v1/models/unload, the soak's load/unload cycle) can release a
// model between the lookup that found it and the call that uses it. The resolver then loads it
// again and answers, as Ollama and LM Studio do, instead of a 503 the client has to retry.

let dir: string;
let pool: OnnxModelPool;
let manager: GgufModelManager;
let models: ModelResolver;
let expected: Float32Array[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tabagent-unload-race-'));
  const modelsDir = join(dir, 'models');
  const embedder = await writeTinyEmbedderModel(join(modelsDir, 'tiny-embedder'));
  await writeTinyCrossEncoderModel(join(modelsDir, 'tiny-reranker'));
  writeTinyLlamaGguf(join(modelsDir, 'tiny.gguf'));
  const direct = await createOnnxTextEmbedder(embedder.folder, { threads: 1 });
  expected = (await direct.embed(['hello world', 'cat'])).vectors;
  await direct.dispose();
  pool = createOnnxModelPool({ threads: 1 });
  manager = createGgufModelManager({ gpu: false, defaultThreads: 1, defaultContextSize: 512, sequences: 1, chatWrapper: 'general', defaultKeepAlive: -1 });
  const registry = createModelRegistry({ dataDir: join(dir, 'data'), inspectors: [onnxModelInspector, ggufModelInspector], modelsDir });
  models = createModelResolver({ registry, backends: [createOnnxModelBackend(pool), createGgufModelBackend(manager)] });
});
afterAll(async () => {
  await pool.dispose();
  await manager.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** The registry id of the only model of a task. */
async function idOf(task: string): Promise<string> {
  const found = (await models.registry.list()).filter((model) => model.task === task);
  expect(found).toHaveLength(1);
  return (found[0] as { id: string }).id;
}

describe('a model unloaded between lookup and use', () => {
  it('embeds after all: the embedder loads again and returns the same vectors', async () => {
    const id = await idOf('embedding');
    const embedder = await models.resolveEmbedder(id);
    expect(models.isLoaded(id)).toBe(true);
    await models.backendOf({ id, format: 'onnx' }).unload(id);
    expect(models.isLoaded(id)).toBe(false);

    const result = await embedder.embed(['hello world', 'cat']);
    expect(result.vectors.map((vector) => Array.from(vector))).toEqual(expected.map((vector) => Array.from(vector)));
    expect(result.tokenCounts).toEqual([4, 3]);
    expect(models.isLoaded(id)).toBe(true);
    expect(embedder.modelId).toBe(id);

    // Unloaded again: the embedder reloads again, not only once in its life.
    await models.backendOf({ id, format: 'onnx' }).unload(id);
    expect((await embedder.embed(['cat'])).vectors.map((vector) => Array.from(vector))).toEqual([Array.from(expected[1] as Float32Array)]);
  });

  it('embeds when the unload starts while the request is already queued', async () => {
    const id = await idOf('embedding');
    const embedder = await models.resolveEmbedder(id);
    const unloading = models.backendOf({ id, format: 'onnx' }).unload(id);
    const [first, second, unloaded] = await Promise.all([embedder.embed(['hello world']), embedder.embed(['cat']), unloading]);
    expect(unloaded).toBe(true);
    expect([first, second].map((result) => Array.from(result.vectors[0] as Float32Array))).toEqual(expected.map((vector) => Array.from(vector)));
  });

  it('embeds when the model it reloaded is unloaded too (an unload and a load arriving together), up to 3 reloads', async () => {
    const onnx = createOnnxModelBackend(pool);
    let loads = 0;
    // The first reload is released again at once, as the soak's unload-then-load cycle can do.
    const releasingOnce: typeof onnx = {
      ...onnx,
      embedder: async (model) => {
        const loaded = await onnx.embedder?.(model);
        loads += 1;
        if (loads === 2) await onnx.unload(model.id);
        return loaded;
      },
    };
    const resolver = createModelResolver({ registry: models.registry, backends: [releasingOnce, createGgufModelBackend(manager)] });
    const id = await idOf('embedding');
    const embedder = await resolver.resolveEmbedder(id);
    await onnx.unload(id);
    const result = await embedder.embed(['hello world', 'cat']);
    expect(result.vectors.map((vector) => Array.from(vector))).toEqual(expected.map((vector) => Array.from(vector)));
    expect(loads).toBe(3);
  });

  it('passes the 503 on for a request that was cancelled: nothing is loaded for nobody', async () => {
    const id = await idOf('embedding');
    const embedder = await models.resolveEmbedder(id);
    await models.backendOf({ id, format: 'onnx' }).unload(id);
    const controller = new AbortController();
    controller.abort();
    const error: unknown = await embedder.embed(['cat'], { signal: controller.signal }).then(
      () => null,
      (reason: unknown) => reason,
    );
    expect(TabAgentError.isInstance(error) ? [error.code, error.retryable] : error).toEqual(['model_not_loaded', true]);
    expect(models.isLoaded(id)).toBe(false);
  });

  it('reranks after all: the cross-encoder loads again and scores the same', async () => {
    const id = await idOf('rerank');
    const reranker = await models.resolveReranker(id);
    if (!reranker) throw new Error('the tiny cross-encoder did not resolve');
    const before = await reranker.score('cat', ['a cat', 'a dog']);
    await models.backendOf({ id, format: 'onnx' }).unload(id);
    expect(await reranker.score('cat', ['a cat', 'a dog'])).toEqual(before);
    expect(models.isLoaded(id)).toBe(true);
  });

  it('embeds with a GGUF model unloaded under it, as with an ONNX one', async () => {
    const id = await idOf('text-generation');
    const embedder = await models.resolveEmbedder(id);
    const before = await embedder.embed(['hello world']);
    await models.backendOf({ id, format: 'gguf' }).unload(id);
    expect(models.isLoaded(id)).toBe(false);
    const after = await embedder.embed(['hello world']);
    expect(after.vectors.map((vector) => Array.from(vector))).toEqual(before.vectors.map((vector) => Array.from(vector)));
    expect(after.tokenCounts).toEqual(before.tokenCounts);
    expect(models.isLoaded(id)).toBe(true);
  });

  it('chats with a GGUF model unloaded between its load and the generation, loading it again', async () => {
    const id = await idOf('text-generation');
    const { model, generator } = await models.resolveTextModel(id);
    await models.ensureLoaded(model, {});
    // The soak's cycle: an unload lands after the request's load, before its generation starts.
    await models.backendOf({ id, format: 'gguf' }).unload(id);
    expect(models.isLoaded(id)).toBe(false);
    const result = await generator.chat(id, { messages: [{ role: 'user', content: 'hi' }], maxTokens: 2 }).result;
    expect(result.completionTokens).toBeGreaterThan(0);
    expect(models.isLoaded(id)).toBe(true);
    // A cancelled request loads nothing.
    await models.backendOf({ id, format: 'gguf' }).unload(id);
    const controller = new AbortController();
    controller.abort();
    const cancelled: unknown = await generator.chat(id, { messages: [{ role: 'user', content: 'hi' }], maxTokens: 2, signal: controller.signal }).result.then(
      () => null,
      (reason: unknown) => reason,
    );
    expect(TabAgentError.isInstance(cancelled) ? cancelled.code : cancelled).toBe('model_not_loaded');
    expect(models.isLoaded(id)).toBe(false);
  });
});
