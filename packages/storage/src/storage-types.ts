import type { EdgeType, MemoryEdge, MemoryNode, MemoryNodeOf, MemorySettings, MemoryTierName, NodeKind, NodeProps, TierPolicy } from '@tabagent/values';
import type { z } from 'zod';
import type { nodePropsSchemas } from '@tabagent/values';

/** Input to create (or replace) a node of kind K. Times are Unix ms and default to now. */
export type NewNodeOf<K extends NodeKind> = {
  kind: K;
  /** Generated (`<kind>_<uuid>`) when omitted. */
  id?: string;
  /** The chat this node belongs to; must exist. */
  chat_id?: string | null;
  title?: string | null;
  text?: string;
  url?: string | null;
  props: z.input<(typeof nodePropsSchemas)[K]>;
  metadata?: Record<string, unknown>;
  created_at?: number;
  updated_at?: number;
};
/** Input to create a node of any kind. */
export type NewNode = { [K in NodeKind]: NewNodeOf<K> }[NodeKind];

/** Fields of a node that `updateNode` may change; `updated_at` defaults to now. */
export interface NodePatch {
  title?: string | null;
  text?: string;
  url?: string | null;
  props?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  updated_at?: number;
}

/** Input to create an edge. Creating the same (type, from, to) again updates weight and metadata. */
export interface NewEdge {
  type: EdgeType;
  from_id: string;
  to_id: string;
  weight?: number | null;
  metadata?: Record<string, unknown>;
  created_at?: number;
}

/** One page of results and the cursor of the next page (null at the end). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Which edges `neighbours` follows. */
export interface NeighbourOptions {
  types?: readonly EdgeType[];
  direction?: 'out' | 'in' | 'both';
  limit?: number;
}

/** A neighbouring node and the edge that reached it. */
export interface Neighbour {
  edge: MemoryEdge;
  node: MemoryNode;
}

/** What the weaver must do for one outbox item. */
export type OutboxPayload =
  | { kind: 'index-message'; node_id: string }
  | { kind: 'index-document'; node_id: string }
  | { kind: 'delete-index'; node_ids: string[] }
  | { kind: 'update-tier'; tier: MemoryTierName; node_ids: string[] }
  | { kind: 'reembed-all'; model: string }
  /** A chat's next summary, when it is due; lowest priority, at most one pending per chat. */
  | { kind: 'summarize'; chat_id: string }
  /** Similar-neighbour links and entities of nodes already indexed (searchable before this runs). */
  | { kind: 'enrich'; node_ids: string[] };

/** Filters of a node search; times in Unix milliseconds, inclusive. */
export interface NodeFilters {
  chat_id?: string;
  kinds?: readonly string[];
  tiers?: readonly string[];
  url?: string;
  since?: number;
  until?: number;
}

/** Kind of an outbox item. */
export type OutboxKind = OutboxPayload['kind'];
/** Life cycle of an outbox item. `dead` items failed too often and keep their last error. */
export type OutboxStatus = 'pending' | 'in_progress' | 'done' | 'dead';

/** One outbox item. */
export interface OutboxItem {
  id: number;
  payload: OutboxPayload;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  /** Last change of status: for a done item, when it was done. */
  updated_at: number;
}

/** Counts of the outbox by status, and the last recorded error. */
export interface OutboxStats {
  pending: number;
  in_progress: number;
  done: number;
  dead: number;
  last_error: string | null;
  /** Saved messages and pages whose index item is not done yet: not in the vector index. */
  unindexed: number;
  /** Creation time (ms) of the oldest of those (freshness), or null when none waits. */
  oldest_open_at: number | null;
}

/** Result of a word search over chats. */
export interface ChatSearchHit {
  chat: MemoryNodeOf<'chat'>;
  /** Higher is better (negated FTS5 bm25, summed over the chat's matching rows). */
  score: number;
}

/** Result of merging pushed items (last write wins on updated_at). */
export interface MergeResult {
  synced: number;
  skipped: number;
}

/** A pushed node: replaces the stored one only when its updated_at is newer (or equal). */
export type SyncNode = NewNode & { updated_at: number; deleted?: boolean };

/** One stored response of the Responses API (`store: true`). JSON fields are opaque to storage. */
export interface StoredResponse {
  /** `resp_...` */
  id: string;
  /** Unix ms; the eviction order beyond the row cap (oldest first). */
  createdAt: number;
  /** Unix ms; from this time on the response is gone (not returned, pruned). */
  expiresAt: number;
  /** The response object as the API returned it (JSON text). */
  response: string;
  /** The request's input items, as listed by input_items (JSON text of an array). */
  inputItems: string;
  /** The whole conversation up to and including this response's output, for previous_response_id (JSON text). */
  conversation: string;
}

/** Options of `createStorage`. */
export interface StorageOptions {
  /** Path of the SQLite file (`<dataDir>/tabagent.db`), or `:memory:`. */
  path: string;
  /** Clock in Unix ms (tests inject one). */
  now?: () => number;
  /** Tier ages; see `memoryTierFor`. */
  tierPolicy?: TierPolicy;
  /** How long a writer waits for another connection's lock, ms (default 5000). */
  busyTimeoutMs?: number;
}

/**
 * The memory store: the source of truth for chats, messages, pages and their links. Every
 * write that changes indexable text also writes an outbox item in the same transaction.
 */
export interface Storage {
  readonly path: string;
  /** Schema version of the open database. */
  readonly schemaVersion: number;

  createNode<K extends NodeKind>(input: NewNodeOf<K>): MemoryNodeOf<K>;
  /** Creates the node, or replaces the stored one with the same id (same kind). */
  upsertNode<K extends NodeKind>(input: NewNodeOf<K>): MemoryNodeOf<K>;
  /** Several nodes in one query, by id (missing ids are absent). */
  getNodes(ids: readonly string[]): Map<string, MemoryNode>;
  getNode(id: string): MemoryNode | undefined;
  getNodeOf<K extends NodeKind>(kind: K, id: string): MemoryNodeOf<K> | undefined;
  updateNode(id: string, patch: NodePatch): MemoryNode;
  /** Deletes a node, its edges and (for a chat) everything in it; queues index deletion. Returns deleted node ids. */
  deleteNode(id: string): string[];
  /** Nodes of a chat, oldest first: by created_at, then insertion order (two nodes written in the same millisecond keep the order they were written in). */
  listByChat(chatId: string, options?: { kinds?: readonly NodeKind[]; limit?: number; cursor?: string }): Page<MemoryNode>;
  /** Chats, most recently updated first. */
  listChats(options?: { userId?: string; limit?: number; cursor?: string }): Page<MemoryNodeOf<'chat'>>;
  /** Saved pages, documents and bookmarks, most recently updated first. */
  listDocuments(options?: { limit?: number; cursor?: string }): Page<MemoryNode>;
  /**
   * Nodes of some kinds updated after `since` (ms), in conversation order (created_at, then
   * insertion order), so that pushing them elsewhere in this order reproduces the same order.
   */
  listUpdatedSince(kinds: readonly NodeKind[], since: number, options?: { userId?: string }): MemoryNode[];
  /** Every node of the given kinds, in id order, in pages (rebuild). */
  iterateNodes(kinds: readonly NodeKind[], batchSize?: number): Iterable<MemoryNode>;
  countByKind(): Record<string, number>;
  /** Nodes of `kind` (default messages) in a chat. */
  countChatMessages(chatId: string, kind?: NodeKind): number;
  /** A chat's messages in conversation order from `offset`: a bounded window, not the whole chat. */
  chatMessagesAt(chatId: string, offset: number, limit: number): MemoryNode[];

  createEdge(input: NewEdge): MemoryEdge;
  deleteEdge(id: string): boolean;
  /** Edges of a node, oldest first (creation time, then the order they were written in). */
  edgesOf(nodeId: string, options?: NeighbourOptions): MemoryEdge[];
  neighbours(nodeId: string, options?: NeighbourOptions): Neighbour[];

  /**
   * Full-text (FTS5, BM25) search over saved nodes whose index item has not been done yet: what
   * the vector index cannot find yet. Best first. Runs on a worker thread's read-only connection
   * for a file database, off the event loop, and sees every commit made before the call.
   */
  searchUnindexed(query: string, options: { filters?: NodeFilters; limit: number }): Promise<{ node: MemoryNode; score: number }[]>;
  /** Chats whose title or messages match the words of `query` (FTS5, BM25 summed per chat); like `searchUnindexed`, off the event loop. */
  searchChats(query: string, options?: { userId?: string; limit?: number }): Promise<ChatSearchHit[]>;
  /** Merges pushed chats and messages (last write wins on updated_at). */
  mergeNodes(nodes: readonly SyncNode[]): MergeResult;

  /** Recomputes every node's tier from its age; queues index tier updates. Returns nodes changed. */
  updateTiers(): number;

  enqueue(payload: OutboxPayload): number;
  /** Enqueues unless the same payload is already pending (a debounce); null when it was. */
  enqueueOnce(payload: OutboxPayload): number | null;
  /** Leases up to `limit` ready items (in_progress) in queue order, only of `kinds` when given. */
  claimOutbox(limit: number, kinds?: readonly OutboxKind[]): OutboxItem[];
  /** Marks one item, or several in one statement, done. */
  completeOutbox(id: number | readonly number[]): void;
  /** Records a failure: back to pending at `retryAt`, or `dead` when `dead` is true. */
  failOutbox(id: number, error: string, retry: { dead: boolean; retryAt: number }): void;
  /** Returns in_progress items leased before `now - leaseMs` to pending (crash recovery). */
  releaseExpiredLeases(leaseMs: number): number;
  /** Puts claimed (in_progress) items back to pending without counting an attempt (a worker stopping). */
  releaseOutbox(ids: readonly number[]): void;
  outboxStats(): OutboxStats;
  /**
   * The outbox counts and the node counts by kind as one snapshot (one read transaction, on the
   * read worker when there is one, so the event loop does not count): what status and metrics show.
   */
  memorySnapshot(): Promise<{ outbox: OutboxStats; counts: Record<string, number> }>;
  /**
   * A version of the database's content: it changes with every write of this process
   * (`total_changes()`) and every commit of another (`PRAGMA data_version`), so an unchanged
   * version means every count is unchanged.
   */
  contentVersion(): string;
  listOutbox(status?: OutboxStatus): OutboxItem[];
  /**
   * Deletes done items older than `olderThanMs`: at most `limit` of them (one bounded statement),
   * or, without a limit, all of them in statements of 1,000 rows.
   */
  pruneOutbox(olderThanMs: number, limit?: number): number;

  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): void;
  /**
   * The memory pipeline's model settings: the one owner of their stored format. A field that was
   * never set, or was set to null, is null (the pipeline then uses its default model).
   */
  getMemorySettings(): MemorySettings;
  /** Changes the fields present in `patch` (null clears one), validated by `MemorySettings`; returns all of them. */
  updateMemorySettings(patch: Partial<MemorySettings>): MemorySettings;

  /**
   * Stores a response (replacing one with the same id), then, in the same transaction, deletes the
   * expired ones and the oldest (created_at, then insertion order) beyond `limits.maxRows` (>= 1).
   */
  putResponse(entry: StoredResponse, limits: { maxRows: number }): void;
  /** A stored response, or undefined when there is none or it has expired at `now` (default: the store's clock). */
  getResponse(id: string, now?: number): StoredResponse | undefined;
  /** Deletes a stored response; true when one that had not expired was deleted. */
  deleteResponse(id: string): boolean;
  /** Deletes the responses expired at `now` (default: the store's clock); returns how many. */
  pruneResponses(now?: number): number;

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T;
  /** Closes the store at once; its read worker's connection ends a moment later (use `release` to wait for it). */
  close(): void;
  /**
   * Closes the store and resolves once no connection to its file is left, the read worker's
   * included: a caller that reopens, replaces or deletes the file after it meets no old handle
   * (SQLite shares a file's WAL index between the connections of one process).
   */
  release(): Promise<void>;
}

export type { NodeProps };
