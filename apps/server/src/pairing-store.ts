import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PairingGrant, PairingVerifier } from '@tabagent/api';
import { safeParseJson } from '@tabagent/values';

interface StoredPairing {
  id: string;
  label: string;
  scope: 'chat' | 'full';
  /** sha256 of the token: the token itself is never stored. */
  hash: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

/** A pairing as listed (no token, no hash). */
export type PairingInfo = Omit<StoredPairing, 'hash'>;

/** Pairing tokens of a data directory (`pairings.json`, mode 0600). */
export interface PairingStore extends PairingVerifier {
  create(options: { label: string; scope: 'chat' | 'full'; ttlSeconds?: number | undefined }): PairingInfo & { token: string };
  list(): PairingInfo[];
  revoke(id: string): boolean;
  /** Whether the pairing with this id still exists and has not expired. */
  isActive(id: string): boolean;
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('hex');
const infoOf = ({ hash: _hash, ...info }: StoredPairing): PairingInfo => info;

/** Opens the store; tokens are `tap_` plus 32 random bytes (base64url), checked by their hash. */
export function createPairingStore(dataDir: string, now: () => Date = () => new Date()): PairingStore {
  const file = path.join(dataDir, 'pairings.json');
  const read = (): StoredPairing[] => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    const parsed = safeParseJson(text);
    const entries = parsed.success ? (parsed.value as { pairings?: unknown } | null)?.pairings : undefined;
    return Array.isArray(entries) ? (entries as StoredPairing[]).filter((entry) => typeof entry.hash === 'string' && typeof entry.id === 'string') : [];
  };
  let pairings = read();
  const write = (): void => {
    writeFileSync(file, `${JSON.stringify({ pairings }, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  };
  let lastWrite = 0;
  return {
    create({ label, scope, ttlSeconds }) {
      const token = `tap_${randomBytes(32).toString('base64url')}`;
      const created = now();
      const entry: StoredPairing = {
        id: randomUUID(),
        label,
        scope,
        hash: hashOf(token),
        created_at: created.toISOString(),
        expires_at: ttlSeconds === undefined ? null : new Date(created.getTime() + ttlSeconds * 1000).toISOString(),
        last_used_at: null,
      };
      pairings = [...pairings, entry];
      write();
      return { ...infoOf(entry), token };
    },
    list: () => pairings.map(infoOf),
    isActive(id) {
      const entry = pairings.find((candidate) => candidate.id === id);
      return entry !== undefined && (entry.expires_at === null || Date.parse(entry.expires_at) > now().getTime());
    },
    revoke(id) {
      const before = pairings.length;
      pairings = pairings.filter((entry) => entry.id !== id);
      if (pairings.length === before) return false;
      write();
      return true;
    },
    verify(token): PairingGrant | null {
      const hash = hashOf(token);
      const entry = pairings.find((candidate) => candidate.hash === hash);
      const at = now();
      if (!entry || (entry.expires_at !== null && Date.parse(entry.expires_at) <= at.getTime())) return null;
      entry.last_used_at = at.toISOString();
      // Last use is advisory: written at most once a minute, not on every request.
      if (at.getTime() - lastWrite > 60_000) {
        lastWrite = at.getTime();
        write();
      }
      return { id: entry.id, scope: entry.scope };
    },
  };
}
