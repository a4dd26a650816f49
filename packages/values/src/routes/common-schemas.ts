import { z } from 'zod';

/** Request of a route that takes nothing. Accepts `{}`, `null` or no body. */
export const EmptyRequest = z.preprocess((value) => (value === null || value === undefined ? {} : value), z.object({})).meta({ id: 'EmptyRequest' });

/** A positive integer that also accepts its decimal string form (query parameters). */
export const QueryInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A boolean that also accepts `"true"`/`"false"` (query parameters). */
export const QueryBoolean = z.preprocess((value) => (value === 'true' ? true : value === 'false' ? false : value), z.boolean());

/** Token usage in OpenAI's shape. */
export const Usage = z
  .object({
    prompt_tokens: z.number().int().nonnegative().describe('Tokens of the whole prompt, the cached ones included.'),
    completion_tokens: z.number().int().nonnegative().describe('Generated tokens, reasoning included.'),
    total_tokens: z.number().int().nonnegative(),
    prompt_tokens_details: z
      .object({ cached_tokens: z.number().int().nonnegative().describe('Prompt tokens reused from the KV cache of an earlier request.') })
      .optional(),
    completion_tokens_details: z.object({ reasoning_tokens: z.number().int().nonnegative() }).optional(),
  })
  .meta({ id: 'Usage' });

/** A simple acknowledgement. */
export const StatusMessage = z.object({ status: z.string(), message: z.string() }).meta({ id: 'StatusMessage' });

/** Opaque cursor for pagination: pass `next_cursor` back as `cursor`. */
export const Cursor = z.string().min(1).max(512);

/** A non-empty model id (file stem, registered name). */
export const ModelId = z.string().min(1).max(512).describe('Model id as listed by GET /v1/models.');

/**
 * Preprocessor for OpenAI-shaped requests: a field sent as `null` is a field not sent. OpenAI's
 * specification marks its optional fields nullable, and generated clients (Java, C#, Go) and
 * several agent frameworks send `null` for "unset". With `keep`, those fields keep a null.
 */
export const nullMeansUnset =
  (...keep: string[]) =>
  (value: unknown): unknown =>
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).filter(([key, field]) => field !== null || keep.includes(key)))
      : value;

/**
 * Preprocessor that copies field `from` to `to` when only `from` is present: the original servers
 * named the same field differently (Rust `model_id`, Python `model_path`, `top_k` for `top_n`).
 */
export const acceptFieldAlias =
  (from: string, to: string) =>
  (value: unknown): unknown =>
    typeof value === 'object' && value !== null && !(to in value) && from in value ? { ...value, [to]: (value as Record<string, unknown>)[from] } : value;
