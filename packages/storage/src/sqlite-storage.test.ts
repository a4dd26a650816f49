import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { defaultTierPolicy } from '@tabagent/values';
import { createStorage } from './sqlite-storage.js';
import { currentSchemaVersion, latestSchemaVersion, migrate } from './migrations.js';
import type { Storage } from './storage-types.js';

const day = 86_400_000;
let dir: string;
let clock: number;
let storage: Storage;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'storage-test-'));
  clock = 1_700_000_000_000;
  storage = createStorage({ path: join(dir, 'tabagent.db'), now: () => clock });
});
afterEach(() => {
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

function tick(ms = 1): number {
  clock += ms;
  return clock;
}

describe('createStorage', () => {
  it('opens the file in WAL mode with foreign keys and FULL synchronous', () => {
    storage.close();
    const db = new Database(join(dir, 'tabagent.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    storage = createStorage({ path: join(dir, 'tabagent.db'), now: () => clock });
    expect(storage.schemaVersion).toBe(latestSchemaVersion);
  });

  it('round-trips every node kind', () => {
    const chat = storage.createNode({ kind: 'chat', id: 'c1', title: 'Trip', props: { user_id: 'u1', topic: 'travel' } });
    const message = storage.createNode({ kind: 'message', id: 'm1', chat_id: 'c1', text: 'hello', props: { role: 'user' }, metadata: { a: 1 } });
    const summary = storage.createNode({ kind: 'summary', chat_id: 'c1', text: 'sum', props: { message_ids: ['m1'] } });
    const attachment = storage.createNode({
      kind: 'attachment',
      chat_id: 'c1',
      props: { message_id: 'm1', mime_type: 'image/png', filename: 'a.png', size_bytes: 3 },
    });
    const entity = storage.createNode({ kind: 'entity', title: 'Paris', props: { entity_type: 'LOC', normalized: 'paris' } });
    const page = storage.createNode({ kind: 'webpage', url: 'https://x.test/', title: 'X', text: 'page', props: { captured_at: 5 } });
    const doc = storage.createNode({ kind: 'document', title: 'D', text: 'doc', props: {} });
    const chunk = storage.createNode({ kind: 'document_chunk', text: 'chunk', props: { document_id: doc.id, chunk_index: 0 } });
    const bookmark = storage.createNode({ kind: 'bookmark', url: 'https://b.test/', title: 'B', props: { tags: ['t'] } });
    for (const node of [chat, message, summary, attachment, entity, page, doc, chunk, bookmark]) {
      expect(storage.getNode(node.id)).toEqual(node);
    }
    expect(chat).toMatchObject({ props: { user_id: 'u1', topic: 'travel', domain: null }, tier: 'active', created_at: clock });
    expect(message).toMatchObject({ props: { role: 'user', name: null }, metadata: { a: 1 } });
    expect(bookmark.props).toEqual({ description: null, tags: ['t'] });
    expect(storage.countByKind()).toEqual({
      chat: 1,
      message: 1,
      summary: 1,
      attachment: 1,
      entity: 1,
      webpage: 1,
      document: 1,
      document_chunk: 1,
      bookmark: 1,
    });
  });

  it('rejects a message for an unknown chat and invalid props', () => {
    expect(() => storage.createNode({ kind: 'message', chat_id: 'nope', text: 'x', props: { role: 'user' } })).toThrow(
      expect.objectContaining({ code: 'not_found' }),
    );
    expect(() => storage.createNode({ kind: 'message', text: 'x', props: { role: 'robot' as 'user' } })).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    );
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    expect(() => storage.createNode({ kind: 'chat', id: 'c', props: {} })).toThrow(expect.objectContaining({ code: 'conflict' }));
  });

  it('updates a node and re-queues indexing only when its text changes', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    storage.createNode({ kind: 'message', id: 'm', chat_id: 'c', text: 'one', props: { role: 'user' } });
    tick();
    const updated = storage.updateNode('m', { text: 'two' });
    expect(updated).toMatchObject({ text: 'two', updated_at: clock });
    storage.updateNode('m', { metadata: { seen: true } });
    expect(storage.listOutbox().map((item) => item.payload)).toEqual([
      { kind: 'index-message', node_id: 'm' },
      { kind: 'index-message', node_id: 'm' },
    ]);
    expect(() => storage.updateNode('missing', { text: 'x' })).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('writes the outbox item in the same transaction as the data', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    expect(() =>
      storage.transaction(() => {
        storage.createNode({ kind: 'message', id: 'm', chat_id: 'c', text: 'x', props: { role: 'user' } });
        throw new Error('abort');
      }),
    ).toThrow('abort');
    expect(storage.getNode('m')).toBeUndefined();
    expect(storage.listOutbox()).toEqual([]);
  });

  it('paginates a chat oldest first with cursors', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    for (let i = 0; i < 7; i += 1)
      storage.createNode({ kind: 'message', id: `m${i}`, chat_id: 'c', text: `t${i}`, props: { role: 'user' }, created_at: 1000 + Math.floor(i / 2) });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = storage.listByChat('c', { limit: 3, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
      pages += 1;
    } while (cursor !== undefined);
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    expect(pages).toBe(3);
    expect(() => storage.listByChat('c', { cursor: 'garbage' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it('keeps insertion order for messages written in the same millisecond, in one transaction or many', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    // Random ids (the default) used to decide the order of same-millisecond rows.
    const batch = storage.transaction(() =>
      Array.from({ length: 200 }, (_, i) => storage.createNode({ kind: 'message', chat_id: 'c', text: `batch ${i}`, props: { role: 'user' } }).id),
    );
    const single = Array.from(
      { length: 200 },
      (_, i) => storage.createNode({ kind: 'message', chat_id: 'c', text: `single ${i}`, props: { role: 'user' } }).id,
    );
    const listed: string[] = [];
    let cursor: string | undefined;
    do {
      const page = storage.listByChat('c', { limit: 37, ...(cursor === undefined ? {} : { cursor }) });
      listed.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    expect(listed).toEqual([...batch, ...single]);
  });

  it('stamps a new message no earlier than the newest of its chat when the clock steps back', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    storage.createNode({ kind: 'message', id: 'first', chat_id: 'c', text: 'a', props: { role: 'user' } });
    clock -= 60_000;
    const second = storage.createNode({ kind: 'message', id: 'second', chat_id: 'c', text: 'b', props: { role: 'assistant' } });
    expect(second.created_at).toBe(clock + 60_000);
    // A time the caller gives is kept as it is: it is the user's data.
    storage.createNode({ kind: 'message', id: 'imported', chat_id: 'c', text: 'c', props: { role: 'user' }, created_at: 1 });
    expect(storage.listByChat('c').items.map((node) => node.id)).toEqual(['imported', 'first', 'second']);
  });

  it('lists nodes updated since a time in conversation order, so a sync round trip keeps the order', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    const ids = Array.from(
      { length: 50 },
      (_, i) => storage.createNode({ kind: 'message', chat_id: 'c', text: `m ${i}`, props: { role: i % 2 === 0 ? 'user' : 'assistant' } }).id,
    );
    // An edit later than the rest must not move the message.
    tick();
    storage.updateNode(ids[3] as string, { text: 'edited' });
    const pulled = storage.listUpdatedSince(['chat', 'message'], 0);
    const other = createStorage({ path: join(dir, 'other.db'), now: () => clock });
    other.mergeNodes(pulled.map((node) => ({ ...node, props: node.props as never })));
    expect(other.listByChat('c').items.map((node) => node.id)).toEqual(ids);
    other.close();
  });

  it('lists chats newest first per user with cursors', () => {
    for (let i = 0; i < 5; i += 1) {
      tick();
      storage.createNode({ kind: 'chat', id: `c${i}`, title: `chat ${i}`, props: { user_id: i % 2 === 0 ? 'a' : 'b' } });
    }
    const first = storage.listChats({ limit: 2 });
    expect(first.items.map((chat) => chat.id)).toEqual(['c4', 'c3']);
    const second = storage.listChats({ limit: 2, cursor: first.nextCursor ?? '' });
    expect(second.items.map((chat) => chat.id)).toEqual(['c2', 'c1']);
    expect(storage.listChats({ userId: 'a' }).items.map((chat) => chat.id)).toEqual(['c4', 'c2', 'c0']);
  });

  it('deleting a chat cascades to messages and edges and queues index deletion', async () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    storage.createNode({ kind: 'message', id: 'm1', chat_id: 'c', text: 'a', props: { role: 'user' } });
    storage.createNode({ kind: 'message', id: 'm2', chat_id: 'c', text: 'b', props: { role: 'assistant' } });
    storage.createNode({ kind: 'entity', id: 'e', title: 'E', props: { entity_type: 'X', normalized: 'e' } });
    storage.createEdge({ type: 'MENTIONS', from_id: 'm1', to_id: 'e' });
    storage.createEdge({ type: 'CONTAINS', from_id: 'c', to_id: 'm1' });
    const deleted = storage.deleteNode('c');
    expect(deleted.sort()).toEqual(['c', 'm1', 'm2']);
    expect(storage.getNode('m1')).toBeUndefined();
    expect(storage.getNode('e')).toBeDefined();
    expect(storage.edgesOf('e')).toEqual([]);
    const last = storage.listOutbox().at(-1);
    expect(last?.payload.kind).toBe('delete-index');
    expect(last?.payload.kind === 'delete-index' ? [...last.payload.node_ids].sort() : []).toEqual(['c', 'm1', 'm2']);
    expect(await storage.searchChats('a')).toEqual([]);
  });

  it('finds neighbours by edge type and direction; re-creating an edge updates it', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    storage.createNode({ kind: 'message', id: 'm', chat_id: 'c', text: 'a', props: { role: 'user' } });
    storage.createNode({ kind: 'entity', id: 'e', title: 'E', props: { entity_type: 'X', normalized: 'e' } });
    storage.createEdge({ type: 'MENTIONS', from_id: 'm', to_id: 'e', weight: 0.5 });
    const again = storage.createEdge({ type: 'MENTIONS', from_id: 'm', to_id: 'e', weight: 0.9 });
    storage.createEdge({ type: 'CONTAINS', from_id: 'c', to_id: 'm' });
    expect(storage.edgesOf('m')).toHaveLength(2);
    expect(storage.neighbours('m', { types: ['MENTIONS'] }).map((n) => [n.node.id, n.edge.weight])).toEqual([['e', 0.9]]);
    expect(storage.neighbours('m', { direction: 'in' }).map((n) => n.node.id)).toEqual(['c']);
    expect(storage.deleteEdge(again.id)).toBe(true);
    expect(() => storage.createEdge({ type: 'MENTIONS', from_id: 'm', to_id: 'ghost' })).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('searches chats by words in title, topic and messages', async () => {
    storage.createNode({ kind: 'chat', id: 'c1', title: 'Cooking', props: { topic: 'pasta recipes' } });
    storage.createNode({ kind: 'chat', id: 'c2', title: 'Travel', props: { user_id: 'u2' } });
    storage.createNode({ kind: 'message', chat_id: 'c2', text: 'The best pasta in Rome', props: { role: 'user' } });
    storage.createNode({ kind: 'chat', id: 'c3', title: 'Other', props: {} });
    expect((await storage.searchChats('pasta')).map((hit) => hit.chat.id).sort()).toEqual(['c1', 'c2']);
    expect((await storage.searchChats('rome')).map((hit) => hit.chat.id)).toEqual(['c2']);
    expect((await storage.searchChats('pasta', { userId: 'u2' })).map((hit) => hit.chat.id)).toEqual(['c2']);
    expect(await storage.searchChats('"unbalanced OR NEAR(')).toEqual([]);
    expect(await storage.searchChats('  ')).toEqual([]);
  });

  it('searches on its own read connection, which sees every commit made before the call', async () => {
    storage.createNode({ kind: 'chat', id: 'c', title: 'Notes', props: {} });
    const searches: Promise<string[]>[] = [];
    for (let i = 0; i < 20; i++) {
      storage.createNode({ kind: 'message', id: `m${i}`, chat_id: 'c', text: `word${i} here`, props: { role: 'user' } });
      searches.push(storage.searchUnindexed(`word${i}`, { limit: 5 }).then((hits) => hits.map((hit) => hit.node.id)));
    }
    expect(await Promise.all(searches)).toEqual(Array.from({ length: 20 }, (_, i) => [`m${i}`]));
    expect((await storage.searchChats('here')).map((hit) => hit.chat.id)).toEqual(['c']);
    storage.close();
    await expect(storage.searchChats('here')).rejects.toThrow('The storage is closed');
  });

  it('searches an in-memory database on its own connection (nothing else can open it)', async () => {
    const memory = createStorage({ path: ':memory:', now: () => clock });
    try {
      memory.createNode({ kind: 'chat', id: 'c', title: 'Pasta', props: {} });
      expect((await memory.searchChats('pasta')).map((hit) => hit.chat.id)).toEqual(['c']);
    } finally {
      memory.close();
    }
  });

  it('merges pushed nodes with last write wins on updated_at', () => {
    storage.createNode({ kind: 'chat', id: 'c', title: 'server', props: {}, updated_at: 2000 });
    const result = storage.mergeNodes([
      { kind: 'message', id: 'm', chat_id: 'c', text: 'new', props: { role: 'user' }, updated_at: 3000 },
      { kind: 'chat', id: 'c', title: 'older client', props: {}, updated_at: 1000 },
      { kind: 'chat', id: 'c2', title: 'fresh', props: {}, updated_at: 1500 },
    ]);
    expect(result).toEqual({ synced: 2, skipped: 1 });
    expect(storage.getNode('c')?.title).toBe('server');
    expect(storage.getNode('m')?.text).toBe('new');
    // Conversation order (created_at, then insertion): c was created before c2.
    expect(storage.listUpdatedSince(['chat'], 1400).map((node) => node.id)).toEqual(['c', 'c2']);
    expect(storage.listUpdatedSince(['chat'], 1600).map((node) => node.id)).toEqual(['c']);
    expect(storage.mergeNodes([{ kind: 'message', id: 'm', chat_id: 'c', props: { role: 'user' }, updated_at: 4000, deleted: true }])).toEqual({
      synced: 1,
      skipped: 0,
    });
    expect(storage.getNode('m')).toBeUndefined();
  });

  it('computes tiers by age and queues tier updates for indexed nodes', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    storage.createNode({ kind: 'message', id: 'm', chat_id: 'c', text: 'x', props: { role: 'user' } });
    expect(storage.updateTiers()).toBe(0);
    tick(defaultTierPolicy.activeMs + 1);
    expect(storage.updateTiers()).toBe(2);
    expect(storage.getNode('m')?.tier).toBe('recent');
    tick(defaultTierPolicy.recentMs);
    expect(storage.updateTiers()).toBe(2);
    expect(storage.getNode('c')?.tier).toBe('archive');
    expect(
      storage
        .listOutbox()
        .filter((item) => item.payload.kind === 'update-tier')
        .map((item) => item.payload),
    ).toEqual([
      { kind: 'update-tier', tier: 'recent', node_ids: ['m'] },
      { kind: 'update-tier', tier: 'archive', node_ids: ['m'] },
    ]);
    expect(day).toBe(86_400_000);
  });

  it('reads the outbox and node counts as one snapshot on the read worker, with a version that moves on every write', async () => {
    storage.createNode({ kind: 'chat', id: 'c', title: 'Chat', props: {} });
    storage.createNode({ kind: 'message', id: 'm1', chat_id: 'c', text: 'one', props: { role: 'user' } });
    const first = storage.contentVersion();
    expect(storage.contentVersion()).toBe(first);
    const snapshot = await storage.memorySnapshot();
    expect(snapshot).toEqual({ outbox: storage.outboxStats(), counts: storage.countByKind() });
    expect(snapshot.counts).toEqual({ chat: 1, message: 1 });
    expect(snapshot.outbox).toMatchObject({ pending: 1, unindexed: 1, oldest_open_at: clock });
    storage.createNode({ kind: 'message', id: 'm2', chat_id: 'c', text: 'two', props: { role: 'user' } });
    expect(storage.contentVersion()).not.toBe(first);
    expect((await storage.memorySnapshot()).counts).toEqual({ chat: 1, message: 2 });
  });

  it('prunes done outbox items in bounded statements', () => {
    const ids = Array.from({ length: 2500 }, (_, index) => storage.enqueue({ kind: 'index-message', node_id: `n${index}` }));
    for (const id of ids) storage.completeOutbox(id);
    tick(10 * day);
    expect(storage.pruneOutbox(7 * day, 1000)).toBe(1000);
    expect(storage.pruneOutbox(7 * day)).toBe(1500);
    expect(storage.outboxStats().done).toBe(0);
  });

  it('leases, retries, dead-letters and releases outbox items', () => {
    const a = storage.enqueue({ kind: 'index-message', node_id: 'a' });
    const b = storage.enqueue({ kind: 'index-message', node_id: 'b' });
    expect(storage.claimOutbox(10).map((item) => item.id)).toEqual([a, b]);
    expect(storage.claimOutbox(10)).toEqual([]);
    storage.failOutbox(a, 'boom', { dead: false, retryAt: clock + 100 });
    storage.completeOutbox(b);
    expect(storage.claimOutbox(10)).toEqual([]);
    tick(100);
    const [retry] = storage.claimOutbox(10);
    expect(retry).toMatchObject({ id: a, attempts: 1, last_error: 'boom' });
    storage.failOutbox(a, 'boom twice', { dead: true, retryAt: clock });
    expect(storage.outboxStats()).toEqual({ pending: 0, in_progress: 0, done: 1, dead: 1, last_error: 'boom twice', unindexed: 0, oldest_open_at: null });
    const c = storage.enqueue({ kind: 'delete-index', node_ids: ['x'] });
    storage.claimOutbox(1);
    expect(storage.releaseExpiredLeases(1000)).toBe(0);
    tick(1000);
    expect(storage.releaseExpiredLeases(1000)).toBe(1);
    expect(storage.claimOutbox(5).map((item) => item.id)).toEqual([c]);
  });

  it('stores settings', () => {
    expect(storage.getSetting('k')).toBeUndefined();
    storage.setSetting('k', 'v1');
    storage.setSetting('k', 'v2');
    expect(storage.getSetting('k')).toBe('v2');
  });

  it('owns the memory settings: typed, null by default, partial updates, null clears, bad values refused', () => {
    expect(storage.getMemorySettings()).toEqual({ embedding_model: null, entity_model: null, rerank_model: null });
    expect(storage.updateMemorySettings({ entity_model: 'ner', rerank_model: 'rr' })).toEqual({
      embedding_model: null,
      entity_model: 'ner',
      rerank_model: 'rr',
    });
    expect(storage.updateMemorySettings({ embedding_model: 'emb' })).toEqual({ embedding_model: 'emb', entity_model: 'ner', rerank_model: 'rr' });
    expect(storage.updateMemorySettings({ entity_model: null })).toEqual({ embedding_model: 'emb', entity_model: null, rerank_model: 'rr' });
    expect(() => storage.updateMemorySettings({ rerank_model: '' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    storage.close();
    storage = createStorage({ path: join(dir, 'tabagent.db'), now: () => clock });
    expect(storage.getMemorySettings()).toEqual({ embedding_model: 'emb', entity_model: null, rerank_model: 'rr' });
    // A damaged value loses only itself.
    storage.setSetting('memory.settings', JSON.stringify({ embedding_model: 'emb', entity_model: 42, rerank_model: 'rr' }));
    expect(storage.getMemorySettings()).toEqual({ embedding_model: 'emb', entity_model: null, rerank_model: 'rr' });
    storage.setSetting('memory.settings', '{not json');
    expect(storage.getMemorySettings()).toEqual({ embedding_model: null, entity_model: null, rerank_model: null });
  });

  it('survives reopening the file', () => {
    storage.createNode({ kind: 'chat', id: 'c', title: 'kept', props: {} });
    storage.close();
    storage = createStorage({ path: join(dir, 'tabagent.db'), now: () => clock });
    expect(storage.getNode('c')?.title).toBe('kept');
  });
});

describe('migrations', () => {
  it('migrates an empty database to the latest version', () => {
    const db = new Database(':memory:');
    expect(currentSchemaVersion(db)).toBe(0);
    expect(migrate(db)).toEqual([1, 2, 3, 4, 5]);
    expect(currentSchemaVersion(db)).toBe(latestSchemaVersion);
    expect(migrate(db)).toEqual([]);
    db.close();
  });

  /** A database file at an older schema version, written with that version's own SQL. */
  function databaseAt(version: number, path: string, rows: (db: Database.Database) => void): void {
    const db = new Database(path);
    expect(migrate(db, version)).toEqual(Array.from({ length: version }, (_, index) => index + 1));
    rows(db);
    db.close();
  }

  it('upgrades a version-1 database with data, indexing existing rows for search', async () => {
    const path = join(dir, 'old.db');
    databaseAt(1, path, (db) => {
      db.prepare(
        "INSERT INTO nodes (id, kind, title, props, created_at, updated_at) VALUES ('c', 'chat', 'Old chat', '{\"topic\":\"gardening\"}', 1, 1)",
      ).run();
    });
    const upgraded = createStorage({ path, now: () => clock });
    expect(upgraded.schemaVersion).toBe(latestSchemaVersion);
    expect(upgraded.getNode('c')?.title).toBe('Old chat');
    expect((await upgraded.searchChats('gardening')).map((hit) => hit.chat.id)).toEqual(['c']);
    upgraded.close();
  });

  it('upgrades a version-2 database keeping the insertion order of messages written in the same millisecond', () => {
    const path = join(dir, 'v2.db');
    databaseAt(2, path, (db) => {
      db.prepare("INSERT INTO nodes (id, kind, props, created_at, updated_at) VALUES ('c', 'chat', '{}', 5, 5)").run();
      const insert = db.prepare(
        "INSERT INTO nodes (id, kind, chat_id, text, props, created_at, updated_at) VALUES (?, 'message', 'c', ?, '{\"role\":\"user\"}', 5, 5)",
      );
      for (const id of ['z', 'a', 'm']) insert.run(id, `text ${id}`);
    });
    const upgraded = createStorage({ path, now: () => 5 });
    upgraded.createNode({ kind: 'message', id: 'b', chat_id: 'c', text: 'after', props: { role: 'assistant' } });
    expect(upgraded.listByChat('c').items.map((node) => node.id)).toEqual(['z', 'a', 'm', 'b']);
    upgraded.close();
  });

  it('upgrades the memory settings of a version-3 database from their two old formats', () => {
    const path = join(dir, 'v3.db');
    databaseAt(3, path, (db) => {
      const insert = db.prepare('INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 7)');
      // The weaver wrote the embedding model raw; the settings route wrote the others as JSON text.
      insert.run('memory.embedding_model', 'tiny-embedder');
      insert.run('memory.entity_model', '"ner-model"');
      insert.run('memory.rerank_model', 'null');
      insert.run('unrelated', 'kept');
    });
    const upgraded = createStorage({ path, now: () => clock });
    expect(upgraded.getMemorySettings()).toEqual({ embedding_model: 'tiny-embedder', entity_model: 'ner-model', rerank_model: null });
    expect([upgraded.getSetting('memory.embedding_model'), upgraded.getSetting('memory.entity_model'), upgraded.getSetting('unrelated')]).toEqual([
      undefined,
      undefined,
      'kept',
    ]);
    upgraded.close();
    const fresh = join(dir, 'v3-empty.db');
    databaseAt(3, fresh, () => undefined);
    const empty = createStorage({ path: fresh, now: () => clock });
    expect([empty.getSetting('memory.settings'), empty.getMemorySettings()]).toEqual([
      undefined,
      { embedding_model: null, entity_model: null, rerank_model: null },
    ]);
    empty.close();
  });

  it('refuses a database newer than the code', () => {
    const db = new Database(join(dir, 'future.db'));
    migrate(db);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('future');
    db.close();
    expect(() => createStorage({ path: join(dir, 'future.db') })).toThrow('newer than this build supports');
  });
});
