import { InvalidRequestError, ModelNotFoundError, TabAgentError, type RouteResponse, type TextEmbedder } from '@tabagent/values';
import type { EntityExtractor, LoadedModelView, ModelBackend, ModelLoadOptions, RerankScorer, TextGenerator } from './model-backend.js';
import type { ModelRegistry } from './model-registry.js';
import type { ModelTask, RegisteredModel } from './model-types.js';

/** What the resolver needs. */
export interface ModelResolverOptions {
  registry: ModelRegistry;
  /**
   * One backend per format, in order of preference: when a request names no model, the first
   * backend with a model of the task wins (the server lists ONNX before GGUF, since purpose-built
   * encoders beat a GGUF's pooled hidden states for retrieval).
   */
  backends: readonly ModelBackend[];
  /** The configured embedding model (flag, environment or memory settings), if any. */
  preferredEmbeddingModel?: () => Promise<string | null | undefined>;
}

/** Finds the model a request means and loads it on demand, whatever its format. */
export interface ModelResolver {
  readonly registry: ModelRegistry;
  readonly backends: readonly ModelBackend[];
  /** The backend of a format; `invalid_request` when this server has none. */
  backendOf(model: Pick<RegisteredModel, 'id' | 'format'>): ModelBackend;
  /** True when a backend holds the model loaded. */
  isLoaded(modelId: string): boolean;
  /** Every loaded model of every backend. */
  loaded(): LoadedModelView[];
  /**
   * The model a generation request means: the named one, else the selected default, else the
   * only loaded text model, else the only registered text model; otherwise `model_not_found`.
   */
  resolveTextModel(requested: string | undefined): Promise<{ model: RegisteredModel; generator: TextGenerator }>;
  /** Loads a model unless it is loaded (registry settings, overridden by `options`). */
  ensureLoaded(model: RegisteredModel, options?: ModelLoadOptions): Promise<{ view: LoadedModelView; alreadyLoaded: boolean; loadTimeMs: number }>;
  /** Unloads a model from every backend that holds it; false when none did. */
  unload(modelId: string): Promise<boolean>;
  /** The named model's embedder, or the configured / first registered embedding model's. */
  resolveEmbedder(modelId?: string): Promise<TextEmbedder>;
  /** A cross-encoder, or null when the named model is an embedding model (cosine fallback) or none is registered. */
  resolveReranker(modelId?: string): Promise<RerankScorer | null>;
  /** The named (or first registered) token-classification model, or null when there is none. */
  resolveEntityExtractor(modelId?: string | null): Promise<EntityExtractor | null>;
  /** The id `resolveEmbedder()` would use, or null when no embedding model is registered. */
  defaultEmbeddingModelId(): Promise<string | null>;
  listEmbeddingModels(): Promise<RouteResponse<'embedding_models.list'>['models']>;
}

/** Load options remembered in the registry, overridden by the defined ones of `options`. */
export function loadOptionsOf(model: RegisteredModel, options: ModelLoadOptions = {}): ModelLoadOptions {
  const settings = model.settings;
  const merged: ModelLoadOptions = {
    contextSize: settings.context_size,
    gpuLayers: settings.gpu_layers,
    threads: settings.threads,
    keepAlive: settings.keep_alive,
  };
  for (const [key, value] of Object.entries(options) as [keyof ModelLoadOptions, ModelLoadOptions[keyof ModelLoadOptions]][]) {
    if (value !== undefined) Object.assign(merged, { [key]: value });
  }
  return merged;
}

/** Loads a call may make after unloads released its model under it, before the 503 is passed on. */
const maxReloadsPerCall = 3;

/**
 * Runs each call on the model resolved last; when an unload released that model between the lookup and
 * the call (a keep-alive expiry, an explicit unload, memory pressure), resolves it again (which
 * loads it) and runs the call again. Ollama and LM Studio answer such a request by loading the
 * model again; a retryable 503 would push that work onto every client. An unload and a load
 * arriving together (POST /v1/models/unload then /load, as the soak cycles them) can release the
 * reloaded model too, so a call reloads up to 3 times; past that, or for a cancelled request, the
 * error is passed on.
 */
function reloading<M>(first: M, load: () => Promise<M | undefined>): <T>(call: (model: M) => Promise<T>, signal: AbortSignal | undefined) => Promise<T> {
  let current = first;
  return async (call, signal) => {
    for (let reloads = 0; ; reloads += 1) {
      try {
        return await call(current);
      } catch (error) {
        if (!TabAgentError.isInstance(error) || error.code !== 'model_not_loaded' || signal?.aborted === true || reloads >= maxReloadsPerCall) throw error;
        const again = await load();
        if (!again) throw error;
        current = again;
      }
    }
  };
}

/** Creates the resolver shared by the model, generation, embedding and memory handlers. */
export function createModelResolver(options: ModelResolverOptions): ModelResolver {
  const { registry, backends } = options;
  // A loaded model needs no registry scan (the hot path of every chat request).
  const resolvedLoaded = new Map<string, RegisteredModel>();

  const findBackend = (format: string): ModelBackend | undefined => backends.find((backend) => backend.format === format);
  const backendOf = (model: Pick<RegisteredModel, 'id' | 'format'>): ModelBackend => {
    const backend = findBackend(model.format);
    if (!backend)
      throw new InvalidRequestError(`Model "${model.id}" is a ${model.format} model and no backend of this server runs ${model.format} models`, {
        details: { model: model.id },
      });
    return backend;
  };
  const generatorOf = (model: RegisteredModel): TextGenerator => {
    const generator = model.task === 'text-generation' ? findBackend(model.format)?.generator : undefined;
    if (!generator) {
      throw new InvalidRequestError(`Model "${model.id}" is a ${model.format} ${model.task} model; text generation needs a text-generation model`, {
        details: { model: model.id },
      });
    }
    return generator;
  };
  const isLoaded = (modelId: string): boolean => backends.some((backend) => backend.loadedPath(modelId) !== undefined);
  const originals = async (): Promise<RegisteredModel[]> => (await registry.list()).filter((model) => model.aliasOf === undefined);
  const firstOfTask = async (task: ModelTask): Promise<RegisteredModel | undefined> => {
    // An upstream model is used when a request or a setting names it, never picked by default:
    // the memory's texts would otherwise leave this machine unasked.
    const models = (await originals()).filter((model) => model.source !== 'upstream');
    for (const backend of backends) {
      const found = models.find((model) => model.task === task && model.format === backend.format);
      if (found) return found;
    }
    return undefined;
  };

  const resolveTextModel = async (requested: string | undefined): Promise<{ model: RegisteredModel; generator: TextGenerator }> => {
    if (requested !== undefined) {
      const cached = resolvedLoaded.get(requested);
      if (cached && findBackend(cached.format)?.loadedPath(cached.id) === cached.path) return { model: cached, generator: generatorOf(cached) };
      const model = await registry.get(requested);
      const generator = generatorOf(model);
      resolvedLoaded.set(requested, model);
      return { model, generator };
    }
    const selected = await registry.defaultModel();
    if (selected !== null) return resolveTextModel(selected);
    const textModels = (await originals()).filter((model) => model.task === 'text-generation' && findBackend(model.format)?.generator !== undefined);
    const loaded = textModels.filter((model) => isLoaded(model.id));
    const only = loaded.length === 1 ? loaded[0] : textModels.length === 1 ? textModels[0] : undefined;
    if (only) return { model: only, generator: generatorOf(only) };
    throw new ModelNotFoundError(
      textModels.length === 0
        ? 'No text-generation model is available: pull one (POST /v1/models/pull, `tabagent pull hf.co/<owner>/<repo>:Q4_K_M`), put a .gguf file in the models folder, or register one'
        : `Several models are available (${textModels.map((model) => model.id).join(', ')}): name one in "model" or select a default with POST /v1/models/select`,
      { details: { available: textModels.map((model) => model.id) } },
    );
  };

  const defaultEmbeddingModelId = async (): Promise<string | null> => {
    const preferred = await options.preferredEmbeddingModel?.();
    if (preferred) return preferred;
    return (await firstOfTask('embedding'))?.id ?? null;
  };

  const resolveEmbedder = async (modelId?: string): Promise<TextEmbedder> => {
    const id = modelId ?? (await defaultEmbeddingModelId());
    if (!id) {
      throw new ModelNotFoundError(
        'No embedding model is registered: pull one, put an ONNX embedding model folder or an embedding GGUF in the models folder, or register one.',
      );
    }
    const model = await registry.get(id);
    const backend = backendOf(model);
    const load = async (): Promise<TextEmbedder | undefined> => backend.embedder?.(model);
    const embedder = await load();
    if (!embedder) throw new InvalidRequestError(`Model ${model.id} is a ${model.task} model, not an embedding model`, { details: { model: model.id } });
    const run = reloading(embedder, load);
    // The same model loaded again: its id, width and token limit do not change.
    return {
      modelId: embedder.modelId,
      dimensions: embedder.dimensions,
      maxTokens: embedder.maxTokens,
      embed: (texts, embedOptions) => run((current) => current.embed(texts, embedOptions), embedOptions?.signal),
    };
  };

  const resolveReranker = async (modelId?: string): Promise<RerankScorer | null> => {
    const model = modelId ? await registry.get(modelId) : await firstOfTask('rerank');
    if (!model || model.task !== 'rerank') return null;
    const backend = backendOf(model);
    const load = async (): Promise<RerankScorer | undefined> => backend.reranker?.(model);
    const first = await load();
    if (!first) return null;
    const run = reloading(first, load);
    return {
      modelId: first.modelId,
      score: (query, documents, scoreOptions) => run((scorer) => scorer.score(query, documents, scoreOptions), scoreOptions?.signal),
    };
  };

  const resolveEntityExtractor = async (modelId?: string | null): Promise<EntityExtractor | null> => {
    const model = modelId ? await registry.get(modelId) : await firstOfTask('token-classification');
    if (!model || model.task !== 'token-classification') return null;
    const load = async (): Promise<EntityExtractor | undefined> => findBackend(model.format)?.entityExtractor?.(model);
    const first = await load();
    if (!first) return null;
    const run = reloading(first, load);
    return {
      extractEntities: (text, extractOptions) => run((extractor) => extractor.extractEntities(text, extractOptions), extractOptions?.signal),
    };
  };

  return {
    registry,
    backends,
    backendOf,
    isLoaded,
    loaded: () => backends.flatMap((backend) => backend.loaded()),
    resolveTextModel,
    async ensureLoaded(model, loadOptions = {}) {
      const backend = backendOf(model);
      // An already loaded model keeps its settings; only its keep-alive is renewed.
      if (backend.loadedPath(model.id) !== undefined) return backend.load(model, { keepAlive: loadOptions.keepAlive });
      return backend.load(model, loadOptionsOf(model, loadOptions));
    },
    async unload(modelId) {
      let unloaded = false;
      for (const backend of backends) unloaded = (await backend.unload(modelId)) || unloaded;
      return unloaded;
    },
    resolveEmbedder,
    resolveReranker,
    resolveEntityExtractor,
    defaultEmbeddingModelId,
    async listEmbeddingModels() {
      const [models, defaultId] = await Promise.all([registry.list(), defaultEmbeddingModelId()]);
      return models
        .filter((model) => model.task === 'embedding')
        .map((model) => ({
          id: model.id,
          format: model.format,
          dimensions: model.details.embedding_length,
          max_tokens: model.details.context_length,
          pooling: null,
          loaded: isLoaded(model.aliasOf ?? model.id),
          is_default: model.id === defaultId,
        }));
    },
  };
}
