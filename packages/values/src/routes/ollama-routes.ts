import { z } from 'zod';
import { InvalidRequestError } from '../errors.js';
import { defineRoute, largeBodyBytes } from '../route-definition.js';

// Ollama's request bodies (docs/api.md, api/types.go), as leniently as Ollama reads them: unknown
// top-level fields are dropped, `stream` defaults to true, options are a free map. The chat and
// generate operations are catalogue routes of their own (one call, one log line, one count);
// converting them to the internal generation contract is the Ollama codec's work (services).

const ModelName = z.string().trim().min(1).optional();
const OllamaKeepAlive = z.union([z.number(), z.string()]).optional();
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
const OllamaGenerationBase = z.object({
  model: ModelName,
  format: Format,
  options: Options,
  stream: z.boolean().nullish(),
  keep_alive: OllamaKeepAlive,
  think: Think,
});

export const OllamaChatRequest = OllamaGenerationBase.extend({
  messages: z.array(OllamaMessage).nullish(),
  tools: z.array(z.record(z.string(), z.unknown())).nullish(),
}).meta({ id: 'OllamaChatRequest' });

export const OllamaGenerateRequest = OllamaGenerationBase.extend({
  prompt: z.string().nullish(),
  suffix: z.string().nullish(),
  system: z.string().nullish(),
  template: z.string().nullish(),
  context: z.array(z.number()).nullish(),
  raw: z.boolean().nullish(),
  images: z.array(z.unknown()).nullish(),
}).meta({ id: 'OllamaGenerateRequest' });

export const OllamaEmbedRequest = z.object({
  model: ModelName,
  input: z.union([z.string(), z.array(z.string())]).nullish(),
  truncate: z.boolean().nullish(),
  dimensions: z.number().int().positive().nullish(),
  keep_alive: OllamaKeepAlive,
  options: Options,
});

export const OllamaEmbeddingsRequest = z.object({ model: ModelName, prompt: z.string().nullish(), keep_alive: OllamaKeepAlive, options: Options });

/** show, delete and pull take `model`, or the older `name` (ollama-js still sends `name`). */
export const OllamaModelRequest = z.object({ model: ModelName, name: ModelName, verbose: z.boolean().nullish(), stream: z.boolean().nullish() });

export const OllamaCopyRequest = z.object({ source: z.string().trim().min(1), destination: z.string().trim().min(1) });

/** Ollama's tool call in an answer: arguments as an object, an index per call. */
const OllamaAnswerToolCall = z.object({
  id: z.string().optional(),
  function: z.object({ index: z.number().int(), name: z.string(), arguments: z.record(z.string(), z.unknown()) }),
});

/** The counters of Ollama's last line, in nanoseconds. */
const OllamaCounters = {
  done_reason: z.string().optional(),
  total_duration: z.number().int().optional(),
  load_duration: z.number().int().optional(),
  prompt_eval_count: z.number().int().optional(),
  prompt_eval_duration: z.number().int().optional(),
  eval_count: z.number().int().optional(),
  eval_duration: z.number().int().optional(),
};

/** One line of a chat answer (streamed, or the whole answer as one line when `stream` is false). */
export const OllamaChatLine = z
  .object({
    model: z.string(),
    created_at: z.string(),
    message: z.object({
      role: z.literal('assistant'),
      content: z.string(),
      thinking: z.string().optional(),
      tool_calls: z.array(OllamaAnswerToolCall).optional(),
    }),
    done: z.boolean(),
    ...OllamaCounters,
  })
  .meta({ id: 'OllamaChatLine' });

/** One line of a generate answer. */
export const OllamaGenerateLine = z
  .object({ model: z.string(), created_at: z.string(), response: z.string(), thinking: z.string().optional(), done: z.boolean(), ...OllamaCounters })
  .meta({ id: 'OllamaGenerateLine' });

export const ollamaChatRoute = defineRoute({
  id: 'ollama.chat',
  dialect: 'ollama',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/api/chat',
  summary: "Ollama's chat (NDJSON lines unless stream is false)",
  description:
    "Ollama's request and answer shapes, one operation: an empty `messages` loads the model (or with `keep_alive: 0` unloads it); `options.num_ctx` and `num_thread` apply when it loads.",
  tags: ['ollama'],
  request: OllamaChatRequest,
  response: OllamaChatLine,
  chunk: OllamaChatLine,
});

export const ollamaGenerateRoute = defineRoute({
  id: 'ollama.generate',
  dialect: 'ollama',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/api/generate',
  summary: "Ollama's generate (NDJSON lines unless stream is false)",
  description:
    "Ollama's request and answer shapes, one operation: the prompt through the model's chat template, or as it is with `raw: true`; an empty prompt loads (or with `keep_alive: 0` unloads) the model.",
  tags: ['ollama'],
  request: OllamaGenerateRequest,
  response: OllamaGenerateLine,
  chunk: OllamaGenerateLine,
});

/**
 * An Ollama name (`name:tag`, `:latest` implied) as a model id of this server: `:latest` names
 * the model itself; any other tag is part of the id (an alias made by `/api/copy` can carry one).
 */
export function ollamaModelIdOf(name: string): string {
  return name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
}

/** A model id as Ollama lists it: with its tag, `:latest` when it has none. */
export function ollamaNameOf(id: string): string {
  return id.includes(':') ? id : `${id}:latest`;
}

/** The model a request names (`model`, else `name`); Ollama answers 400 "model is required" without one. */
export function requiredOllamaModelName(body: { model?: string | undefined; name?: string | undefined }): string {
  const name = body.model ?? body.name;
  if (name === undefined) throw new InvalidRequestError('model is required', { issues: [{ path: 'model', message: 'required' }] });
  return name;
}
