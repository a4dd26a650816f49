import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createStorage } from './sqlite-storage.js';
import { currentSchemaVersion, latestSchemaVersion, migrate, migrations } from './migrations.js';
import type { Storage, StoredResponse } from './storage-types.js';

const hour = 3_600_000;
let dir: string;
let path: string;
let clock: number;
let storage: Storage;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'response-store-test-'));
  path = join(dir, 'tabagent.db');
  clock = 1_700_000_000_000;
  storage = createStorage({ path, now: () => clock });
});
afterEach(() => {
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A response created `age` ms before the clock, living one hour from its creation. */
function response(id: string, age = 0, overrides: Partial<StoredResponse> = {}): StoredResponse {
  const createdAt = clock - age;
  return {
    id,
    createdAt,
    expiresAt: createdAt + hour,
    response: JSON.stringify({ id, object: 'response', output: [{ type: 'message', content: [{ type: 'output_text', text: `answer ${id}` }] }] }),
    inputItems: JSON.stringify([{ type: 'message', role: 'user', content: `question ${id}` }]),
    conversation: JSON.stringify([
      { role: 'user', content: `question ${id}` },
      { role: 'assistant', content: `answer ${id}` },
    ]),
    ...overrides,
  };
}

function storedIds(db: Storage = storage): string[] {
  return ['resp_a', 'resp_b', 'resp_c', 'resp_d', 'resp_e'].filter((id) => db.getResponse(id) !== undefined);
}

describe('response store', () => {
  it('round-trips a response with its JSON text unchanged', () => {
    const entry = response('resp_a', 0, { response: '{"id":"resp_a",  "kept":"as written"}' });
    storage.putResponse(entry, { maxRows: 10 });
    expect(storage.getResponse('resp_a')).toEqual(entry);
    expect(storage.getResponse('resp_missing')).toBeUndefined();
  });

  it('replaces a response with the same id', () => {
    storage.putResponse(response('resp_a', 10), { maxRows: 10 });
    const replacement = response('resp_a', 0, { response: '{"id":"resp_a","status":"completed"}', inputItems: '[]', conversation: '[]' });
    storage.putResponse(replacement, { maxRows: 10 });
    expect(storage.getResponse('resp_a')).toEqual(replacement);
    expect(storedIds()).toEqual(['resp_a']);
  });

  it('hides an expired response and prunes it', () => {
    storage.putResponse(response('resp_a', 0, { expiresAt: clock + 100 }), { maxRows: 10 });
    storage.putResponse(response('resp_b', 0, { expiresAt: clock + 200 }), { maxRows: 10 });
    expect(storage.getResponse('resp_a', clock + 99)?.id).toBe('resp_a');
    expect(storage.getResponse('resp_a', clock + 100)).toBeUndefined();
    expect(storage.getResponse('resp_a', clock + 101)).toBeUndefined();
    expect(storage.pruneResponses(clock + 150)).toBe(1);
    expect(storage.pruneResponses(clock + 150)).toBe(0);
    expect(storedIds()).toEqual(['resp_b']);
    // The default time is the store's clock.
    clock += 200;
    expect(storage.getResponse('resp_b')).toBeUndefined();
    expect(storage.pruneResponses()).toBe(1);
  });

  it('deletes expired responses when another is put', () => {
    storage.putResponse(response('resp_a', 0, { expiresAt: clock + 100 }), { maxRows: 10 });
    clock += 100;
    storage.putResponse(response('resp_b'), { maxRows: 10 });
    // Already gone from the table: pruning at the time of the put finds nothing left.
    expect(storage.pruneResponses(clock)).toBe(0);
    expect(storage.getResponse('resp_a', clock - 1)).toBeUndefined();
    expect(storedIds()).toEqual(['resp_b']);
  });

  it('evicts the oldest responses beyond the cap', () => {
    storage.putResponse(response('resp_b', 30), { maxRows: 3 });
    storage.putResponse(response('resp_a', 40), { maxRows: 3 });
    storage.putResponse(response('resp_c', 20), { maxRows: 3 });
    expect(storedIds()).toEqual(['resp_a', 'resp_b', 'resp_c']);
    storage.putResponse(response('resp_d', 10), { maxRows: 3 });
    // resp_a has the oldest created_at though it was put second.
    expect(storedIds()).toEqual(['resp_b', 'resp_c', 'resp_d']);
    // A smaller cap evicts down to it at the next put.
    storage.putResponse(response('resp_e', 0), { maxRows: 2 });
    expect(storedIds()).toEqual(['resp_d', 'resp_e']);
  });

  it('evicts in insertion order among responses created in the same millisecond', () => {
    for (const id of ['resp_c', 'resp_a', 'resp_b']) storage.putResponse(response(id), { maxRows: 2 });
    expect(storedIds()).toEqual(['resp_a', 'resp_b']);
    // Replacing keeps the row's place: resp_a is still the older of the two.
    storage.putResponse(response('resp_a'), { maxRows: 2 });
    storage.putResponse(response('resp_d'), { maxRows: 2 });
    expect(storedIds()).toEqual(['resp_b', 'resp_d']);
  });

  it('rejects a cap below one', () => {
    for (const maxRows of [0, -1, 1.5, Number.NaN]) {
      expect(() => storage.putResponse(response('resp_a'), { maxRows })).toThrow(RangeError);
    }
    expect(storedIds()).toEqual([]);
  });

  it('deletes a response once', () => {
    storage.putResponse(response('resp_a'), { maxRows: 10 });
    storage.putResponse(response('resp_b'), { maxRows: 10 });
    expect(storage.deleteResponse('resp_a')).toBe(true);
    expect(storage.deleteResponse('resp_a')).toBe(false);
    expect(storage.deleteResponse('resp_missing')).toBe(false);
    expect(storedIds()).toEqual(['resp_b']);
  });

  it('answers false when deleting an expired response, and removes it', () => {
    storage.putResponse(response('resp_a', 0, { expiresAt: clock + 100 }), { maxRows: 10 });
    clock += 100;
    expect(storage.deleteResponse('resp_a')).toBe(false);
    expect(storage.pruneResponses(clock)).toBe(0);
  });

  it('survives reopening the database file', async () => {
    const entry = response('resp_a');
    storage.putResponse(entry, { maxRows: 10 });
    await storage.release();
    storage = createStorage({ path, now: () => clock });
    expect(storage.getResponse('resp_a')).toEqual(entry);
  });
});

describe('responses-store migration', () => {
  const step = migrations.find((migration) => migration.name === 'responses-store');

  it('adds the responses table to a database made by the previous schema, keeping its data', async () => {
    expect(step).toBeDefined();
    const previous = (step?.version ?? 0) - 1;
    await storage.release();
    rmSync(path, { force: true });
    const db = new Database(path);
    migrate(db, previous);
    db.prepare("INSERT INTO nodes (id, kind, title, props, created_at, updated_at, seq) VALUES ('c', 'chat', 'Old chat', '{}', 1, 1, 1)").run();
    expect(currentSchemaVersion(db)).toBe(previous);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'responses'").get()).toBeUndefined();
    db.close();

    storage = createStorage({ path, now: () => clock });
    expect(storage.schemaVersion).toBe(latestSchemaVersion);
    expect(storage.getNode('c')?.title).toBe('Old chat');
    const entry = response('resp_a');
    storage.putResponse(entry, { maxRows: 10 });
    await storage.release();

    storage = createStorage({ path, now: () => clock });
    expect(storage.schemaVersion).toBe(latestSchemaVersion);
    expect(storage.getResponse('resp_a')).toEqual(entry);
    expect(storage.getNode('c')?.title).toBe('Old chat');
  });

  it('indexes the table for both deletes of a put', () => {
    const db = new Database(':memory:');
    migrate(db);
    const plan = (sql: string): string[] => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((row) => row.detail);
    expect(plan('DELETE FROM responses WHERE expires_at <= 5')).toEqual(['SEARCH responses USING INDEX responses_by_expiry (expires_at<?)']);
    // The cap's ordering comes from the index itself: no temporary sort of the table.
    expect(plan('SELECT rowid FROM responses ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET 5')).toEqual([
      'SCAN responses USING COVERING INDEX responses_by_age',
    ]);
    db.close();
  });
});
