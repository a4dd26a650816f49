import type { MemoryIndex } from '@tabagent/indexing';
import type { OutboxItem, Storage } from '@tabagent/storage';
import type { Logger, TextEmbedder, TextEmbedderResolver } from '@tabagent/values';

/** An entity found in text by a token-classification model. */
export interface ExtractedEntity {
  text: string;
  /** Entity type, e.g. `PER`, `LOC`, `ORG`. */
  label: string;
  score?: number;
}

/** Options of `createWeaver`. */
export interface WeaverOptions {
  storage: Storage;
  index: MemoryIndex;
  /** Resolves an embedding model id (or the default embedding model when undefined). */
  embedders: TextEmbedderResolver;
  /**
   * The id of the default embedding model without loading it (null: none). Status and settings
   * reads use it, so a GET (which any page can trigger with an <img>) never loads a model;
   * without it they ask `embedders()`, which loads.
   */
  defaultEmbeddingModelId?: () => Promise<string | null>;
  /** Named entity extraction; entities and MENTIONS edges are skipped without it. */
  extractEntities?: (text: string) => Promise<ExtractedEntity[]>;
  /**
   * Summariser (an LLM); summaries are skipped without it, or while it answers null (no LLM loaded).
   * `signal` is aborted when the weaver stops.
   */
  summarize?: (texts: readonly string[], options: { signal: AbortSignal }) => Promise<string | null>;
  /** Messages per summary (default 20). */
  summaryEvery?: number;
  /** Cosine similarity from which SIMILAR_TO edges are written (default 0.85). */
  similarityThreshold?: number;
  /** Most SIMILAR_TO edges per node (default 3). */
  maxSimilarLinks?: number;
  /** Attempts before an item is dead-lettered (default 5). */
  maxAttempts?: number;
  /** First retry delay, doubled per attempt (default 1000 ms), capped by `maxBackoffMs` (default 5 min). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** An in_progress item older than this is considered abandoned by a crashed worker (default 60 s). */
  leaseMs?: number;
  /** Sleep between polls when the queue is empty (default 2000 ms: an idle server stays idle); a save in this process wakes it at once through `notify()`. */
  pollIntervalMs?: number;
  /** How often the tier pass (`storage.updateTiers()`) and outbox pruning run (default 1 h). */
  maintenanceIntervalMs?: number;
  /** Done outbox items older than this are deleted by maintenance (default 7 days). */
  keepDoneMs?: number;
  /**
   * Most items claimed per round (default 256); a run of index items in it is embedded and
   * written together. A drain starts at `minBatchSize` (default 32) and doubles per full batch
   * while the server stays idle.
   */
  batchSize?: number;
  minBatchSize?: number;
  /**
   * Share of the time the weaver may work while it drains (0 < d <= 1, default 1): after a batch
   * that took t ms it rests t × (1 − d) / d ms. Interactive work pauses it regardless.
   */
  dutyCycle?: number;
  /**
   * True while interactive work (a generation) runs or waits: the weaver then waits between
   * batches, so saving memory never competes with a chat for the CPU.
   */
  isBusy?: () => boolean;
  /** Items after which a long drain compacts the index mid-backlog (default 16384); it is also compacted whenever the searchable stage empties. */
  optimizeEvery?: number;
  /**
   * The longest the weaver waits for interactive work (default 5000 ms): past it, it takes one
   * batch anyway, so indexing keeps up under any steady interactive load (an extension embedding
   * pages as the user browses, a chat that never pauses) instead of starving.
   */
  maxWaitMs?: number;
  /** Nodes per enrichment unit (default 64): each unit's links and entities commit together, the rest is queued again. */
  enrichUnit?: number;
  /** How often a waiting weaver checks `isBusy` (default 100 ms). */
  busyPollMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** Events of the weaver. */
export interface WeaverEvents {
  /** A message or page was saved (emitted by `notifySaved`). */
  'message-saved': { node_id: string; chat_id: string | null };
  'index-start': { item: OutboxItem };
  'index-end': { item: OutboxItem; node_id: string | null; chunks: number };
  'item-failed': { item: OutboxItem; error: string; dead: boolean };
  /** The queue has no ready items left. */
  idle: { processed: number };
}

/** Status for GET /v1/memory/status. */
export interface WeaverStatus {
  queue_depth: number;
  in_progress: number;
  failed: number;
  last_error: string | null;
  embedding_model: string | null;
  models: { model: string; indexed_chunks: number }[];
  counts: Record<string, number>;
  /** Saved messages and pages not in the vector index yet. */
  unindexed: number;
  /** Saved items made searchable per second over the last minute. */
  items_per_second: number;
  /** Age of the oldest saved item not in the vector index yet (freshness), or null. */
  oldest_pending_age_ms: number | null;
}

/** The background pipeline draining the storage outbox into the index and the graph. */
export interface Weaver {
  start(): void;
  /**
   * Stops after the current item (a summary in progress is aborted); items claimed but not done
   * go back to pending for the next start. Resolves once the loop has exited.
   */
  stop(): Promise<void>;
  /** Wakes the loop now (after a save). */
  notify(): void;
  /** Emits 'message-saved' and wakes the loop; saving never waits for this. */
  notifySaved(nodeId: string, chatId: string | null): void;
  /** Processes ready items until none is left (also when not started). */
  drain(): Promise<number>;
  on<K extends keyof WeaverEvents>(event: K, listener: (payload: WeaverEvents[K]) => void): () => void;
  once<K extends keyof WeaverEvents>(event: K): Promise<WeaverEvents[K]>;
  status(): Promise<WeaverStatus>;
  /** The configured embedding model id (setting, else the resolver's default). */
  embeddingModelId(): Promise<string>;
  /** The configured embedder (used by the index for queries). */
  embedder(): Promise<TextEmbedder>;
  /** Runs the tier pass and outbox pruning now (also done every `maintenanceIntervalMs`). */
  maintain(): { retiered: number; pruned: number };
  /**
   * Changes the embedding model (null: back to the resolver's default) and, when the model in use
   * changes, re-embeds everything in the background.
   */
  setEmbeddingModel(modelId: string | null): Promise<void>;
}
