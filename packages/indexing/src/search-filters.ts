import { InvalidRequestError, SearchFilters } from '@tabagent/values';
import type { NodeFilters } from '@tabagent/storage';
import type { z } from 'zod';

/** Filters of a memory search (see `SearchFilters` in values). */
export type MemorySearchFilters = z.input<typeof SearchFilters>;

function quote(value: string): string {
  // DataFusion SQL string literal: a single quote is doubled; NUL cannot appear in a literal.
  if (value.includes('\u0000')) throw new InvalidRequestError('Filter values must not contain NUL characters');
  return `'${value.replaceAll("'", "''")}'`;
}

function toMillis(value: string, field: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms))
    throw new InvalidRequestError(`filters.${field} is not an RFC 3339 time or Unix milliseconds: ${value}`, {
      issues: [{ path: `filters.${field}`, message: 'invalid time' }],
    });
  return ms;
}

/** Validated filters with times in Unix milliseconds; invalid filters throw InvalidRequestError. */
export function parseSearchFilters(filters: unknown): NodeFilters {
  if (filters === undefined || filters === null) return {};
  const parsed = SearchFilters.safeParse(filters);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: ['filters', ...issue.path.map(String)].join('.'), message: issue.message }));
    throw new InvalidRequestError(`Invalid search filters: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`, { issues });
  }
  const f = parsed.data;
  const since = f.since === undefined ? undefined : toMillis(f.since, 'since');
  const until = f.until === undefined ? undefined : toMillis(f.until, 'until');
  if (since !== undefined && until !== undefined && since > until) throw new InvalidRequestError('filters.since is after filters.until');
  return {
    ...(f.chat_id === undefined ? {} : { chat_id: f.chat_id }),
    ...(f.kinds === undefined || f.kinds.length === 0 ? {} : { kinds: f.kinds }),
    ...(f.tiers === undefined || f.tiers.length === 0 ? {} : { tiers: f.tiers }),
    ...(f.url === undefined ? {} : { url: f.url }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
  };
}

/**
 * Validates search filters and turns them into a LanceDB (DataFusion) where clause, every value
 * quoted. Returns undefined when nothing filters. Invalid filters throw InvalidRequestError.
 */
export function filtersToWhere(filters: unknown): string | undefined {
  const f = parseSearchFilters(filters);
  const clauses: string[] = [];
  if (f.chat_id !== undefined) clauses.push(`chat_id = ${quote(f.chat_id)}`);
  if (f.kinds !== undefined) clauses.push(`kind IN (${f.kinds.map(quote).join(', ')})`);
  if (f.tiers !== undefined) clauses.push(`tier IN (${f.tiers.map(quote).join(', ')})`);
  if (f.url !== undefined) clauses.push(`url = ${quote(f.url)}`);
  if (f.since !== undefined) clauses.push(`created_at >= ${f.since}`);
  if (f.until !== undefined) clauses.push(`created_at <= ${f.until}`);
  return clauses.length === 0 ? undefined : clauses.join(' AND ');
}
