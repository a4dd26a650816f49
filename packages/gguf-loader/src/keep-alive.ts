import type { KeepAlive } from '@tabagent/values';
import { InvalidRequestError } from '@tabagent/values';

export type { KeepAlive };

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses an Ollama-style keep-alive into milliseconds: 0 unloads after the request, a negative
 * value means forever (returned as `Infinity`). A bare number (or numeric string) is seconds.
 */
export function parseKeepAlive(value: KeepAlive): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidRequestError(`keep_alive must be a finite number, got ${value}`);
    return value < 0 ? Infinity : value * 1000;
  }
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return parseKeepAlive(Number(text));
  if (text.startsWith('-')) {
    parseKeepAlive(text.slice(1));
    return Infinity;
  }
  const pattern = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (const match of text.matchAll(pattern)) {
    total += Number(match[1]) * (unitMs[match[2] as string] as number);
    matched += match[0].length;
  }
  if (text.length === 0 || matched !== text.length)
    throw new InvalidRequestError(`keep_alive ${JSON.stringify(value)} is not a duration (use seconds or "30s", "5m", "1h")`);
  return total;
}
