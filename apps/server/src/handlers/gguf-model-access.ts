import type { GgufLoadOptions, GgufModelManager, GgufTextEmbedder, LoadedGgufModel } from '@tabagent/gguf-loader';
import { InvalidRequestError, ModelNotFoundError, type RouteResponse } from '@tabagent/values';
import type { ModelRegistry, RegisteredModel } from '../model-registry.js';

/** What the GGUF handlers share: the registry, the manager and on-demand loading. */
export interface GgufModelAccessDeps {
  manager: GgufModelManager;
  registry: ModelRegistry;
}

/** A loaded model in the API's `LoadedModel` shape. */
export type LoadedModelView = RouteResponse<'models.loaded'>['models'][number];

/** Finds models for requests and loads them on demand. */
export interface GgufModelAccess {
  /**
   * The model a generation request means: the named one, else the selected default, else the
   * only loaded text model, else the only registered text model; otherwise `model_not_found`.
   */
  resolveTextModel(requested: string | undefined): Promise<RegisteredModel>;
  /** Loads a GGUF model unless it is loaded (registry settings, overridden by `options`). */
  ensureLoaded(model: RegisteredModel, options?: GgufLoadOptions): Promise<{ model: LoadedGgufModel; alreadyLoaded: boolean }>;
  /** The embedder of a GGUF embedding (or any GGUF) model, loaded on demand. */
  embedder(modelId: string): Promise<GgufTextEmbedder>;
  /** Converts a manager entry to the API shape. */
  view(model: LoadedGgufModel, task: RegisteredModel['task']): LoadedModelView;
}

/** Load options remembered in the registry, in the manager's names. */
export function loadOptionsOf(model: RegisteredModel): GgufLoadOptions {
  const settings = model.settings;
  return {
    contextSize: settings.context_size,
    gpuLayers: settings.gpu_layers,
    threads: settings.threads,
    keepAlive: settings.keep_alive,
  };
}

const megabyte = 1024 * 1024;

/** Creates the shared access object of the model and generation handlers. */
export function createGgufModelAccess(deps: GgufModelAccessDeps): GgufModelAccess {
  const { manager, registry } = deps;
  const taskOf = new Map<string, RegisteredModel['task']>();
  const resolvedLoaded = new Map<string, RegisteredModel>();

  const access: GgufModelAccess = {
    async resolveTextModel(requested) {
      if (requested !== undefined) {
        // A loaded model needs no registry scan (the hot path of every chat request).
        const cached = resolvedLoaded.get(requested);
        if (cached && manager.get(requested)?.path === cached.path) return cached;
        const model = await registry.get(requested);
        if (model.format !== 'gguf' || model.task !== 'text-generation') {
          throw new InvalidRequestError(`Model "${requested}" is a ${model.format} ${model.task} model; text generation needs a GGUF text-generation model`, {
            details: { model: requested },
          });
        }
        resolvedLoaded.set(requested, model);
        return model;
      }
      const selected = await registry.defaultModel();
      if (selected !== null) return access.resolveTextModel(selected);
      const textModels = (await registry.list()).filter((model) => model.format === 'gguf' && model.task === 'text-generation' && model.aliasOf === undefined);
      const loaded = textModels.filter((model) => manager.get(model.id) !== undefined);
      if (loaded.length === 1 && loaded[0]) return loaded[0];
      if (textModels.length === 1 && textModels[0]) return textModels[0];
      throw new ModelNotFoundError(
        textModels.length === 0
          ? 'No text-generation model is available: put a .gguf file in the models folder or register one'
          : `Several models are available (${textModels.map((model) => model.id).join(', ')}): name one in "model" or select a default with POST /v1/models/select`,
        { details: { available: textModels.map((model) => model.id) } },
      );
    },

    async ensureLoaded(model, options = {}) {
      if (model.format !== 'gguf') throw new InvalidRequestError(`Model "${model.id}" is not a GGUF model`);
      taskOf.set(model.id, model.task);
      const existing = manager.get(model.id);
      if (existing) return manager.load(model.id, model.path, { keepAlive: options.keepAlive });
      const remembered = loadOptionsOf(model);
      const merged: GgufLoadOptions = { ...remembered };
      for (const [key, value] of Object.entries(options) as [keyof GgufLoadOptions, GgufLoadOptions[keyof GgufLoadOptions]][]) {
        if (value !== undefined) Object.assign(merged, { [key]: value });
      }
      return manager.load(model.id, model.path, merged);
    },

    async embedder(modelId) {
      const model = await registry.get(modelId);
      await access.ensureLoaded(model);
      return manager.embedder(modelId);
    },

    view(model, task) {
      return {
        model: model.id,
        format: 'gguf',
        task: taskOf.get(model.id) ?? task,
        loaded_at: model.loadedAt.toISOString(),
        last_used_at: model.lastUsedAt.toISOString(),
        expires_at: model.expiresAt ? model.expiresAt.toISOString() : null,
        context_size: model.contextSize,
        gpu_layers: model.gpuLayers,
        total_layers: model.totalLayers,
        device: model.device,
        threads: model.threads,
        memory_mb: Math.round((model.memoryBytes / megabyte) * 10) / 10,
      };
    },
  };
  return access;
}
