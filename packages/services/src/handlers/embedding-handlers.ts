import {
  clusterTexts,
  computeSimilarity,
  createEmbeddings,
  evaluateEmbeddings,
  recommendCandidates,
  rerankDocuments,
  searchDocuments,
  type RerankScorer,
} from '@tabagent/onnx-loader';
import { NotImplementedError, type CallContext, type RouteRequest, type RouteResponse, type TextEmbedderResolver } from '@tabagent/values';
import type { HandlerGroup } from './handler-group.js';

/** What the embedding handlers need; the server wires these to the model registry. */
export interface EmbeddingHandlerDeps {
  /** The embedder for a model id, or the default embedding model when none is given (ONNX or GGUF). */
  resolveEmbedder: TextEmbedderResolver;
  /**
   * The cross-encoder for a model id (or the default rerank model), or null when the id names an
   * embedding model or no rerank model is configured: rerank then falls back to cosine similarity
   * with `resolveEmbedder(modelId)`.
   */
  resolveReranker: (modelId?: string) => Promise<RerankScorer | null>;
  /** Registered embedding models for `GET /v1/embedding-models`. */
  listEmbeddingModels: () => Promise<RouteResponse<'embedding_models.list'>['models']>;
  /** Searches the memory store when `semantic_search` has no `documents`; absent until memory is wired. */
  searchStore?: (request: RouteRequest<'semantic_search'>, context: CallContext) => Promise<RouteResponse<'semantic_search'>>;
}

/** Route ids this group serves. */
export type EmbeddingRouteId =
  'embeddings' | 'rerank' | 'similarity' | 'semantic_search' | 'embeddings.evaluate' | 'cluster' | 'recommend' | 'embedding_models.list';

/** Embeddings, rerank, similarity, search, evaluation, clustering and recommendations (onnx-loader's operations over any `TextEmbedder`). */
export function createEmbeddingHandlers(deps: EmbeddingHandlerDeps): HandlerGroup<EmbeddingRouteId> {
  return {
    embeddings: async (request, context) => createEmbeddings(await deps.resolveEmbedder(request.model), request, { signal: context.signal }),
    rerank: async (request, context) => {
      const crossEncoder = await deps.resolveReranker(request.model);
      const model =
        crossEncoder === null
          ? ({ kind: 'embedding', model: await deps.resolveEmbedder(request.model) } as const)
          : ({ kind: 'cross-encoder', model: crossEncoder } as const);
      return rerankDocuments(model, request, { signal: context.signal });
    },
    similarity: async (request, context) => computeSimilarity(await deps.resolveEmbedder(request.model), request, { signal: context.signal }),
    semantic_search: async (request, context) => {
      if (request.documents !== undefined) {
        return searchDocuments(await deps.resolveEmbedder(request.model), { ...request, documents: request.documents }, { signal: context.signal });
      }
      if (deps.searchStore === undefined) {
        throw new NotImplementedError(
          'semantic_search without documents searches the memory store, which is not enabled in this server; send documents to search them.',
          {
            details: { capability: 'memory', route: 'semantic_search' },
          },
        );
      }
      return deps.searchStore(request, context);
    },
    'embeddings.evaluate': async (request, context) => evaluateEmbeddings(await deps.resolveEmbedder(request.model), request, { signal: context.signal }),
    cluster: async (request, context) => clusterTexts(await deps.resolveEmbedder(request.model), request, { signal: context.signal }),
    recommend: async (request, context) => recommendCandidates(await deps.resolveEmbedder(request.model), request, { signal: context.signal }),
    'embedding_models.list': async () => {
      const models = await deps.listEmbeddingModels();
      return { models, total: models.length };
    },
  };
}
