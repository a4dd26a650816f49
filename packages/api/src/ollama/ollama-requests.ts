import { z } from 'zod';
import { InvalidRequestError, toFieldIssues } from '@tabagent/values';

// Ollama's request bodies (docs/api.md, api/types.go), as leniently as Ollama reads them: unknown
// top-level fields are dropped, `stream` defaults to true, options are a free map.

const ModelName = z.string().trim().min(1).optional();
const KeepAlive = z.union([z.number(), z.string()]).optional();
const Options = z.record(z.string(), z.unknown()).optional();
const Think = z.union([z.boolean(), z.enum(['low', 'medium', 'high', 'max'])]).optional();
const Format = z.union([z.string(), z.record(z.string(), z.unknown()), z.null()]).optional();

const OllamaToolCall = z.object({
  id: z.string().optional(),
  function: z.object({
    index: z.number().int().optional(),
    name: z.string().min(1),
    arguments: z.union([z.record(z.string(), z.unknown()), z.string()]).optional(),
  }),
});

export const OllamaMessage = z.object({
  role: z.string().transform((role) => role.toLowerCase()),
  content: z
    .string()
    .nullish()
    .transform((content) => content ?? ''),
  thinking: z.string().optional(),
  images: z.array(z.unknown()).nullish(),
  tool_calls: z.array(OllamaToolCall).nullish(),
  tool_name: z.string().optional(),
  tool_call_id: z.string().optional(),
});
export type OllamaMessage = z.infer<typeof OllamaMessage>;

/** What a chat and a generate request share: the model, the output format, sampling, streaming, residency and thinking. */
const GenerationRequestBase = z.object({
  model: ModelName,
  format: Format,
  options: Options,
  stream: z.boolean().nullish(),
  keep_alive: KeepAlive,
  think: Think,
});

export const OllamaChatRequest = GenerationRequestBase.extend({
  messages: z.array(OllamaMessage).nullish(),
  tools: z.array(z.record(z.string(), z.unknown())).nullish(),
});

export const OllamaGenerateRequest = GenerationRequestBase.extend({
  prompt: z.string().nullish(),
  suffix: z.string().nullish(),
  system: z.string().nullish(),
  template: z.string().nullish(),
  context: z.array(z.number()).nullish(),
  raw: z.boolean().nullish(),
  images: z.array(z.unknown()).nullish(),
});

export const OllamaEmbedRequest = z.object({
  model: ModelName,
  input: z.union([z.string(), z.array(z.string())]).nullish(),
  truncate: z.boolean().nullish(),
  dimensions: z.number().int().positive().nullish(),
  keep_alive: KeepAlive,
  options: Options,
});

export const OllamaEmbeddingsRequest = z.object({ model: ModelName, prompt: z.string().nullish(), keep_alive: KeepAlive, options: Options });

/** show, delete and pull take `model`, or the older `name` (ollama-js still sends `name`). */
export const OllamaModelRequest = z.object({ model: ModelName, name: ModelName, verbose: z.boolean().nullish(), stream: z.boolean().nullish() });

export const OllamaCopyRequest = z.object({ source: z.string().trim().min(1), destination: z.string().trim().min(1) });

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

/** The model a request names (`model`, else `name`); Ollama answers 400 "model is required" without one. */
export function requiredModelName(body: { model?: string | undefined; name?: string | undefined }): string {
  const name = body.model ?? body.name;
  if (name === undefined) throw new InvalidRequestError('model is required', { issues: [{ path: 'model', message: 'required' }] });
  return name;
}

/**
 * An Ollama name (`name:tag`, `:latest` implied) as a model id of this server: `:latest` names
 * the model itself; any other tag is part of the id (an alias made by `/api/copy` can carry one).
 */
export function modelIdOf(name: string): string {
  return name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
}

/** A model id as Ollama lists it: with its tag, `:latest` when it has none. */
export function ollamaNameOf(id: string): string {
  return id.includes(':') ? id : `${id}:latest`;
}

/**
 * Ollama options this server maps onto its own request fields, and llama-server's `ignore_eos`
 * (no end-of-generation token is sampled), which Ollama does not have.
 */
const mappedOptions = new Set([
  'num_predict',
  'temperature',
  'top_k',
  'top_p',
  'min_p',
  'repeat_penalty',
  'seed',
  'stop',
  'presence_penalty',
  'frequency_penalty',
  'num_ctx',
  'num_thread',
  'ignore_eos',
]);

/** Sampling fields of a chat or completion request, from Ollama's `options`; the rest is reported as ignored. */
export function samplingFromOptions(options: Record<string, unknown> | undefined): {
  fields: Record<string, unknown>;
  load: Record<string, unknown>;
  ignored: string[];
} {
  const fields: Record<string, unknown> = {};
  const load: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value === null || value === undefined) continue;
    if (!mappedOptions.has(key)) {
      ignored.push(key);
      continue;
    }
    switch (key) {
      case 'num_predict':
        // -1 is "until the model stops", -2 "until the context is full": both are the default here.
        fields['max_tokens'] = typeof value === 'number' && value < 0 ? -1 : value;
        break;
      case 'num_ctx':
        load['context_size'] = value;
        break;
      case 'num_thread':
        load['threads'] = value;
        break;
      default:
        fields[key] = value;
    }
  }
  return { fields, load, ignored };
}

/** Ollama's `format` ("json" or a JSON schema) as OpenAI's `response_format`; none for absent or empty. */
export function responseFormatOf(format: string | Record<string, unknown> | null | undefined): Record<string, unknown> | undefined {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return { type: 'json_object' };
  if (typeof format === 'object') return { type: 'json_schema', json_schema: { name: 'format', schema: format } };
  throw new InvalidRequestError(`invalid format: ${JSON.stringify(format)}; expected "json" or a valid JSON Schema object`, {
    issues: [{ path: 'format', message: 'expected "json" or a JSON schema' }],
  });
}

/** Ollama's `think` as this server's: `max` is the most there is, `high`. */
export function thinkOf(think: boolean | 'low' | 'medium' | 'high' | 'max' | undefined): boolean | 'low' | 'medium' | 'high' | undefined {
  return think === 'max' ? 'high' : think;
}
