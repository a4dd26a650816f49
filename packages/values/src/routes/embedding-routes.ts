import { z } from 'zod';
import { defineRoute, largeBodyBytes } from '../route-definition.js';
import { acceptFieldAlias, EmptyRequest, ModelId, nullMeansUnset } from './common-schemas.js';

const InputText = z.string().min(1).max(1_000_000);

export const EmbeddingsRequest = z
  .object({
    model: ModelId.optional().describe('Embedding model; defaults to the configured embedding model.'),
    input: z
      .union([InputText, z.array(InputText).min(1).max(2048), z.array(z.number().int()).min(1), z.array(z.array(z.number().int()).min(1)).min(1).max(2048)])
      .describe('Text or texts. Token-id arrays (what tiktoken-based clients send) are refused with a 400 that says how to send text.'),
    encoding_format: z.enum(['float', 'base64']).default('float').describe('base64: little-endian float32 bytes, as OpenAI sends them.'),
    dimensions: z.number().int().min(1).max(65536).optional().describe('Truncate each vector to this many dimensions, then renormalise.'),
    user: z.string().optional(),
  })
  .meta({ id: 'EmbeddingsRequest' });

export const EmbeddingsResponse = z
  .object({
    object: z.literal('list'),
    data: z.array(z.object({ object: z.literal('embedding'), index: z.number().int(), embedding: z.union([z.array(z.number()), z.string()]) })),
    model: z.string(),
    usage: z.object({ prompt_tokens: z.number().int().nonnegative(), total_tokens: z.number().int().nonnegative() }),
  })
  .meta({ id: 'EmbeddingsResponse' });

export const RerankRequest = z
  .preprocess(
    acceptFieldAlias('top_k', 'top_n'),
    z.object({
      model: ModelId.optional(),
      query: InputText,
      documents: z
        .array(z.union([z.string(), z.object({ text: z.string() })]))
        .min(1)
        .max(4096),
      top_n: z.number().int().min(1).optional().describe("Defaults to all documents (Rust's default of 10 rejected shorter lists)."),
      return_documents: z.boolean().default(true),
    }),
  )
  .meta({ id: 'RerankRequest' });

export const RerankResponse = z
  .object({
    model: z.string(),
    method: z.enum(['cross-encoder', 'cosine-similarity']).describe('cosine-similarity when the model is an embedding model.'),
    results: z.array(z.object({ index: z.number().int(), relevance_score: z.number(), document: z.object({ text: z.string() }).optional() })),
    usage: z.object({ total_tokens: z.number().int().nonnegative() }),
  })
  .meta({ id: 'RerankResponse' });

export const SimilarityMetric = z.enum(['cosine', 'dot_product', 'euclidean']);

export const SimilarityRequest = z
  .object({ text1: InputText, text2: InputText, model: ModelId.optional(), metric: SimilarityMetric.default('cosine') })
  .meta({ id: 'SimilarityRequest' });
export const SimilarityResponse = z.object({ similarity: z.number(), metric: SimilarityMetric, model: z.string() }).meta({ id: 'SimilarityResponse' });

export const SearchFilters = z
  .object({
    chat_id: z.string().optional(),
    kinds: z.array(z.enum(['message', 'webpage', 'document', 'bookmark', 'summary'])).optional(),
    tiers: z.array(z.enum(['active', 'recent', 'archive'])).optional(),
    url: z.string().optional(),
    since: z.string().optional().describe('RFC 3339; only items created at or after.'),
    until: z.string().optional(),
  })
  .strict()
  .meta({ id: 'SearchFilters' });

export const SemanticSearchRequest = z
  .preprocess(
    acceptFieldAlias('top_k', 'k'),
    z.object({
      query: InputText,
      documents: z.array(z.string()).min(1).max(4096).optional().describe('Search these (Python); without them, search the memory store (Rust).'),
      model: ModelId.optional(),
      k: z.number().int().min(1).max(1000).default(5),
      score_threshold: z.number().optional(),
      metric: SimilarityMetric.default('cosine'),
      filters: SearchFilters.optional(),
    }),
  )
  .meta({ id: 'SemanticSearchRequest' });

export const SemanticSearchResponse = z
  .object({
    query: z.string(),
    model: z.string(),
    metric: SimilarityMetric,
    results: z.array(
      z.object({
        index: z.number().int().nullable().describe('Position in `documents` when documents were sent.'),
        id: z.string().nullable().describe('Stored item id when the store was searched.'),
        document: z.string(),
        score: z.number(),
      }),
    ),
    total_documents: z.number().int(),
  })
  .meta({ id: 'SemanticSearchResponse' });

export const EvaluateEmbeddingsRequest = z
  .object({
    model: ModelId.optional(),
    queries: z.array(InputText).min(1).max(1024),
    documents: z.array(InputText).min(1).max(4096),
    relevant: z
      .array(z.number().int().nonnegative())
      .optional()
      .describe('Index of the relevant document for each query; defaults to the same index (query i ↔ document i).'),
    k: z.number().int().min(1).max(100).default(10),
  })
  .meta({ id: 'EvaluateEmbeddingsRequest' });

export const EvaluateEmbeddingsResponse = z
  .object({
    model: z.string(),
    query_count: z.number().int(),
    document_count: z.number().int(),
    k: z.number().int(),
    mean_reciprocal_rank: z.number(),
    recall_at_1: z.number(),
    recall_at_k: z.number(),
    mean_relevant_similarity: z.number(),
    mean_similarity: z.number(),
  })
  .meta({ id: 'EvaluateEmbeddingsResponse' });

export const ClusterRequest = z
  .preprocess(
    acceptFieldAlias('documents', 'texts'),
    z.object({
      texts: z.array(InputText).min(2).max(10_000),
      n_clusters: z.number().int().min(1).max(100).default(2),
      model: ModelId.optional(),
      algorithm: z.literal('kmeans').default('kmeans'),
      seed: z.number().int().default(42),
      max_iterations: z.number().int().min(1).max(1000).default(100),
    }),
  )
  .meta({ id: 'ClusterRequest' });

export const ClusterResponse = z
  .object({
    model: z.string(),
    algorithm: z.literal('kmeans'),
    n_clusters: z.number().int(),
    labels: z.array(z.number().int()),
    silhouette_score: z.number().nullable().describe('Null when it is undefined (one cluster, or as many clusters as texts).'),
    iterations: z.number().int(),
  })
  .meta({ id: 'ClusterResponse' });

export const RecommendRequest = z
  .preprocess(
    acceptFieldAlias('items', 'candidates'),
    z.object({
      query: InputText,
      candidates: z.array(InputText).min(1).max(10_000),
      top_n: z.number().int().min(1).default(10),
      model: ModelId.optional(),
      diversity: z.number().min(0).max(1).default(0).describe('0: by similarity alone; higher trades similarity for variety (maximal marginal relevance).'),
    }),
  )
  .meta({ id: 'RecommendRequest' });

export const RecommendResponse = z
  .object({
    query: z.string(),
    model: z.string(),
    recommendations: z.array(z.object({ index: z.number().int(), text: z.string(), score: z.number() })),
  })
  .meta({ id: 'RecommendResponse' });

export const EmbeddingModelsResponse = z
  .object({
    models: z.array(
      z.object({
        id: z.string(),
        format: z.string(),
        dimensions: z.number().int().nullable(),
        max_tokens: z.number().int().nullable(),
        pooling: z.string().nullable(),
        loaded: z.boolean(),
        is_default: z.boolean(),
      }),
    ),
    total: z.number().int(),
  })
  .meta({ id: 'EmbeddingModelsResponse' });

export const RagQueryRequest = z
  .preprocess(
    acceptFieldAlias('top_k', 'k'),
    z.object({
      query: InputText,
      k: z.number().int().min(1).max(1000).default(10),
      filters: SearchFilters.optional(),
      rerank: z.boolean().default(false).describe('Rerank the fused results with the configured cross-encoder.'),
      mode: z.enum(['hybrid', 'vector', 'text']).default('hybrid'),
    }),
  )
  .meta({ id: 'RagQueryRequest' });

export const RagResult = z
  .object({
    id: z.string(),
    content: z.string(),
    score: z.number(),
    source: z.object({ kind: z.string(), id: z.string(), title: z.string().nullable(), url: z.string().nullable(), chat_id: z.string().nullable() }),
    metadata: z.record(z.string(), z.unknown()),
    indexed: z
      .boolean()
      .describe('False for an item saved but not indexed yet, found by its words in storage; scores are then rank-fused (RRF) across both lists.'),
  })
  .meta({ id: 'RagResult' });

export const RagQueryResponse = z
  .object({ query: z.string(), results: z.array(RagResult), count: z.number().int(), query_time_ms: z.number().nonnegative() })
  .meta({ id: 'RagQueryResponse' });

export const embeddingsRoute = defineRoute({
  id: 'embeddings',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/embeddings',
  summary: 'Embeddings (OpenAI compatible)',
  tags: ['embeddings'],
  request: z.preprocess(nullMeansUnset(), EmbeddingsRequest),
  response: EmbeddingsResponse,
});

export const rerankRoute = defineRoute({
  id: 'rerank',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/rerank',
  aliases: ['/v1/reranking'],
  summary: 'Rerank documents for a query (Jina/Cohere shape)',
  description: '`top_n` (Rust; `top_k` accepted) and `relevance_score` (Python/Jina).',
  tags: ['embeddings'],
  request: RerankRequest,
  response: RerankResponse,
});

export const similarityRoute = defineRoute({
  id: 'similarity',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/similarity',
  summary: 'Similarity of two texts',
  tags: ['embeddings'],
  request: SimilarityRequest,
  response: SimilarityResponse,
});

export const semanticSearchRoute = defineRoute({
  id: 'semantic_search',
  method: 'POST',
  path: '/v1/semantic-search',
  summary: 'Search sent documents, or the memory store when none are sent',
  tags: ['embeddings'],
  request: SemanticSearchRequest,
  response: SemanticSearchResponse,
});

export const evaluateEmbeddingsRoute = defineRoute({
  id: 'embeddings.evaluate',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/evaluate-embeddings',
  summary: 'Retrieval quality of an embedding model on query/document pairs',
  description: "Rust's request (model, queries, documents) rather than Python's raw vectors; returns MRR and recall.",
  tags: ['embeddings'],
  request: EvaluateEmbeddingsRequest,
  response: EvaluateEmbeddingsResponse,
});

export const clusterRoute = defineRoute({
  id: 'cluster',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/cluster',
  summary: 'k-means clustering of texts (k-means++ initialisation) with silhouette score',
  tags: ['embeddings'],
  request: ClusterRequest,
  response: ClusterResponse,
});

export const recommendRoute = defineRoute({
  id: 'recommend',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/recommend',
  summary: 'Candidates most related to a query',
  tags: ['embeddings'],
  request: RecommendRequest,
  response: RecommendResponse,
});

export const embeddingModelsRoute = defineRoute({
  id: 'embedding_models.list',
  method: 'GET',
  path: '/v1/embedding-models',
  summary: 'Registered embedding models',
  tags: ['embeddings'],
  request: EmptyRequest,
  response: EmbeddingModelsResponse,
});

export const ragQueryRoute = defineRoute({
  id: 'rag.query',
  method: 'POST',
  path: '/v1/rag/query',
  summary: 'Hybrid (vector + full text) search over the memory store',
  tags: ['memory'],
  request: RagQueryRequest,
  response: RagQueryResponse,
});
