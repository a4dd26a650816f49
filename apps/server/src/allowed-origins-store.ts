import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { safeParseJson } from '@tabagent/values';

/**
 * Extension origins `install-native-host` was given, kept in the data directory so that the
 * HTTP API lets the real extension in without any other setting (and nothing else in).
 */
export const allowedOriginsFileName = 'allowed-origins.json';

/** The recorded origins, or none when the file is absent or unreadable. */
export function readAllowedOrigins(dataDir: string): string[] {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, allowedOriginsFileName), 'utf8');
  } catch {
    return [];
  }
  const parsed = safeParseJson(text);
  const origins = parsed.success ? (parsed.value as { origins?: unknown } | null)?.origins : undefined;
  return Array.isArray(origins) ? origins.filter((origin): origin is string => typeof origin === 'string') : [];
}

/** Adds origins to the record (mode 0600). */
export function recordAllowedOrigins(dataDir: string, origins: readonly string[]): string[] {
  const all = [...new Set([...readAllowedOrigins(dataDir), ...origins])].sort();
  const file = path.join(dataDir, allowedOriginsFileName);
  writeFileSync(file, `${JSON.stringify({ origins: all }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return all;
}
