import type { z } from 'zod';
import { InvalidRequestError, toFieldIssues } from '@tabagent/values';

// Ollama's request schemas and names live in @tabagent/values (routes/ollama-routes.ts), its chat
// and generate codec in @tabagent/services; this transport only reads and validates bodies.

/** Validates an Ollama request body; a mismatch is a 400 naming the fields, as for every route. */
export function parseOllamaRequest<T extends z.ZodType>(schema: T, body: unknown, what: string): z.output<T> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issues = toFieldIssues(result.error);
    throw new InvalidRequestError(
      `Invalid request for ${what}: ${issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ')}`,
      {
        issues,
      },
    );
  }
  return result.data;
}
