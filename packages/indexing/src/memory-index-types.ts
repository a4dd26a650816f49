import type { MemoryNode, MemoryTierName, TextEmbedder } from '@tabagent/values';
import type { Storage } from '@tabagent/storage';
import type { ChunkOptions } from './text-chunker.js';
import type { MemorySearchFilters } from './search-filters.js';

/** The columns of a chunk row besides its vector. `created_at` is Unix ms. */
export interface IndexChunkColumns {
  /** `<node_id>#<chunk_index>`. */
  id: string;
  node_id: string;
  chunk_index: number;
  text: string;
  kind: string;
  chat_id: string | null;
  tier: MemoryTierName;
  url: string | null;
  title: string | null;
  created_at: number;
}

/** One indexed chunk: a piece of a node's text and its vector. */
export interface IndexChunk extends IndexChunkColumns {
  vector: Float32Array;
}

/** Scores a query against documents (a cross-encoder); higher is more relevant. */
export type RerankFunction = (query: string, documents: readonly string[]) => Promise<number[]>;

/** A search over the memory index. */
export interface MemorySearchRequest {
  query: string;
  /** Precomputed query vector; embedded with the current embedder when omitted. */
  vector?: Float32Array;
  k?: number;
  mode?: 'hybrid' | 'vector' | 'text';
  filters?: MemorySearchFilters;
  /** Rerank the fused candidates with the injected reranker (InvalidRequestError without one). */
  rerank?: boolean;
  /** Exact (flat) vector search even when an ANN index exists (recall baselines). */
  exact?: boolean;
  /**
   * Also search, by words in storage, saved items the weaver has not indexed yet (default true;
   * not with a precomputed `vector`). Their hits say `indexed: false`.
   */
  unindexed?: boolean;
}

/** One search hit. `score`: RRF total (hybrid), cosine similarity (vector), BM25 (text), or the reranker's score. */
export interface MemorySearchHit extends IndexChunkColumns {
  score: number;
  /** False for a saved item not indexed yet, found by words in storage (see `unindexed`). */
  indexed?: boolean;
}

/** Row count and index state of one model's table. */
export interface IndexTableStats {
  table: string;
  model: string;
  dimensions: number;
  rows: number;
  annIndexed: boolean;
}

/** Options of `createMemoryIndex`. */
export interface MemoryIndexOptions {
  /** The LanceDB folder, `<dataDir>/index`. */
  dir: string;
  /** Source of truth, read by `rebuild()` and graph queries. */
  storage: Storage;
  /** The configured embedding model (it picks the table searches use). */
  embedder: () => Promise<TextEmbedder>;
  /** Optional cross-encoder for `rerank: true`. */
  rerank?: RerankFunction;
  /** Rows from which an ANN index is built; below, exact search (default 5000). */
  annThreshold?: number;
  /** Chunking of node text (characters). */
  chunking?: ChunkOptions;
  /** Texts per embed call (default 64; the ONNX micro-batcher splits them as it needs). */
  embedBatchSize?: number;
}

/** The derived, rebuildable vector + full-text index of the memory store. */
export interface MemoryIndex {
  readonly dir: string;
  /** Chunks, embeds and indexes one node, replacing its previous chunks; returns the chunks written. */
  indexNode(node: MemoryNode, embedder?: TextEmbedder): Promise<IndexChunk[]>;
  /** `indexNode` for many nodes at once: one chunking pass, batched embedding calls, one write. */
  indexNodes(nodes: readonly MemoryNode[], embedder?: TextEmbedder): Promise<Map<string, IndexChunk[]>>;
  /** Replaces all chunks of the nodes these chunks belong to, in the table of `modelId`. */
  upsertChunks(modelId: string, dimensions: number, chunks: readonly IndexChunk[]): Promise<void>;
  /** Appends chunks of nodes not yet indexed (bulk load, rebuild); no replace. */
  appendChunks(modelId: string, dimensions: number, chunks: readonly IndexChunk[]): Promise<void>;
  /** Removes every chunk of these nodes from every model's table. */
  deleteNodes(nodeIds: readonly string[]): Promise<void>;
  /** Sets the tier column of these nodes' chunks in every table. */
  setTier(nodeIds: readonly string[], tier: MemoryTierName): Promise<void>;
  /** The vector of each node's first chunk in this model's table (nodes not indexed are absent). */
  nodeVectors(modelId: string, dimensions: number, nodeIds: readonly string[]): Promise<Map<string, Float32Array>>;
  /** The `k` nearest chunks' nodes (cosine similarity) of each vector, in one query for all of them. */
  nearestNodes(modelId: string, dimensions: number, vectors: readonly Float32Array[], k: number): Promise<Array<Array<{ node_id: string; score: number }>>>;
  /** Hybrid / vector / text search with filters and optional rerank. */
  search(request: MemorySearchRequest): Promise<MemorySearchHit[]>;
  /** Builds the FTS index, and the ANN index once the table is large enough; compacts. */
  optimize(modelId?: string, dimensions?: number): Promise<void>;
  /** Drops every table and re-indexes every indexable node from storage with the current embedder. */
  rebuild(options?: { signal?: AbortSignal }): Promise<{ nodes: number; chunks: number }>;
  stats(): Promise<IndexTableStats[]>;
  close(): Promise<void>;
}
