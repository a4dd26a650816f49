import { InvalidRequestError, type RouteRequest, type RouteResponse, type TextEmbedder } from '@tabagent/values';
import { cosineSimilarity, encodeFloat32Base64, similarityScore, truncateDimensions } from './embedding-math.js';
import { clusterVectors } from './kmeans-clustering.js';
import type { OnnxCrossEncoder } from './onnx-cross-encoder.js';

/**
 * The embeddings routes' behaviour over any `TextEmbedder` (ONNX or GGUF) and cross-encoder:
 * transports and the server only validate and dispatch. Ties in every ranking break by input
 * order, so results are deterministic.
 */

type Signal = { signal?: AbortSignal };

function byScoreThenIndex(a: { score: number; index: number }, b: { score: number; index: number }): number {
  return b.score - a.score || a.index - b.index;
}

/** OpenAI-shaped embeddings with real token usage, optional `dimensions` and base64 encoding. */
export async function createEmbeddings(
  embedder: TextEmbedder,
  request: Pick<RouteRequest<'embeddings'>, 'input' | 'encoding_format' | 'dimensions'>,
  options: Signal = {},
): Promise<RouteResponse<'embeddings'>> {
  const inputs = textInputs(request.input);
  if (request.dimensions !== undefined && request.dimensions > embedder.dimensions) {
    throw new InvalidRequestError(`dimensions ${request.dimensions} is larger than the model's ${embedder.dimensions}`, {
      issues: [{ path: 'dimensions', message: `at most ${embedder.dimensions}` }],
    });
  }
  const { vectors, tokenCounts } = await embedder.embed(inputs, options);
  const tokens = tokenCounts.reduce((a, b) => a + b, 0);
  return {
    object: 'list',
    data: vectors.map((vector, index) => {
      const sized = request.dimensions === undefined ? vector : truncateDimensions(vector, request.dimensions);
      return { object: 'embedding' as const, index, embedding: request.encoding_format === 'base64' ? encodeFloat32Base64(sized) : Array.from(sized) };
    }),
    model: embedder.modelId,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

/**
 * The texts of an embeddings request. Token-id arrays are refused: the ids a client sends are
 * usually tiktoken's (LangChain's OpenAIEmbeddings does this by default), which mean nothing to
 * this model's tokenizer, and embedding them would give confident nonsense.
 */
function textInputs(input: RouteRequest<'embeddings'>['input']): string[] {
  if (typeof input === 'string') return [input];
  const texts = input.filter((item): item is string => typeof item === 'string');
  if (texts.length !== input.length) {
    throw new InvalidRequestError(
      'input as token ids is not supported: send the text (token ids belong to one tokenizer; with LangChain, set check_embedding_ctx_length=False)',
      { issues: [{ path: 'input', message: 'expected text' }] },
    );
  }
  return texts;
}

/** What reranking needs of a cross-encoder (an `OnnxCrossEncoder` fits). */
export type RerankScorer = Pick<OnnxCrossEncoder, 'modelId' | 'score'>;

/** The model to rerank with: a cross-encoder, or an embedding model (cosine similarity fallback). */
export type RerankModel = { kind: 'cross-encoder'; model: RerankScorer } | { kind: 'embedding'; model: TextEmbedder };

/**
 * Reranks documents: with a cross-encoder, `relevance_score` is `sigmoid(logit)`; with an
 * embedding model it is the cosine similarity and `method` says `cosine-similarity`.
 */
export async function rerankDocuments(
  reranker: RerankModel,
  request: Pick<RouteRequest<'rerank'>, 'query' | 'documents' | 'top_n' | 'return_documents'>,
  options: Signal = {},
): Promise<RouteResponse<'rerank'>> {
  const texts = request.documents.map((d) => (typeof d === 'string' ? d : d.text));
  let scores: number[];
  let totalTokens: number;
  if (reranker.kind === 'cross-encoder') {
    const result = await reranker.model.score(request.query, texts, options);
    scores = result.scores;
    totalTokens = result.tokenCounts.reduce((a, b) => a + b, 0);
  } else {
    const { vectors, tokenCounts } = await reranker.model.embed([request.query, ...texts], options);
    const [query, ...documents] = vectors;
    scores = documents.map((d) => cosineSimilarity(query as Float32Array, d));
    totalTokens = tokenCounts.reduce((a, b) => a + b, 0);
  }
  const ranked = scores
    .map((score, index) => ({ score, index }))
    .sort(byScoreThenIndex)
    .slice(0, request.top_n ?? texts.length);
  return {
    model: reranker.model.modelId,
    method: reranker.kind === 'cross-encoder' ? 'cross-encoder' : 'cosine-similarity',
    results: ranked.map(({ score, index }) => ({
      index,
      relevance_score: score,
      ...(request.return_documents ? { document: { text: texts[index] as string } } : {}),
    })),
    usage: { total_tokens: totalTokens },
  };
}

/** Similarity of two texts by metric (euclidean as `1 / (1 + distance)`, so higher is closer). */
export async function computeSimilarity(
  embedder: TextEmbedder,
  request: Pick<RouteRequest<'similarity'>, 'text1' | 'text2' | 'metric'>,
  options: Signal = {},
): Promise<RouteResponse<'similarity'>> {
  const { vectors } = await embedder.embed([request.text1, request.text2], options);
  return {
    similarity: similarityScore(vectors[0] as Float32Array, vectors[1] as Float32Array, request.metric),
    metric: request.metric,
    model: embedder.modelId,
  };
}

/** Semantic search over the documents sent in the request. */
export async function searchDocuments(
  embedder: TextEmbedder,
  request: Pick<RouteRequest<'semantic_search'>, 'query' | 'k' | 'score_threshold' | 'metric'> & { documents: string[] },
  options: Signal = {},
): Promise<RouteResponse<'semantic_search'>> {
  const { vectors } = await embedder.embed([request.query, ...request.documents], options);
  const [query, ...documents] = vectors;
  const scored = documents
    .map((d, index) => ({ index, score: similarityScore(query as Float32Array, d, request.metric) }))
    .filter((r) => request.score_threshold === undefined || r.score >= request.score_threshold)
    .sort(byScoreThenIndex)
    .slice(0, request.k);
  return {
    query: request.query,
    model: embedder.modelId,
    metric: request.metric,
    results: scored.map(({ index, score }) => ({ index, id: null, document: request.documents[index] as string, score })),
    total_documents: request.documents.length,
  };
}

/**
 * Retrieval quality on query/document pairs: each query's relevant document is ranked among all
 * documents by cosine similarity (rank = 1 + documents scoring strictly higher).
 */
export async function evaluateEmbeddings(
  embedder: TextEmbedder,
  request: Pick<RouteRequest<'embeddings.evaluate'>, 'queries' | 'documents' | 'relevant' | 'k'>,
  options: Signal = {},
): Promise<RouteResponse<'embeddings.evaluate'>> {
  const { queries, documents, k } = request;
  const relevant = request.relevant ?? queries.map((_, i) => i);
  if (relevant.length !== queries.length)
    throw new InvalidRequestError(`relevant has ${relevant.length} entries for ${queries.length} queries`, {
      issues: [{ path: 'relevant', message: 'one entry per query' }],
    });
  relevant.forEach((r, i) => {
    if (r >= documents.length)
      throw new InvalidRequestError(`query ${i}'s relevant document ${r} is outside the ${documents.length} documents`, {
        issues: [{ path: `relevant.${i}`, message: 'out of range' }],
      });
  });
  const { vectors } = await embedder.embed([...queries, ...documents], options);
  const queryVectors = vectors.slice(0, queries.length);
  const documentVectors = vectors.slice(queries.length);
  let reciprocalRanks = 0;
  let atOne = 0;
  let atK = 0;
  let relevantSimilarity = 0;
  let allSimilarity = 0;
  queryVectors.forEach((q, i) => {
    const scores = documentVectors.map((d) => cosineSimilarity(q, d));
    const target = scores[relevant[i] as number] as number;
    const rank = 1 + scores.filter((s) => s > target).length;
    reciprocalRanks += 1 / rank;
    if (rank === 1) atOne += 1;
    if (rank <= k) atK += 1;
    relevantSimilarity += target;
    allSimilarity += scores.reduce((a, b) => a + b, 0) / scores.length;
  });
  const n = queries.length;
  return {
    model: embedder.modelId,
    query_count: n,
    document_count: documents.length,
    k,
    mean_reciprocal_rank: reciprocalRanks / n,
    recall_at_1: atOne / n,
    recall_at_k: atK / n,
    mean_relevant_similarity: relevantSimilarity / n,
    mean_similarity: allSimilarity / n,
  };
}

/** k-means (k-means++ initialisation, seeded) over the texts' embeddings, with the silhouette score. */
export async function clusterTexts(
  embedder: TextEmbedder,
  request: Pick<RouteRequest<'cluster'>, 'texts' | 'n_clusters' | 'seed' | 'max_iterations'>,
  options: Signal = {},
): Promise<RouteResponse<'cluster'>> {
  if (request.n_clusters > request.texts.length) {
    throw new InvalidRequestError(`n_clusters ${request.n_clusters} is more than the ${request.texts.length} texts`, {
      issues: [{ path: 'n_clusters', message: `at most ${request.texts.length}` }],
    });
  }
  const { vectors } = await embedder.embed(request.texts, options);
  const result = clusterVectors(vectors, request.n_clusters, { seed: request.seed, maxIterations: request.max_iterations });
  return {
    model: embedder.modelId,
    algorithm: 'kmeans',
    n_clusters: request.n_clusters,
    labels: result.labels,
    silhouette_score: result.silhouetteScore,
    iterations: result.iterations,
  };
}

/**
 * Candidates most similar to the query. With `diversity` λ > 0, maximal marginal relevance picks
 * each next candidate by `(1 - λ)·sim(query, c) - λ·max sim(c, picked)`; `score` stays the
 * similarity to the query.
 */
export async function recommendCandidates(
  embedder: TextEmbedder,
  request: Pick<RouteRequest<'recommend'>, 'query' | 'candidates' | 'top_n' | 'diversity'>,
  options: Signal = {},
): Promise<RouteResponse<'recommend'>> {
  const { vectors } = await embedder.embed([request.query, ...request.candidates], options);
  const [query, ...candidates] = vectors;
  const relevance = candidates.map((c) => cosineSimilarity(query as Float32Array, c));
  const wanted = Math.min(request.top_n, candidates.length);
  const picked: number[] = [];
  const remaining = new Set(candidates.map((_, i) => i));
  const lambda = request.diversity;
  while (picked.length < wanted) {
    let best = -1;
    let bestScore = -Infinity;
    for (const i of remaining) {
      const redundancy =
        picked.length === 0 || lambda === 0
          ? 0
          : Math.max(...picked.map((p) => cosineSimilarity(candidates[i] as Float32Array, candidates[p] as Float32Array)));
      const score = (1 - lambda) * (relevance[i] as number) - lambda * redundancy;
      if (score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    picked.push(best);
    remaining.delete(best);
  }
  return {
    query: request.query,
    model: embedder.modelId,
    recommendations: picked.map((index) => ({ index, text: request.candidates[index] as string, score: relevance[index] as number })),
  };
}
