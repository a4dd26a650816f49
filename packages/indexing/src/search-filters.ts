import { InvalidRequestError, SearchFilters } from '@tabagent/values';
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

/**
 * Validates search filters and turns them into a LanceDB (DataFusion) where clause, every value
 * quoted. Returns undefined when nothing filters. Invalid filters throw InvalidRequestError.
 */
export function filtersToWhere(filters: unknown): string | undefined {
  if (filters === undefined || filters === null) return undefined;
  const parsed = SearchFilters.safeParse(filters);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: ['filters', ...issue.path.map(String)].join('.'), message: issue.message }));
    throw new InvalidRequestError(`Invalid search filters: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`, { issues });
  }
  const f = parsed.data;
  const clauses: string[] = [];
  if (f.chat_id !== undefined) clauses.push(`chat_id = ${quote(f.chat_id)}`);
  if (f.kinds !== undefined && f.kinds.length > 0) clauses.push(`kind IN (${f.kinds.map(quote).join(', ')})`);
  if (f.tiers !== undefined && f.tiers.length > 0) clauses.push(`tier IN (${f.tiers.map(quote).join(', ')})`);
  if (f.url !== undefined) clauses.push(`url = ${quote(f.url)}`);
  const since = f.since === undefined ? undefined : toMillis(f.since, 'since');
  const until = f.until === undefined ? undefined : toMillis(f.until, 'until');
  if (since !== undefined && until !== undefined && since > until) throw new InvalidRequestError('filters.since is after filters.until');
  if (since !== undefined) clauses.push(`created_at >= ${since}`);
  if (until !== undefined) clauses.push(`created_at <= ${until}`);
  return clauses.length === 0 ? undefined : clauses.join(' AND ');
}
