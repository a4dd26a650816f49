import type { OnnxTokenClassifier, RerankScorer } from '@tabagent/onnx-loader';
import { InvalidRequestError, ModelNotFoundError, type RouteResponse, type TextEmbedder } from '@tabagent/values';
import type { GgufModelAccess } from './handlers/gguf-model-access.js';
import type { ModelRegistry, RegisteredModel } from './model-registry.js';
import type { createOnnxModelBackend } from './onnx-model-backend.js';

/** What the resolver needs. */
export interface EmbeddingModelResolverDeps {
  registry: ModelRegistry;
  onnx: ReturnType<typeof createOnnxModelBackend>;
  gguf: GgufModelAccess;
  /** The configured embedding model (flag, environment or memory settings), if any. */
  preferredEmbeddingModel: () => Promise<string | null | undefined>;
}

/** Finds and loads the models behind the embeddings, rerank and memory routes. */
export interface EmbeddingModelResolver {
  /** The named model's embedder, or the configured / first registered embedding model's. */
  resolveEmbedder(modelId?: string): Promise<TextEmbedder>;
  /** A cross-encoder, or null when the named model is an embedding model (cosine fallback). */
  resolveReranker(modelId?: string): Promise<RerankScorer | null>;
  /** The named (or first registered) token-classification model, or null when there is none. */
  resolveEntityExtractor(modelId?: string | null): Promise<OnnxTokenClassifier | null>;
  /** The id `resolveEmbedder()` would use, or null when no embedding model is registered. */
  defaultEmbeddingModelId(): Promise<string | null>;
  listEmbeddingModels(): Promise<RouteResponse<'embedding_models.list'>['models']>;
}

/** Resolves embedding, rerank and entity models over the registry, loading them on demand. */
export function createEmbeddingModelResolver(deps: EmbeddingModelResolverDeps): EmbeddingModelResolver {
  const firstOfTask = async (task: RegisteredModel['task']): Promise<RegisteredModel | undefined> => {
    const models = (await deps.registry.list()).filter((model) => model.aliasOf === undefined);
    // ONNX first: purpose-built encoders beat a GGUF's pooled hidden states for retrieval.
    return models.find((model) => model.task === task && model.format === 'onnx') ?? models.find((model) => model.task === task);
  };

  const defaultEmbeddingModelId = async (): Promise<string | null> => {
    const preferred = await deps.preferredEmbeddingModel();
    if (preferred) return preferred;
    return (await firstOfTask('embedding'))?.id ?? null;
  };

  const resolveEmbedder = async (modelId?: string): Promise<TextEmbedder> => {
    const id = modelId ?? (await defaultEmbeddingModelId());
    if (!id)
      throw new ModelNotFoundError(
        'No embedding model is registered: put an ONNX embedding model folder or an embedding GGUF in the models folder, or register one.',
      );
    const model = await deps.registry.get(id);
    if (model.format === 'gguf') return deps.gguf.embedder(model.id);
    if (model.task !== 'embedding') throw new InvalidRequestError(`Model ${model.id} is a ${model.task} model, not an embedding model`);
    const entry = await deps.onnx.ensureLoaded(model);
    if (entry.task !== 'embedding') throw new InvalidRequestError(`Model ${model.id} is a ${entry.task} model, not an embedding model`);
    return entry.model;
  };

  const resolveReranker = async (modelId?: string): Promise<RerankScorer | null> => {
    const model = modelId ? await deps.registry.get(modelId) : await firstOfTask('rerank');
    if (!model || model.task !== 'rerank') return null;
    const entry = await deps.onnx.ensureLoaded(model);
    return entry.task === 'rerank' ? entry.model : null;
  };

  const resolveEntityExtractor = async (modelId?: string | null): Promise<OnnxTokenClassifier | null> => {
    const model = modelId ? await deps.registry.get(modelId) : await firstOfTask('token-classification');
    if (!model || model.format !== 'onnx' || model.task !== 'token-classification') return null;
    const entry = await deps.onnx.ensureLoaded(model);
    return entry.task === 'token-classification' ? entry.model : null;
  };

  const listEmbeddingModels = async (): Promise<RouteResponse<'embedding_models.list'>['models']> => {
    const [models, defaultId] = await Promise.all([deps.registry.list(), defaultEmbeddingModelId()]);
    const loadedOnnx = new Set(deps.onnx.loaded().map((view) => view.model));
    return models
      .filter((model) => model.task === 'embedding')
      .map((model) => ({
        id: model.id,
        format: model.format,
        dimensions: model.details.embedding_length,
        max_tokens: model.details.context_length,
        pooling: null,
        loaded: loadedOnnx.has(model.id),
        is_default: model.id === defaultId,
      }));
  };

  return { resolveEmbedder, resolveReranker, resolveEntityExtractor, defaultEmbeddingModelId, listEmbeddingModels };
}
