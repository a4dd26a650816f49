import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPairingStore, defaultPairingTtlSeconds, maxActivePairings } from '@tabagent/services';

let root: string;
let clock: number;
const now = () => new Date(clock);

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'pairing-store-'));
  clock = Date.parse('2026-12-07T12:00:00.000Z');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

it('gives a token 30 days by default, and stops verifying it after', () => {
  const store = createPairingStore(root, now);
  const minted = store.create({ label: 'app', scope: 'chat' });
  expect(defaultPairingTtlSeconds).toBe(30 * 24 * 3600);
  expect(minted.expires_at).toBe('2027-01-06T12:00:00.000Z');
  clock += defaultPairingTtlSeconds * 1000 - 1;
  expect(store.verify(minted.token)).toEqual({ id: minted.id, scope: 'chat', origin: '*' });
  clock += 1;
  expect(store.verify(minted.token)).toBeNull();
  expect(store.isActive(minted.id)).toBe(false);
});

it('keeps at most 256 active tokens: the next is refused with 429 until one expires, and expired ones are dropped', () => {
  const store = createPairingStore(root, now);
  const first = store.create({ label: 'short', scope: 'chat', ttlSeconds: 60 });
  for (let index = 1; index < maxActivePairings; index += 1) store.create({ label: `app ${index}`, scope: 'chat' });
  let refusal: unknown;
  try {
    store.create({ label: 'one more', scope: 'full' });
  } catch (error) {
    refusal = error;
  }
  expect(refusal).toMatchObject({ code: 'rate_limited', message: '256 pairing tokens are active; revoke one (pairing.revoke) before minting another' });
  clock += 60_000;
  const next = store.create({ label: 'one more', scope: 'full' });
  expect(store.list()).toHaveLength(maxActivePairings);
  expect(store.list().map((entry) => entry.id)).not.toContain(first.id);
  expect(store.verify(next.token)).toEqual({ id: next.id, scope: 'full', origin: '*' });
});

it('writes the file whole (owner-only, no temporary left) and reads it back, without the tokens', () => {
  const store = createPairingStore(root, now);
  const minted = store.create({ label: 'app', scope: 'full', origin: 'http://localhost:5173' });
  expect(readdirSync(root)).toEqual(['pairings.json']);
  expect((statSync(path.join(root, 'pairings.json')).mode & 0o777).toString(8)).toBe('600');
  expect(readFileSync(path.join(root, 'pairings.json'), 'utf8')).not.toContain(minted.token);
  const reopened = createPairingStore(root, now);
  expect(reopened.verify(minted.token)).toEqual({ id: minted.id, scope: 'full', origin: 'http://localhost:5173' });
  expect(reopened.revoke(minted.id)).toBe(true);
  expect(createPairingStore(root, now).verify(minted.token)).toBeNull();
});

it('reads a token recorded before origins were (no origin field) as working from any origin', () => {
  const store = createPairingStore(root, now);
  const minted = store.create({ label: 'old', scope: 'chat' });
  const file = path.join(root, 'pairings.json');
  const stored = JSON.parse(readFileSync(file, 'utf8')) as { pairings: Record<string, unknown>[] };
  for (const entry of stored.pairings) delete entry['origin'];
  writeFileSync(file, JSON.stringify(stored));
  expect(createPairingStore(root, now).verify(minted.token)).toEqual({ id: minted.id, scope: 'chat', origin: '*' });
});
