import { inspectOnnxModelFolder } from './onnx-model-inspector.js';
import type { OnnxModelTask } from './model-folder.js';
import { createOnnxCrossEncoder, type OnnxCrossEncoder } from './onnx-cross-encoder.js';
import { createOnnxTextEmbedder, type OnnxTextEmbedder, type OnnxTextEmbedderOptions } from './onnx-text-embedder.js';
import { createOnnxTokenClassifier, type OnnxTokenClassifier } from './onnx-token-classifier.js';

/** A model held by the pool, by task. */
export type LoadedOnnxModel = { id: string; folder: string; loadedAt: Date } & (
  { task: 'embedding'; model: OnnxTextEmbedder } | { task: 'rerank'; model: OnnxCrossEncoder } | { task: 'token-classification'; model: OnnxTokenClassifier }
);

/** Options every model in the pool is loaded with (providers and threads from the hardware package). */
export type OnnxModelPoolOptions = Omit<OnnxTextEmbedderOptions, 'modelId' | 'modelFile' | 'task' | 'maxTokens' | 'pooling'>;

/** Loaded ONNX models by registry id: one load per id even when requests race. */
export interface OnnxModelPool {
  /** Loads the folder as `id` (task from the folder unless given), or returns the loaded one. */
  load(id: string, folder: string, task?: OnnxModelTask): Promise<LoadedOnnxModel>;
  /** The loaded model, if any. */
  get(id: string): LoadedOnnxModel | undefined;
  /** Every loaded model. */
  list(): LoadedOnnxModel[];
  /** Releases a model; false when it was not loaded. */
  unload(id: string): Promise<boolean>;
  /** Releases everything; idempotent. */
  dispose(): Promise<void>;
}

class OnnxModelPoolImpl implements OnnxModelPool {
  private readonly loaded = new Map<string, LoadedOnnxModel>();
  private readonly loading = new Map<string, Promise<LoadedOnnxModel>>();

  constructor(private readonly options: OnnxModelPoolOptions) {}

  load(id: string, folder: string, task?: OnnxModelTask): Promise<LoadedOnnxModel> {
    const existing = this.loaded.get(id);
    if (existing) return Promise.resolve(existing);
    const pending = this.loading.get(id);
    if (pending) return pending;
    const promise = this.create(id, folder, task).finally(() => this.loading.delete(id));
    this.loading.set(id, promise);
    return promise;
  }

  private async create(id: string, folder: string, task?: OnnxModelTask): Promise<LoadedOnnxModel> {
    const started = performance.now();
    this.options.logger?.info({ model: id, path: folder }, 'Loading model');
    const resolvedTask = task ?? (await inspectOnnxModelFolder(folder)).task;
    const options = { ...this.options, modelId: id, task: resolvedTask };
    const loadedAt = new Date();
    let entry: LoadedOnnxModel;
    if (resolvedTask === 'embedding') entry = { id, folder, loadedAt, task: resolvedTask, model: await createOnnxTextEmbedder(folder, options) };
    else if (resolvedTask === 'rerank') entry = { id, folder, loadedAt, task: resolvedTask, model: await createOnnxCrossEncoder(folder, options) };
    else entry = { id, folder, loadedAt, task: resolvedTask, model: await createOnnxTokenClassifier(folder, options) };
    this.loaded.set(id, entry);
    this.options.logger?.info({ model: id, task: resolvedTask, loadTimeMs: Math.round(performance.now() - started) }, 'Model loaded');
    return entry;
  }

  get(id: string): LoadedOnnxModel | undefined {
    return this.loaded.get(id);
  }

  list(): LoadedOnnxModel[] {
    return [...this.loaded.values()];
  }

  async unload(id: string): Promise<boolean> {
    const entry = this.loaded.get(id);
    if (!entry) return false;
    this.loaded.delete(id);
    await entry.model.dispose();
    return true;
  }

  async dispose(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    await Promise.all([...this.loaded.keys()].map((id) => this.unload(id)));
  }
}

/** Creates a pool that loads ONNX model folders on demand with shared session options. */
export function createOnnxModelPool(options: OnnxModelPoolOptions = {}): OnnxModelPool {
  return new OnnxModelPoolImpl(options);
}
