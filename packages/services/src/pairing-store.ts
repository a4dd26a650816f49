import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PairingGrant, PairingVerifier } from '@tabagent/values';
import { RateLimitedError, safeParseJson } from '@tabagent/values';

interface StoredPairing {
  id: string;
  label: string;
  scope: 'chat' | 'full';
  /** The web origin the token works from, or `*` (any; also what files from before origins were recorded read as). */
  origin: string;
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
  create(options: { label: string; scope: 'chat' | 'full'; ttlSeconds?: number | undefined; origin?: string | undefined }): PairingInfo & {
    token: string;
  };
  list(): PairingInfo[];
  revoke(id: string): boolean;
  /** Whether the pairing with this id still exists and has not expired. */
  isActive(id: string): boolean;
}

/** Lifetime of a token minted without `ttl_seconds`: 30 days (a leaked token stops working by itself). */
export const defaultPairingTtlSeconds = 30 * 24 * 3600;
/** Unexpired tokens at once; minting another answers 429 until one is revoked or expires. */
export const maxActivePairings = 256;

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
    return Array.isArray(entries)
      ? (entries as StoredPairing[])
          .filter((entry) => typeof entry.hash === 'string' && typeof entry.id === 'string')
          .map((entry) => ({ ...entry, origin: typeof entry.origin === 'string' ? entry.origin : '*' }))
      : [];
  };
  let pairings = read();
  const expired = (entry: StoredPairing, at: number): boolean => entry.expires_at !== null && Date.parse(entry.expires_at) <= at;
  // Tokens by hash: one lookup per request, whatever the number of tokens.
  let byHash = new Map(pairings.map((entry) => [entry.hash, entry]));
  const changed = (next: StoredPairing[]): void => {
    pairings = next;
    byHash = new Map(pairings.map((entry) => [entry.hash, entry]));
  };
  // Written whole to a temporary file, then renamed over the old one: a crash mid-write leaves the
  // previous file, never a cut one that would drop every pairing.
  const write = (): void => {
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify({ pairings }, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, file);
  };
  let lastWrite = 0;
  return {
    create({ label, scope, ttlSeconds, origin }) {
      const created = now();
      const live = pairings.filter((entry) => !expired(entry, created.getTime()));
      if (live.length >= maxActivePairings)
        throw new RateLimitedError(`${maxActivePairings} pairing tokens are active; revoke one (pairing.revoke) before minting another`, {
          details: { active: live.length },
        });
      const token = `tap_${randomBytes(32).toString('base64url')}`;
      const entry: StoredPairing = {
        id: randomUUID(),
        label,
        scope,
        origin: origin ?? '*',
        hash: hashOf(token),
        created_at: created.toISOString(),
        expires_at: new Date(created.getTime() + (ttlSeconds ?? defaultPairingTtlSeconds) * 1000).toISOString(),
        last_used_at: null,
      };
      // Expired tokens are dropped as new ones are minted.
      changed([...live, entry]);
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
      changed(pairings.filter((entry) => entry.id !== id));
      if (pairings.length === before) return false;
      write();
      return true;
    },
    verify(token): PairingGrant | null {
      const entry = byHash.get(hashOf(token));
      const at = now();
      if (!entry || expired(entry, at.getTime())) return null;
      entry.last_used_at = at.toISOString();
      // Last use is advisory: written at most once a minute, not on every request.
      if (at.getTime() - lastWrite > 60_000) {
        lastWrite = at.getTime();
        write();
      }
      return { id: entry.id, scope: entry.scope, origin: entry.origin };
    },
  };
}
