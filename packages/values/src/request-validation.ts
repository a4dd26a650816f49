import type { z } from 'zod';
import { InvalidRequestError, type FieldIssue } from './errors.js';
import { getRoute, type RouteId, type RouteRequest } from './route-catalogue.js';

/** Converts zod issues to field issues with dotted paths. */
export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

/**
 * Validates a raw request against route `id`'s schema; every transport calls this, so all three
 * reject the same input with the same field list.
 */
export function parseRouteRequest<K extends RouteId>(id: K, raw: unknown): RouteRequest<K> {
  const result = getRoute(id).request.safeParse(raw);
  if (!result.success) {
    const issues = toFieldIssues(result.error);
    const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
    throw new InvalidRequestError(`Invalid request for ${id}: ${summary}`, { issues });
  }
  return result.data as RouteRequest<K>;
}
