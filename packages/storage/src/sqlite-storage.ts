import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ReadWorker } from './read-worker.js';
import {
  ConflictError,
  InvalidRequestError,
  MemoryNode,
  MemorySettings,
  NotFoundError,
  defaultTierPolicy,
  indexableNodeKinds,
  memoryTierFor,
  nodePropsSchemas,
  safeParseJson,
  type EdgeType,
  type MemoryEdge,
  type MemoryNodeOf,
  type MemoryTierName,
  type NodeKind,
  type TierPolicy,
} from '@tabagent/values';
import { decodeCursor, encodeCursor } from './cursor.js';
import { currentSchemaVersion, migrate } from './migrations.js';
import { memorySettingsKey } from './setting-keys.js';
import type {
  ChatSearchHit,
  MergeResult,
  Neighbour,
  NeighbourOptions,
  NewEdge,
  NewNodeOf,
  NodePatch,
  NodeFilters,
  OutboxItem,
  OutboxKind,
  OutboxPayload,
  OutboxStats,
  OutboxStatus,
  Page,
  Storage,
  StorageOptions,
  StoredResponse,
  SyncNode,
} from './storage-types.js';

interface NodeRow {
  id: string;
  kind: string;
  chat_id: string | null;
  title: string | null;
  text: string;
  url: string | null;
  props: string;
  metadata: string;
  tier: string;
  created_at: number;
  updated_at: number;
  /** Insertion order (schema 3): assigned once, kept by updates. */
  seq: number;
}

interface EdgeRow {
  id: string;
  type: string;
  from_id: string;
  to_id: string;
  weight: number | null;
  metadata: string;
  created_at: number;
}

interface OutboxRow {
  id: number;
  kind: string;
  payload: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

interface ResponseRow {
  id: string;
  created_at: number;
  expires_at: number;
  response: string;
  input_items: string;
  conversation: string;
}

function rowToResponse(row: ResponseRow): StoredResponse {
  return {
    id: row.id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    response: row.response,
    inputItems: row.input_items,
    conversation: row.conversation,
  };
}

const indexable = new Set<string>(indexableNodeKinds);
const documentKinds = new Set<string>(['webpage', 'document', 'bookmark']);

function parseJsonObject(text: string): Record<string, unknown> {
  const parsed = safeParseJson(text);
  return parsed.success && typeof parsed.value === 'object' && parsed.value !== null && !Array.isArray(parsed.value)
    ? (parsed.value as Record<string, unknown>)
    : {};
}

function rowToNode(row: NodeRow): MemoryNode {
  return MemoryNode.parse({
    id: row.id,
    kind: row.kind,
    chat_id: row.chat_id,
    title: row.title,
    text: row.text,
    url: row.url,
    props: parseJsonObject(row.props),
    metadata: parseJsonObject(row.metadata),
    tier: row.tier,
    created_at: row.created_at,
    updated_at: row.updated_at,
  });
}

function rowToEdge(row: EdgeRow): MemoryEdge {
  return {
    id: row.id,
    type: row.type as EdgeType,
    from_id: row.from_id,
    to_id: row.to_id,
    weight: row.weight,
    metadata: parseJsonObject(row.metadata),
    created_at: row.created_at,
  };
}

function rowToOutbox(row: OutboxRow): OutboxItem {
  const parsed = safeParseJson(row.payload);
  const payload = (parsed.success ? parsed.value : { kind: row.kind }) as OutboxPayload;
  return {
    id: row.id,
    payload,
    status: row.status as OutboxStatus,
    attempts: row.attempts,
    next_attempt_at: row.next_attempt_at,
    last_error: row.last_error,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** Words of a free-text query as an FTS5 expression: each word quoted (no operator injection), OR-ed. */
export function toFtsQuery(query: string): string | null {
  const words = query.match(/[\p{L}\p{N}_]+/gu) ?? [];
  if (words.length === 0) return null;
  return words
    .slice(0, 64)
    .map((word) => `"${word.replaceAll('"', '""')}"`)
    .join(' OR ');
}

/** SQLite-backed `Storage` (better-sqlite3). */
export class SqliteStorage implements Storage {
  readonly path: string;
  readonly schemaVersion: number;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly tierPolicy: TierPolicy;
  /** Prepared statements by SQL text: preparing is most of the cost of a small query. */
  private readonly statements = new Map<string, Database.Statement>();
  private runInTransaction: Database.Transaction<(inner: () => unknown) => unknown> | undefined;
  /** Searches over every row run here, off the event loop (a file database only). */
  private readonly reader: ReadWorker | undefined;

  constructor(options: StorageOptions) {
    this.path = options.path;
    this.now = options.now ?? Date.now;
    this.tierPolicy = options.tierPolicy ?? defaultTierPolicy;
    if (options.path !== ':memory:' && !options.path.startsWith('file:')) mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    try {
      this.db.pragma('journal_mode = WAL');
      // FULL, not NORMAL: in WAL mode NORMAL survives a process crash but can lose the last
      // transactions on power loss or an OS crash. The server acknowledges a save to the client
      // only after commit, and the issue requires that nothing acknowledged is lost; the cost is
      // one fsync of the WAL per commit, which batched writes (add_messages, sync.push) amortise.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      migrate(this.db, undefined, this.now);
      this.schemaVersion = currentSchemaVersion(this.db);
    } catch (error) {
      // A file that is not a database (or one from a newer version) opens, then fails here: its handle must not stay open.
      this.db.close();
      throw error;
    }
    // An in-memory or URI database cannot be opened a second time by path: its searches run here.
    if (options.path !== ':memory:' && !options.path.startsWith('file:')) this.reader = new ReadWorker(options.path, options.busyTimeoutMs ?? 5000);
  }

  /** A read-only statement's rows, from the read worker when there is one. */
  private readRows<Row>(text: string, params: ReadonlyArray<string | number | null>): Promise<Row[]> {
    if (this.reader) return this.reader.all<Row>(text, params);
    try {
      return Promise.resolve(this.sql(text).all(...params) as Row[]);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  transaction<T>(fn: () => T): T {
    // IMMEDIATE: a deferred transaction that reads then writes cannot wait for another process's
    // write lock (SQLITE_BUSY at once in WAL mode); taking the lock up front lets busy_timeout apply.
    // One wrapper made once (nested calls become savepoints, as before).
    this.runInTransaction ??= this.db.transaction((inner: () => unknown) => inner());
    return this.runInTransaction.immediate(fn) as T;
  }

  /** A transaction of its own, or part of the caller's (for writes that fail before they write). */
  private atomically<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.transaction(fn);
  }

  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  async release(): Promise<void> {
    // The reader first, so that the main connection is the file's last and checkpoints as it closes.
    await this.reader?.close().catch(() => undefined);
    this.close();
  }

  close(): void {
    this.reader?.close().catch(() => undefined);
    if (!this.db.open) return;
    // The read worker's connection may outlive this one by a moment (it is terminated
    // asynchronously), and then this is not the last connection, which is the one SQLite
    // checkpoints at: fold the WAL into the file here, so a closed store is one whole file.
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Busy (a read still running): the WAL stays, and the next open recovers from it.
    }
    this.db.close();
  }

  createNode<K extends NodeKind>(input: NewNodeOf<K>): MemoryNodeOf<K> {
    return this.transaction(() => {
      if (input.id !== undefined && this.getRow(input.id) !== undefined) throw new ConflictError(`A node with id ${input.id} already exists`);
      return this.writeNode(input, 'insert');
    });
  }

  upsertNode<K extends NodeKind>(input: NewNodeOf<K>): MemoryNodeOf<K> {
    return this.transaction(() => this.writeNode(input, 'upsert'));
  }

  private writeNode<K extends NodeKind>(input: NewNodeOf<K>, mode: 'insert' | 'upsert'): MemoryNodeOf<K> {
    const now = this.now();
    const id = input.id ?? `${input.kind}_${randomUUID()}`;
    const existing = mode === 'upsert' ? this.getRow(id) : undefined;
    if (existing !== undefined && existing.kind !== input.kind) throw new ConflictError(`Node ${id} is a ${existing.kind}, not a ${input.kind}`);
    const propsResult = nodePropsSchemas[input.kind].safeParse(input.props);
    if (!propsResult.success)
      throw new InvalidRequestError(
        `Invalid ${input.kind} fields: ${propsResult.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
      );
    const chatId = input.chat_id ?? null;
    if (chatId !== null) {
      const chat = this.getRow(chatId);
      if (chat === undefined || chat.kind !== 'chat') throw new NotFoundError(`Chat ${chatId} not found`);
    }
    const createdAt = input.created_at ?? existing?.created_at ?? this.nextCreatedAt(chatId, now);
    const updatedAt = input.updated_at ?? now;
    const row: NodeRow = {
      id,
      kind: input.kind,
      chat_id: chatId,
      title: input.title ?? null,
      text: input.text ?? '',
      url: input.url ?? null,
      props: JSON.stringify(propsResult.data),
      metadata: JSON.stringify(input.metadata ?? {}),
      tier: memoryTierFor(updatedAt, now, this.tierPolicy),
      created_at: createdAt,
      updated_at: updatedAt,
      seq: existing?.seq ?? this.nextSeq(),
    };
    if (existing === undefined) {
      this.sql(
        'INSERT INTO nodes (id, kind, chat_id, title, text, url, props, metadata, tier, created_at, updated_at, seq) VALUES (@id, @kind, @chat_id, @title, @text, @url, @props, @metadata, @tier, @created_at, @updated_at, @seq)',
      ).run(row);
    } else {
      this.sql(
        'UPDATE nodes SET chat_id = @chat_id, title = @title, text = @text, url = @url, props = @props, metadata = @metadata, tier = @tier, created_at = @created_at, updated_at = @updated_at WHERE id = @id',
      ).run(row);
    }
    if (chatId !== null) this.touchChat(chatId, updatedAt);
    if (existing === undefined || existing.text !== row.text || existing.title !== row.title) this.enqueueIndex(input.kind, id);
    return rowToNode(row) as MemoryNodeOf<K>;
  }

  /** The next insertion sequence; callers hold the write transaction. */
  private nextSeq(): number {
    return ((this.sql('SELECT max(seq) FROM nodes').pluck().get() as number | null) ?? 0) + 1;
  }

  /**
   * The time stamp of a new node that names none: now, but never before the newest node of its
   * chat, so a chat read in time order is in insertion order even when the clock steps back.
   */
  private nextCreatedAt(chatId: string | null, now: number): number {
    if (chatId === null) return now;
    const newest = this.sql('SELECT max(created_at) FROM nodes WHERE chat_id = ?').pluck().get(chatId) as number | null;
    return newest === null ? now : Math.max(now, newest);
  }

  private touchChat(chatId: string, at: number): void {
    this.sql('UPDATE nodes SET updated_at = max(updated_at, ?), tier = ? WHERE id = ?').run(at, memoryTierFor(at, this.now(), this.tierPolicy), chatId);
  }

  private enqueueIndex(kind: string, nodeId: string): void {
    if (!indexable.has(kind)) return;
    this.enqueue(documentKinds.has(kind) ? { kind: 'index-document', node_id: nodeId } : { kind: 'index-message', node_id: nodeId });
  }

  private getRow(id: string): NodeRow | undefined {
    return this.sql('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
  }

  getNode(id: string): MemoryNode | undefined {
    const row = this.getRow(id);
    return row === undefined ? undefined : rowToNode(row);
  }

  getNodes(ids: readonly string[]): Map<string, MemoryNode> {
    const rows = this.sql('SELECT * FROM nodes WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(ids)) as NodeRow[];
    return new Map(rows.map((row) => [row.id, rowToNode(row)]));
  }

  getNodeOf<K extends NodeKind>(kind: K, id: string): MemoryNodeOf<K> | undefined {
    const node = this.getNode(id);
    return node !== undefined && node.kind === kind ? (node as MemoryNodeOf<K>) : undefined;
  }

  updateNode(id: string, patch: NodePatch): MemoryNode {
    return this.transaction(() => {
      const existing = this.getNode(id);
      if (existing === undefined) throw new NotFoundError(`Node ${id} not found`);
      const next = {
        kind: existing.kind,
        id,
        chat_id: existing.chat_id,
        title: patch.title === undefined ? existing.title : patch.title,
        text: patch.text ?? existing.text,
        url: patch.url === undefined ? existing.url : patch.url,
        props: { ...existing.props, ...(patch.props ?? {}) },
        metadata: patch.metadata ?? existing.metadata,
        created_at: existing.created_at,
        updated_at: patch.updated_at ?? this.now(),
      } as NewNodeOf<NodeKind>;
      return this.writeNode(next, 'upsert');
    });
  }

  deleteNode(id: string): string[] {
    return this.transaction(() => {
      const row = this.getRow(id);
      if (row === undefined) throw new NotFoundError(`Node ${id} not found`);
      const ids = [id, ...(this.sql('SELECT id FROM nodes WHERE chat_id = ?').pluck().all(id) as string[])];
      // Entities and chunks derived from these nodes stay; their edges go with the cascade.
      this.sql('DELETE FROM nodes WHERE id = ?').run(id);
      if (row.chat_id !== null) this.touchChat(row.chat_id, this.now());
      this.enqueue({ kind: 'delete-index', node_ids: ids });
      return ids;
    });
  }

  listByChat(chatId: string, options: { kinds?: readonly NodeKind[]; limit?: number; cursor?: string } = {}): Page<MemoryNode> {
    const limit = options.limit ?? 100;
    const kinds = options.kinds ?? ['message'];
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const rows = this.sql(
      `SELECT * FROM nodes WHERE chat_id = ? AND kind IN (SELECT value FROM json_each(?))
         AND (? IS NULL OR created_at > ? OR (created_at = ? AND seq > ?))
         ORDER BY created_at, seq LIMIT ?`,
    ).all(
      chatId,
      JSON.stringify(kinds),
      after?.sortValue ?? null,
      after?.sortValue ?? null,
      after?.sortValue ?? null,
      after?.seq ?? null,
      limit + 1,
    ) as NodeRow[];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(rowToNode), nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.created_at, last.seq) : null };
  }

  listChats(options: { userId?: string; limit?: number; cursor?: string } = {}): Page<MemoryNodeOf<'chat'>> {
    const limit = options.limit ?? 100;
    const before = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const rows = this.sql(
      `SELECT * FROM nodes WHERE kind = 'chat' AND (? IS NULL OR json_extract(props, '$.user_id') = ?)
         AND (? IS NULL OR updated_at < ? OR (updated_at = ? AND seq < ?))
         ORDER BY updated_at DESC, seq DESC LIMIT ?`,
    ).all(
      options.userId ?? null,
      options.userId ?? null,
      before?.sortValue ?? null,
      before?.sortValue ?? null,
      before?.sortValue ?? null,
      before?.seq ?? null,
      limit + 1,
    ) as NodeRow[];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((row) => rowToNode(row) as MemoryNodeOf<'chat'>),
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.updated_at, last.seq) : null,
    };
  }

  listDocuments(options: { limit?: number; cursor?: string } = {}): Page<MemoryNode> {
    const limit = options.limit ?? 100;
    const before = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const rows = this.sql(
      `SELECT * FROM nodes WHERE kind IN ('webpage', 'document', 'bookmark')
         AND (? IS NULL OR updated_at < ? OR (updated_at = ? AND seq < ?))
         ORDER BY updated_at DESC, seq DESC LIMIT ?`,
    ).all(before?.sortValue ?? null, before?.sortValue ?? null, before?.sortValue ?? null, before?.seq ?? null, limit + 1) as NodeRow[];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((row) => rowToNode(row)),
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.updated_at, last.seq) : null,
    };
  }

  listUpdatedSince(kinds: readonly NodeKind[], since: number, options: { userId?: string } = {}): MemoryNode[] {
    const rows = this.sql(
      `SELECT n.* FROM nodes n LEFT JOIN nodes c ON c.id = n.chat_id
         WHERE n.kind IN (SELECT value FROM json_each(?)) AND n.updated_at > ?
         AND (? IS NULL OR json_extract(coalesce(c.props, n.props), '$.user_id') = ?)
         ORDER BY n.created_at, n.seq`,
    ).all(JSON.stringify(kinds), since, options.userId ?? null, options.userId ?? null) as NodeRow[];
    return rows.map(rowToNode);
  }

  *iterateNodes(kinds: readonly NodeKind[], batchSize = 500): Iterable<MemoryNode> {
    let afterId = '';
    for (;;) {
      const rows = this.sql('SELECT * FROM nodes WHERE kind IN (SELECT value FROM json_each(?)) AND id > ? ORDER BY id LIMIT ?').all(
        JSON.stringify(kinds),
        afterId,
        batchSize,
      ) as NodeRow[];
      for (const row of rows) yield rowToNode(row);
      const last = rows[rows.length - 1];
      if (last === undefined || rows.length < batchSize) return;
      afterId = last.id;
    }
  }

  countByKind(): Record<string, number> {
    const rows = this.sql('SELECT kind, count(*) AS n FROM nodes GROUP BY kind').all() as { kind: string; n: number }[];
    return Object.fromEntries(rows.map((row) => [row.kind, row.n]));
  }

  countChatMessages(chatId: string, kind: NodeKind = 'message'): number {
    return this.sql('SELECT count(*) FROM nodes WHERE chat_id = ? AND kind = ?').pluck().get(chatId, kind) as number;
  }

  chatMessagesAt(chatId: string, offset: number, limit: number): MemoryNode[] {
    // The offset walks the (chat_id, created_at, seq) index only; rows are read for the window.
    const rows = this.sql("SELECT * FROM nodes WHERE chat_id = ? AND kind = 'message' ORDER BY created_at, seq LIMIT ? OFFSET ?").all(
      chatId,
      limit,
      offset,
    ) as NodeRow[];
    return rows.map(rowToNode);
  }

  createEdge(input: NewEdge): MemoryEdge {
    // Checks come before the one write, so inside a caller's transaction no savepoint is needed.
    return this.atomically(() => {
      for (const nodeId of [input.from_id, input.to_id]) {
        if (this.sql('SELECT 1 FROM nodes WHERE id = ?').pluck().get(nodeId) === undefined) throw new NotFoundError(`Node ${nodeId} not found`);
      }
      const row: EdgeRow = {
        id: `edge_${randomUUID()}`,
        type: input.type,
        from_id: input.from_id,
        to_id: input.to_id,
        weight: input.weight ?? null,
        metadata: JSON.stringify(input.metadata ?? {}),
        created_at: input.created_at ?? this.now(),
      };
      // An existing edge keeps its id and creation time; RETURNING says which row it is.
      const kept = this.sql(
        `INSERT INTO edges (id, type, from_id, to_id, weight, metadata, created_at) VALUES (@id, @type, @from_id, @to_id, @weight, @metadata, @created_at)
         ON CONFLICT (type, from_id, to_id) DO UPDATE SET weight = excluded.weight, metadata = excluded.metadata RETURNING id, created_at`,
      ).get(row) as { id: string; created_at: number };
      return rowToEdge({ ...row, id: kept.id, created_at: kept.created_at });
    });
  }

  deleteEdge(id: string): boolean {
    return this.sql('DELETE FROM edges WHERE id = ?').run(id).changes > 0;
  }

  edgesOf(nodeId: string, options: NeighbourOptions = {}): MemoryEdge[] {
    const direction = options.direction ?? 'both';
    const types = options.types === undefined ? null : JSON.stringify(options.types);
    const rows = this.sql(
      `SELECT * FROM edges WHERE ((? AND from_id = ?) OR (? AND to_id = ?))
         AND (? IS NULL OR type IN (SELECT value FROM json_each(?)))
         ORDER BY created_at, rowid LIMIT ?`,
    ).all(direction !== 'in' ? 1 : 0, nodeId, direction !== 'out' ? 1 : 0, nodeId, types, types, options.limit ?? 1000) as EdgeRow[];
    return rows.map(rowToEdge);
  }

  neighbours(nodeId: string, options: NeighbourOptions = {}): Neighbour[] {
    const result: Neighbour[] = [];
    for (const edge of this.edgesOf(nodeId, options)) {
      const otherId = edge.from_id === nodeId ? edge.to_id : edge.from_id;
      const node = this.getNode(otherId);
      if (node !== undefined) result.push({ edge, node });
    }
    return result;
  }

  async searchUnindexed(query: string, options: { filters?: NodeFilters; limit: number }): Promise<{ node: MemoryNode; score: number }[]> {
    const expression = toFtsQuery(query);
    if (expression === null) return [];
    const f = options.filters ?? {};
    // The open index items are few (the backlog); their node ids bound the FTS match.
    const rows = await this.readRows<NodeRow & { score: number }>(
      `WITH open AS MATERIALIZED (
         SELECT DISTINCT json_extract(payload, '$.node_id') AS id FROM outbox
         WHERE status IN ('pending', 'in_progress') AND kind IN ('index-message', 'index-document')
       )
       SELECT n.*, -bm25(nodes_fts) AS score FROM nodes_fts JOIN nodes n ON n.rowid = nodes_fts.rowid
       WHERE nodes_fts MATCH ? AND n.id IN (SELECT id FROM open)
         AND (? IS NULL OR n.chat_id = ?) AND (? IS NULL OR n.kind IN (SELECT value FROM json_each(?)))
         AND (? IS NULL OR n.tier IN (SELECT value FROM json_each(?))) AND (? IS NULL OR n.url = ?)
         AND (? IS NULL OR n.created_at >= ?) AND (? IS NULL OR n.created_at <= ?)
       ORDER BY score DESC, n.seq DESC LIMIT ?`,
      [
        expression,
        f.chat_id ?? null,
        f.chat_id ?? null,
        f.kinds === undefined ? null : 1,
        JSON.stringify(f.kinds ?? []),
        f.tiers === undefined ? null : 1,
        JSON.stringify(f.tiers ?? []),
        f.url ?? null,
        f.url ?? null,
        f.since ?? null,
        f.since ?? null,
        f.until ?? null,
        f.until ?? null,
        options.limit,
      ],
    );
    return rows.map((row) => ({ node: rowToNode(row), score: row.score }));
  }

  async searchChats(query: string, options: { userId?: string; limit?: number } = {}): Promise<ChatSearchHit[]> {
    const expression = toFtsQuery(query);
    if (expression === null) return [];
    const rows = await this.readRows<NodeRow & { score: number }>(
      `WITH hits AS MATERIALIZED (
           SELECT CASE WHEN kind = 'chat' THEN node_id ELSE chat_id END AS chat, -bm25(nodes_fts) AS score
           FROM nodes_fts WHERE nodes_fts MATCH ? AND (kind = 'chat' OR (kind = 'message' AND chat_id IS NOT NULL))
         )
         SELECT n.*, sum(h.score) AS score FROM hits h JOIN nodes n ON n.id = h.chat
         WHERE (? IS NULL OR json_extract(n.props, '$.user_id') = ?)
         GROUP BY n.id ORDER BY score DESC, n.updated_at DESC, n.seq DESC LIMIT ?`,
      [expression, options.userId ?? null, options.userId ?? null, options.limit ?? 20],
    );
    return rows.map((row) => ({ chat: rowToNode(row) as MemoryNodeOf<'chat'>, score: row.score }));
  }

  mergeNodes(nodes: readonly SyncNode[]): MergeResult {
    return this.transaction(() => {
      let synced = 0;
      let skipped = 0;
      // Chats first so pushed messages find their chat whatever the order of the batch.
      const ordered = [...nodes].sort((a, b) => (a.kind === 'chat' ? 0 : 1) - (b.kind === 'chat' ? 0 : 1));
      for (const node of ordered) {
        const existing = node.id === undefined ? undefined : this.getRow(node.id);
        if (existing !== undefined && existing.updated_at > node.updated_at) {
          skipped += 1;
          continue;
        }
        if (node.deleted === true) {
          if (existing !== undefined) this.deleteNode(existing.id);
          synced += 1;
          continue;
        }
        const { deleted: _deleted, ...input } = node;
        this.writeNode(input, 'upsert');
        synced += 1;
      }
      return { synced, skipped };
    });
  }

  updateTiers(): number {
    return this.transaction(() => {
      const now = this.now();
      const rows = this.sql('SELECT id, kind, tier, updated_at FROM nodes').all() as Pick<NodeRow, 'id' | 'kind' | 'tier' | 'updated_at'>[];
      const changed = new Map<MemoryTierName, string[]>();
      const update = this.sql('UPDATE nodes SET tier = ? WHERE id = ?');
      let count = 0;
      for (const row of rows) {
        const tier = memoryTierFor(row.updated_at, now, this.tierPolicy);
        if (tier === row.tier) continue;
        update.run(tier, row.id);
        count += 1;
        if (indexable.has(row.kind)) changed.set(tier, [...(changed.get(tier) ?? []), row.id]);
      }
      for (const [tier, ids] of changed) this.enqueue({ kind: 'update-tier', tier, node_ids: ids });
      return count;
    });
  }

  enqueue(payload: OutboxPayload): number {
    const now = this.now();
    const result = this.sql("INSERT INTO outbox (kind, payload, status, next_attempt_at, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)").run(
      payload.kind,
      JSON.stringify(payload),
      now,
      now,
      now,
    );
    return Number(result.lastInsertRowid);
  }

  enqueueOnce(payload: OutboxPayload): number | null {
    return this.atomically(() => {
      const text = JSON.stringify(payload);
      const waiting = this.sql("SELECT id FROM outbox WHERE kind = ? AND status = 'pending' AND payload = ? LIMIT 1").pluck().get(payload.kind, text);
      return waiting === undefined ? this.enqueue(payload) : null;
    });
  }

  claimOutbox(limit: number, kinds?: readonly OutboxKind[]): OutboxItem[] {
    return this.transaction(() => {
      const now = this.now();
      const rows = (
        kinds === undefined
          ? this.sql("SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?").all(now, limit)
          : this.sql(
              "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? AND kind IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?",
            ).all(now, JSON.stringify(kinds), limit)
      ) as OutboxRow[];
      if (rows.length > 0)
        this.sql("UPDATE outbox SET status = 'in_progress', leased_at = ?, updated_at = ? WHERE id IN (SELECT value FROM json_each(?))").run(
          now,
          now,
          JSON.stringify(rows.map((row) => row.id)),
        );
      return rows.map((row) => ({ ...rowToOutbox(row), status: 'in_progress' as const }));
    });
  }

  completeOutbox(id: number | readonly number[]): void {
    if (typeof id === 'number') {
      this.sql("UPDATE outbox SET status = 'done', leased_at = NULL, updated_at = ? WHERE id = ?").run(this.now(), id);
      return;
    }
    if (id.length === 0) return;
    this.sql("UPDATE outbox SET status = 'done', leased_at = NULL, updated_at = ? WHERE id IN (SELECT value FROM json_each(?))").run(
      this.now(),
      JSON.stringify(id),
    );
  }

  failOutbox(id: number, error: string, retry: { dead: boolean; retryAt: number }): void {
    this.sql('UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, leased_at = NULL, updated_at = ? WHERE id = ?').run(
      retry.dead ? 'dead' : 'pending',
      error.slice(0, 4000),
      retry.retryAt,
      this.now(),
      id,
    );
  }

  releaseExpiredLeases(leaseMs: number): number {
    const now = this.now();
    return this.sql("UPDATE outbox SET status = 'pending', leased_at = NULL, updated_at = ? WHERE status = 'in_progress' AND leased_at <= ?").run(
      now,
      now - leaseMs,
    ).changes;
  }

  releaseOutbox(ids: readonly number[]): void {
    if (ids.length === 0) return;
    this.sql(
      "UPDATE outbox SET status = 'pending', leased_at = NULL, updated_at = ? WHERE status = 'in_progress' AND id IN (SELECT value FROM json_each(?))",
    ).run(this.now(), JSON.stringify(ids));
  }

  outboxStats(): OutboxStats {
    const rows = this.sql('SELECT status, count(*) AS n FROM outbox GROUP BY status').all() as { status: string; n: number }[];
    const counts = Object.fromEntries(rows.map((row) => [row.status, row.n])) as Partial<Record<OutboxStatus, number>>;
    // Errors of items still open or dead (found through the status index); a done item's old error no longer matters.
    const last = this.sql(
      "SELECT last_error FROM outbox WHERE status IN ('pending', 'in_progress', 'dead') AND last_error IS NOT NULL ORDER BY updated_at DESC, id DESC LIMIT 1",
    )
      .pluck()
      .get() as string | undefined;
    const open = this.sql(
      "SELECT count(*) AS n, min(created_at) AS oldest FROM outbox WHERE status IN ('pending', 'in_progress') AND kind IN ('index-message', 'index-document')",
    ).get() as { n: number; oldest: number | null };
    return {
      pending: counts.pending ?? 0,
      in_progress: counts.in_progress ?? 0,
      done: counts.done ?? 0,
      dead: counts.dead ?? 0,
      last_error: last ?? null,
      unindexed: open.n,
      oldest_open_at: open.oldest ?? null,
    };
  }

  listOutbox(status?: OutboxStatus): OutboxItem[] {
    const rows = this.sql('SELECT * FROM outbox WHERE (? IS NULL OR status = ?) ORDER BY id').all(status ?? null, status ?? null) as OutboxRow[];
    return rows.map(rowToOutbox);
  }

  pruneOutbox(olderThanMs: number, limit?: number): number {
    // Bounded statements: a week of done rows after a bulk import is deleted a thousand at a time,
    // each its own short write, not one long one that holds the writer (and the event loop).
    const before = this.now() - olderThanMs;
    const statement = this.sql("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'done' AND updated_at < ? LIMIT ?)");
    if (limit !== undefined) return statement.run(before, limit).changes;
    let pruned = 0;
    for (;;) {
      const changes = statement.run(before, 1000).changes;
      pruned += changes;
      if (changes < 1000) return pruned;
    }
  }

  contentVersion(): string {
    return `${this.sql('SELECT total_changes()').pluck().get() as number}:${this.db.pragma('data_version', { simple: true }) as number}`;
  }

  async memorySnapshot(): Promise<{ outbox: OutboxStats; counts: Record<string, number> }> {
    // One statement is one read transaction: a save committing meanwhile is in every figure or in none.
    const [row] = await this.readRows<{ statuses: string; kinds: string; last_error: string | null; unindexed: number; oldest: number | null }>(
      `SELECT
         (SELECT json_group_object(status, n) FROM (SELECT status, count(*) AS n FROM outbox GROUP BY status)) AS statuses,
         (SELECT json_group_object(kind, n) FROM (SELECT kind, count(*) AS n FROM nodes GROUP BY kind)) AS kinds,
         (SELECT last_error FROM outbox WHERE status IN ('pending', 'in_progress', 'dead') AND last_error IS NOT NULL ORDER BY updated_at DESC, id DESC LIMIT 1) AS last_error,
         (SELECT count(*) FROM outbox WHERE status IN ('pending', 'in_progress') AND kind IN ('index-message', 'index-document')) AS unindexed,
         (SELECT min(created_at) FROM outbox WHERE status IN ('pending', 'in_progress') AND kind IN ('index-message', 'index-document')) AS oldest`,
      [],
    );
    const statuses = JSON.parse(row?.statuses ?? '{}') as Partial<Record<OutboxStatus, number>>;
    return {
      outbox: {
        pending: statuses.pending ?? 0,
        in_progress: statuses.in_progress ?? 0,
        done: statuses.done ?? 0,
        dead: statuses.dead ?? 0,
        last_error: row?.last_error ?? null,
        unindexed: row?.unindexed ?? 0,
        oldest_open_at: row?.oldest ?? null,
      },
      counts: JSON.parse(row?.kinds ?? '{}') as Record<string, number>,
    };
  }

  getSetting(key: string): string | undefined {
    return this.sql('SELECT value FROM settings WHERE key = ?').pluck().get(key) as string | undefined;
  }

  setSetting(key: string, value: string): void {
    this.sql(
      'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    ).run(key, value, this.now());
  }

  getMemorySettings(): MemorySettings {
    const raw = this.getSetting(memorySettingsKey);
    const parsed = raw === undefined ? undefined : safeParseJson(raw);
    const stored = parsed?.success === true && typeof parsed.value === 'object' && parsed.value !== null ? (parsed.value as Record<string, unknown>) : {};
    // Field by field, so one unreadable value (a hand-edited file) does not lose the others.
    const field = (name: 'embedding_model' | 'entity_model' | 'rerank_model'): string | null => {
      const result = MemorySettings.shape[name].safeParse(stored[name] ?? null);
      return result.success ? result.data : null;
    };
    return { embedding_model: field('embedding_model'), entity_model: field('entity_model'), rerank_model: field('rerank_model') };
  }

  updateMemorySettings(patch: Partial<MemorySettings>): MemorySettings {
    const checked = MemorySettings.partial().safeParse(patch);
    if (!checked.success)
      throw new InvalidRequestError(`Invalid memory settings: ${checked.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
    return this.transaction(() => {
      const next: MemorySettings = { ...this.getMemorySettings() };
      for (const [name, value] of Object.entries(checked.data) as [keyof MemorySettings, string | null | undefined][]) {
        if (value !== undefined) next[name] = value;
      }
      this.setSetting(memorySettingsKey, JSON.stringify(next));
      return next;
    });
  }

  putResponse(entry: StoredResponse, limits: { maxRows: number }): void {
    // A cap below one would evict the response being stored (and a fraction would reach SQLite as a real OFFSET).
    if (!Number.isSafeInteger(limits.maxRows) || limits.maxRows < 1) throw new RangeError(`maxRows must be a positive integer, not ${limits.maxRows}`);
    this.transaction(() => {
      // An upsert, not INSERT OR REPLACE: the row keeps its rowid, so a replaced response keeps its
      // place among responses created in the same millisecond.
      this.sql(
        `INSERT INTO responses (id, created_at, expires_at, response, input_items, conversation) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at, response = excluded.response,
             input_items = excluded.input_items, conversation = excluded.conversation`,
      ).run(entry.id, entry.createdAt, entry.expiresAt, entry.response, entry.inputItems, entry.conversation);
      this.pruneResponses();
      // Newest first along responses_by_age (whose keys end in the rowid, so no sort): the rows past
      // the first maxRows are the oldest beyond the cap. This walks maxRows entries of the covering
      // index (about 70 µs at 10,000, linear in the cap), never the table's JSON, and deletes one
      // row per put at the cap; SQLite keeps no row count, so a count(*) would walk as far.
      this.sql('DELETE FROM responses WHERE rowid IN (SELECT rowid FROM responses ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)').run(limits.maxRows);
    });
  }

  getResponse(id: string, now: number = this.now()): StoredResponse | undefined {
    // An expired row may still be on disk until the next put or prune: it is gone all the same.
    const row = this.sql('SELECT * FROM responses WHERE id = ? AND expires_at > ?').get(id, now) as ResponseRow | undefined;
    return row === undefined ? undefined : rowToResponse(row);
  }

  deleteResponse(id: string): boolean {
    // The row goes either way, but deleting an expired response answers false, as getResponse
    // already said it was not there (DELETE /v1/responses/{id} then answers 404, not 200).
    const expiresAt = this.sql('DELETE FROM responses WHERE id = ? RETURNING expires_at').pluck().get(id) as number | undefined;
    return expiresAt !== undefined && expiresAt > this.now();
  }

  pruneResponses(now: number = this.now()): number {
    return this.sql('DELETE FROM responses WHERE expires_at <= ?').run(now).changes;
  }
}

/** Opens (creating and migrating as needed) the SQLite memory store. */
export function createStorage(options: StorageOptions): Storage {
  return new SqliteStorage(options);
}
