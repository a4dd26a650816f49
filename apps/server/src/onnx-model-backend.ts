import { existsSync } from 'node:fs';
import path from 'node:path';
import { inspectOnnxModelFolder, type LoadedOnnxModel, type OnnxModelPool } from '@tabagent/onnx-loader';
import type { ExtraModelBackend } from './handlers/model-handlers.js';
import type { LoadedModelView } from './handlers/gguf-model-access.js';
import type { ModelInspector, RegisteredModel } from './model-registry.js';

/** Registry inspector for ONNX model folders (`model.onnx` or `onnx/model*.onnx` beside `tokenizer.json`). */
export const onnxModelInspector: ModelInspector = {
  format: 'onnx',
  detect: (folder, stat) =>
    stat.isDirectory() &&
    existsSync(path.join(folder, 'tokenizer.json')) &&
    (existsSync(path.join(folder, 'model.onnx')) || existsSync(path.join(folder, 'onnx'))),
  inspect: async (folder, options) => {
    const inspection = await inspectOnnxModelFolder(folder);
    return { task: options?.task ?? inspection.task, details: inspection.details, sizeBytes: inspection.sizeBytes };
  },
};

const megabyte = 1024 * 1024;

function viewOf(entry: LoadedOnnxModel, sizeBytes: number): LoadedModelView {
  const loadedAt = entry.loadedAt.toISOString();
  return {
    model: entry.id,
    format: 'onnx',
    task: entry.task,
    loaded_at: loadedAt,
    last_used_at: loadedAt,
    expires_at: null,
    context_size: null,
    gpu_layers: 0,
    total_layers: null,
    device: entry.model.executionProvider,
    threads: null,
    memory_mb: Math.round((sizeBytes / megabyte) * 10) / 10,
  };
}

/**
 * ONNX models behind the model routes (load, unload, loaded) through the onnx-loader pool. ONNX
 * sessions stay loaded until unloaded: they are small and reloading costs more than keeping them.
 */
export function createOnnxModelBackend(pool: OnnxModelPool): ExtraModelBackend & { ensureLoaded(model: RegisteredModel): Promise<LoadedOnnxModel> } {
  const sizes = new Map<string, number>();
  const ensureLoaded = async (model: RegisteredModel): Promise<LoadedOnnxModel> => {
    const task = model.task === 'text-generation' ? undefined : model.task;
    const entry = await pool.load(model.id, model.path, task);
    sizes.set(model.id, model.sizeBytes);
    return entry;
  };
  return {
    format: 'onnx',
    ensureLoaded,
    async load(model) {
      const alreadyLoaded = pool.get(model.id) !== undefined;
      const started = performance.now();
      const entry = await ensureLoaded(model);
      return { model: viewOf(entry, model.sizeBytes), alreadyLoaded, loadTimeMs: alreadyLoaded ? 0 : performance.now() - started };
    },
    async unload(modelId) {
      sizes.delete(modelId);
      return pool.unload(modelId);
    },
    loaded() {
      return pool.list().map((entry) => viewOf(entry, sizes.get(entry.id) ?? 0));
    },
    async estimateBytes(model) {
      // An ONNX session holds its weights once plus activation arenas; 1.5x the file is a safe bound.
      return model.sizeBytes * 1.5;
    },
  };
}
