import { existsSync, type Stats } from 'node:fs';
import path from 'node:path';
import {
  toMegabytes,
  type HubFile,
  type HubVariant,
  type LoadedModelView,
  type ModelBackend,
  type ModelInspector,
  type RegisteredModel,
} from '@tabagent/model-cache';
import { modelFilePreference } from './model-folder.js';
import { inspectOnnxModelFolder } from './onnx-model-inspector.js';
import type { LoadedOnnxModel, OnnxModelPool } from './onnx-model-pool.js';

/** Files beside the model file that a folder needs or may use (the tokenizer is required). */
const folderFiles = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'modules.json', '1_Pooling/config.json'];

/** The variant key of an ONNX file: `fp32` for `model.onnx`, else the suffix (`onnx/model_q4f16.onnx` → `q4f16`). */
export function onnxVariantKey(file: string): string | null {
  const match = /^(?:onnx\/)?model(?:_(?<suffix>[A-Za-z0-9]+))?\.onnx$/u.exec(file);
  if (!match) return null;
  return match.groups?.['suffix'] ?? 'fp32';
}

function onnxHubVariants(files: readonly HubFile[], repo: string): HubVariant[] {
  const byPath = new Map(files.map((file) => [file.path, file]));
  if (!byPath.has('tokenizer.json')) return [];
  const support = folderFiles.flatMap((name) => byPath.get(name) ?? []);
  const preference = (file: string): number => {
    const index = (modelFilePreference as readonly string[]).indexOf(file);
    if (index !== -1) return index;
    return modelFilePreference.length + (/fp16|q4|bnb4/u.test(file) ? 1 : 0);
  };
  const modelFiles = files
    .filter((file) => onnxVariantKey(file.path) !== null)
    .sort((a, b) => preference(a.path) - preference(b.path) || a.path.localeCompare(b.path));
  const repoName = repo.split('/').pop() ?? repo;
  const usedKeys = new Set<string>();
  return modelFiles.map((modelFile, index) => {
    let key = onnxVariantKey(modelFile.path) as string;
    if (usedKeys.has(key)) key = modelFile.path;
    usedKeys.add(key);
    // External weights: `model.onnx_data`, `model.onnx.data`, `model.onnx_data_1`, ...
    const external = files.filter(
      (file) => file.path !== modelFile.path && file.path.startsWith(modelFile.path) && /^(?:_data|\.data)/u.test(file.path.slice(modelFile.path.length)),
    );
    // The preferred variant takes the plain folder name; others get theirs, so two variants never share a folder.
    const folder = index === 0 ? repoName : `${repoName}-${key.replaceAll('/', '_')}`;
    const chosen = [modelFile, ...external, ...support];
    return {
      key,
      format: 'onnx',
      task: null,
      files: chosen.map((file) => ({ ...file, target: `${folder}/${file.path}` })),
      totalBytes: chosen.reduce((sum, file) => sum + file.size, 0),
      modelPath: folder,
    };
  });
}

/** Registry inspector for ONNX model folders (`model.onnx` or `onnx/model*.onnx` beside `tokenizer.json`). */
export const onnxModelInspector: ModelInspector = {
  format: 'onnx',
  detect: (folder: string, stat: Stats) =>
    stat.isDirectory() &&
    existsSync(path.join(folder, 'tokenizer.json')) &&
    (existsSync(path.join(folder, 'model.onnx')) || existsSync(path.join(folder, 'onnx'))),
  inspect: async (folder, options) => {
    const inspection = await inspectOnnxModelFolder(folder);
    return { task: options?.task ?? inspection.task, details: inspection.details, sizeBytes: inspection.sizeBytes };
  },
  hubVariants: onnxHubVariants,
};

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
    memory_mb: toMegabytes(sizeBytes),
  };
}

/**
 * The `onnx` model backend over a pool: embeddings, cross-encoder rerank and token
 * classification. ONNX sessions stay loaded until unloaded: they are small and reloading costs
 * more than keeping them.
 */
export function createOnnxModelBackend(pool: OnnxModelPool): ModelBackend {
  const sizes = new Map<string, number>();
  const ensureLoaded = async (model: RegisteredModel): Promise<LoadedOnnxModel> => {
    const task = model.task === 'text-generation' ? undefined : model.task;
    const entry = await pool.load(model.id, model.path, task);
    sizes.set(model.id, model.sizeBytes);
    return entry;
  };
  return {
    format: 'onnx',
    async load(model) {
      const alreadyLoaded = pool.get(model.id) !== undefined;
      const started = performance.now();
      const entry = await ensureLoaded(model);
      return { view: viewOf(entry, model.sizeBytes), alreadyLoaded, loadTimeMs: alreadyLoaded ? 0 : performance.now() - started };
    },
    async unload(modelId) {
      sizes.delete(modelId);
      return pool.unload(modelId);
    },
    loadedPath: (modelId) => pool.get(modelId)?.folder,
    loaded: () => pool.list().map((entry) => viewOf(entry, sizes.get(entry.id) ?? 0)),
    // An ONNX session holds its weights once plus activation arenas; 1.5x the files is a safe bound.
    estimate: async (model) => ({ ramBytes: model.sizeBytes * 1.5, vramBytes: 0, gpuLayers: 0 }),
    async embedder(model) {
      if (model.task !== 'embedding') return undefined;
      const entry = await ensureLoaded(model);
      return entry.task === 'embedding' ? entry.model : undefined;
    },
    async reranker(model) {
      const entry = await ensureLoaded(model);
      return entry.task === 'rerank' ? entry.model : undefined;
    },
    async entityExtractor(model) {
      const entry = await ensureLoaded(model);
      return entry.task === 'token-classification' ? entry.model : undefined;
    },
  };
}
