import { loadOptionsOf, toMegabytes, type LoadedModelView, type ModelBackend, type ModelTask } from '@tabagent/model-cache';
import { inspectGgufFile } from './gguf-model-info.js';
import type { GgufModelManager, LoadedGgufModel } from './gguf-model-manager.js';

/** The `gguf` model backend over a manager: load, unload, estimate, chat, completions, embeddings. */
export function createGgufModelBackend(manager: GgufModelManager): ModelBackend {
  const taskOf = new Map<string, ModelTask>();

  const view = (model: LoadedGgufModel): LoadedModelView => ({
    model: model.id,
    format: 'gguf',
    task: taskOf.get(model.id) ?? (model.info.embeddingOnly ? 'embedding' : 'text-generation'),
    loaded_at: model.loadedAt.toISOString(),
    last_used_at: model.lastUsedAt.toISOString(),
    expires_at: model.expiresAt ? model.expiresAt.toISOString() : null,
    context_size: model.contextSize,
    gpu_layers: model.gpuLayers,
    total_layers: model.totalLayers,
    device: model.device,
    threads: model.threads,
    memory_mb: toMegabytes(model.memoryBytes),
    running: model.activeGenerations - model.queuedGenerations,
    queued: model.queuedGenerations,
  });

  const load: ModelBackend['load'] = async (model, options) => {
    taskOf.set(model.id, model.task);
    const started = performance.now();
    const { model: loaded, alreadyLoaded } = await manager.load(model.id, model.path, options);
    return { view: view(loaded), alreadyLoaded, loadTimeMs: alreadyLoaded ? performance.now() - started : loaded.loadTimeMs };
  };

  return {
    format: 'gguf',
    load,
    unload: async (modelId) => {
      taskOf.delete(modelId);
      return manager.unload(modelId);
    },
    loadedPath: (modelId) => manager.get(modelId)?.path,
    loaded: () => manager.list().map(view),
    async estimate(model, options) {
      const result = await manager.estimate(model.path, options);
      return { ramBytes: result.ramBytes, vramBytes: result.vramBytes, gpuLayers: result.gpuLayers };
    },
    // Read from the header on demand rather than kept in every listing.
    chatTemplate: async (model) => (await inspectGgufFile(model.path)).chatTemplate,
    generator: manager,
    // Any GGUF embeds (pooled hidden states), so an embedding request may name a chat model too.
    async embedder(model) {
      if (manager.get(model.id) === undefined) await load(model, loadOptionsOf(model));
      else taskOf.set(model.id, model.task);
      return manager.embedder(model.id);
    },
  };
}
