import type Database from 'better-sqlite3';

/** One schema step. Versions are consecutive from 1; applied steps are recorded in `schema_migrations`. */
export interface Migration {
  version: number;
  name: string;
  up: string;
}

/** Every schema step, oldest first. Never edit a released step: add a new one. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'nodes-edges-outbox-settings',
    up: `
      CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        chat_id TEXT REFERENCES nodes(id) ON DELETE CASCADE,
        title TEXT,
        text TEXT NOT NULL DEFAULT '',
        url TEXT,
        props TEXT NOT NULL DEFAULT '{}',
        metadata TEXT NOT NULL DEFAULT '{}',
        tier TEXT NOT NULL DEFAULT 'active',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX nodes_by_chat ON nodes(chat_id, created_at, id);
      CREATE INDEX nodes_by_kind ON nodes(kind, updated_at, id);
      CREATE INDEX nodes_by_url ON nodes(url);
      CREATE TABLE edges (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        from_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        to_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        weight REAL,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        UNIQUE (type, from_id, to_id)
      );
      CREATE INDEX edges_from ON edges(from_id, type);
      CREATE INDEX edges_to ON edges(to_id, type);
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        leased_at INTEGER,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX outbox_ready ON outbox(status, next_attempt_at, id);
      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
    `,
  },
  {
    version: 2,
    name: 'full-text-search',
    // A standalone FTS5 table (not external-content) so the chat topic, which lives in props,
    // can be indexed beside the title; its rowid mirrors nodes.rowid so triggers stay O(1).
    up: `
      CREATE VIRTUAL TABLE nodes_fts USING fts5(
        node_id UNINDEXED, chat_id UNINDEXED, kind UNINDEXED, title, text,
        tokenize = 'unicode61 remove_diacritics 2'
      );
      CREATE TRIGGER nodes_fts_insert AFTER INSERT ON nodes BEGIN
        INSERT INTO nodes_fts(rowid, node_id, chat_id, kind, title, text)
        VALUES (new.rowid, new.id, new.chat_id, new.kind,
                coalesce(new.title, '') || ' ' || coalesce(json_extract(new.props, '$.topic'), ''), new.text);
      END;
      CREATE TRIGGER nodes_fts_delete AFTER DELETE ON nodes BEGIN
        DELETE FROM nodes_fts WHERE rowid = old.rowid;
      END;
      CREATE TRIGGER nodes_fts_update AFTER UPDATE OF title, text, props, chat_id ON nodes BEGIN
        DELETE FROM nodes_fts WHERE rowid = old.rowid;
        INSERT INTO nodes_fts(rowid, node_id, chat_id, kind, title, text)
        VALUES (new.rowid, new.id, new.chat_id, new.kind,
                coalesce(new.title, '') || ' ' || coalesce(json_extract(new.props, '$.topic'), ''), new.text);
      END;
      INSERT INTO nodes_fts(rowid, node_id, chat_id, kind, title, text)
        SELECT rowid, id, chat_id, kind, coalesce(title, '') || ' ' || coalesce(json_extract(props, '$.topic'), ''), text FROM nodes;
    `,
  },
  {
    version: 3,
    name: 'node-insertion-sequence',
    // Rows written in the same millisecond used to tie on created_at and fall back to their random
    // ids, which scrambled a batch of saved messages. `seq` is the insertion order, assigned by
    // storage and never changed by an update; existing rows keep the order they were inserted in
    // (rowid). Ordered lists sort by (time, seq) and their cursors carry seq.
    up: `
      ALTER TABLE nodes ADD COLUMN seq INTEGER;
      UPDATE nodes SET seq = rowid;
      CREATE UNIQUE INDEX nodes_by_seq ON nodes(seq);
      DROP INDEX nodes_by_chat;
      CREATE INDEX nodes_by_chat ON nodes(chat_id, created_at, seq);
      DROP INDEX nodes_by_kind;
      CREATE INDEX nodes_by_kind ON nodes(kind, updated_at, seq);
    `,
  },
  {
    version: 4,
    name: 'memory-settings-document',
    // The three memory model settings were written in two formats (the embedding model as raw
    // text, the entity and rerank models as JSON text), and readers of the raw format saw quotes.
    // They become one JSON document with one typed accessor (`getMemorySettings`).
    up: `
      INSERT INTO settings (key, value, updated_at)
        SELECT 'memory.settings',
               json_object(
                 'embedding_model', (SELECT value FROM settings WHERE key = 'memory.embedding_model'),
                 'entity_model', (SELECT CASE WHEN json_valid(value) AND json_type(value) = 'text' THEN json_extract(value, '$') END FROM settings WHERE key = 'memory.entity_model'),
                 'rerank_model', (SELECT CASE WHEN json_valid(value) AND json_type(value) = 'text' THEN json_extract(value, '$') END FROM settings WHERE key = 'memory.rerank_model')
               ),
               max(updated_at)
        FROM settings WHERE key IN ('memory.embedding_model', 'memory.entity_model', 'memory.rerank_model')
        HAVING count(*) > 0;
      DELETE FROM settings WHERE key IN ('memory.embedding_model', 'memory.entity_model', 'memory.rerank_model');
    `,
  },
  {
    version: 5,
    name: 'responses-store',
    // Responses of the OpenAI Responses API kept with `store: true`, for `previous_response_id`
    // and GET/DELETE /v1/responses/{id}. The JSON columns are opaque text (storage never looks
    // inside). The table is bounded by age (expires_at) and by a row cap evicting the oldest
    // (created_at, then rowid): an index on each, so that neither delete of a put reads the table
    // (the expiry delete finds just its rows; the cap's walks the age index, whose keys end in the
    // rowid, the tie-break, so it needs no sort).
    up: `
      CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        response TEXT NOT NULL,
        input_items TEXT NOT NULL,
        conversation TEXT NOT NULL
      );
      CREATE INDEX responses_by_age ON responses(created_at);
      CREATE INDEX responses_by_expiry ON responses(expires_at);
    `,
  },
];

/** The newest schema version this code knows. */
export const latestSchemaVersion = migrations.length;

/**
 * Applies every step newer than the database's version, in one transaction, up to
 * `target` (default: the latest). Returns the versions applied.
 */
export function migrate(db: Database.Database, target: number = latestSchemaVersion, now: () => number = Date.now): number[] {
  // IMMEDIATE takes the write lock before reading the version, so several processes opening a new
  // file at once apply each step exactly once (the others wait on busy_timeout, then see it done).
  return db
    .transaction(() => {
      db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      const current = currentSchemaVersion(db);
      if (current > latestSchemaVersion) {
        throw new Error(`Database schema version ${current} is newer than this build supports (${latestSchemaVersion})`);
      }
      const applied: number[] = [];
      for (const step of migrations) {
        if (step.version <= current || step.version > target) continue;
        db.exec(step.up);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(step.version, step.name, now());
        applied.push(step.version);
      }
      return applied;
    })
    .immediate();
}

/** The highest applied migration version (0 for an empty database). */
export function currentSchemaVersion(db: Database.Database): number {
  const exists = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (exists === undefined) return 0;
  const row = db.prepare('SELECT max(version) AS version FROM schema_migrations').get() as { version: number | null };
  return row.version ?? 0;
}
