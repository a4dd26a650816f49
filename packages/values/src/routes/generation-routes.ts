import { z } from 'zod';
import { defineRoute, largeBodyBytes } from '../route-definition.js';
import { EmptyRequest, ModelId, nullMeansUnset, Usage } from './common-schemas.js';

/**
 * A token budget: a count, or -1 (as LM Studio's examples send it) for "until the model stops or
 * the context is full", which is also what leaving it out means.
 */
export const TokenBudget = z
  .union([z.literal(-1), z.number().int().min(1).max(1_000_000)])
  .describe('Most tokens to generate; -1 or absent: until the model stops or the context is full (then finish_reason is length).');

/** `stop` as OpenAI takes it: one string or up to 16 strings. */
export const StopSequences = z.union([z.string().min(1), z.array(z.string().min(1)).max(16)]);

/**
 * Sampling options shared by chat and completions. OpenAI names, plus the llama.cpp/Ollama ones
 * OpenAI lacks (`top_k`, `min_p`, `repeat_penalty`).
 */
export const SamplingOptions = z.object({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  min_p: z.number().min(0).max(1).optional(),
  repeat_penalty: z.number().min(0).max(10).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  seed: z.number().int().optional().describe('Same seed, same prompt and settings: same output.'),
  max_tokens: TokenBudget.optional(),
  cache_prompt: z
    .boolean()
    .optional()
    .describe(
      "Reuse the KV cache of an earlier request whose prompt starts the same way (llama-server's name; default true); false evaluates the whole prompt again. As in llama-server, logits computed in another batch split can differ in the last digits, so a seeded output can differ between the two.",
    ),
  stop: StopSequences.optional(),
  ignore_eos: z
    .boolean()
    .optional()
    .describe(
      "Never sample an end-of-generation token (llama-server's `ignore_eos`): the generation runs until max_tokens, a stop sequence, the context, or a stop request. For benchmarks and tests.",
    ),
  keep_alive: z
    .union([z.number(), z.string()])
    .optional()
    .describe('How long the model stays loaded after this request (Ollama style: seconds, or "5m", "1h"; 0 unloads at once, negative keeps it forever).'),
});

export const TextContentPart = z.object({ type: z.literal('text'), text: z.string() });
export const ImageContentPart = z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string(), detail: z.string().optional() }) });

export const ToolCall = z
  .object({
    id: z.string(),
    type: z.literal('function'),
    function: z.object({ name: z.string(), arguments: z.string().describe('JSON text of the arguments.') }),
  })
  .meta({ id: 'ToolCall' });

export const ChatMessage = z
  .preprocess(
    nullMeansUnset('content'),
    z.object({
      role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
      content: z.union([z.string(), z.array(z.union([TextContentPart, ImageContentPart])), z.null()]).default(null),
      name: z.string().optional(),
      tool_calls: z.array(ToolCall).optional(),
      tool_call_id: z.string().optional(),
    }),
  )
  .meta({ id: 'ChatMessage' });

export const ToolDefinition = z
  .object({
    type: z.literal('function'),
    function: z.object({
      name: z.string().min(1).max(64),
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional().describe('JSON Schema of the arguments.'),
    }),
  })
  .meta({ id: 'ToolDefinition' });

export const ResponseFormat = z
  .union([
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.object({
        name: z.string().min(1).optional().describe('Optional here, as in llama-server (OpenAI requires it).'),
        description: z.string().optional(),
        schema: z.record(z.string(), z.unknown()),
        strict: z.boolean().optional(),
      }),
    }),
  ])
  .meta({ id: 'ResponseFormat' });

/** Retrieval from the user's memory into the prompt (see the memory issue). */
export const MemoryOption = z
  .union([
    z.boolean(),
    z.object({
      k: z.number().int().min(1).max(50).default(5),
      chat_id: z.string().optional(),
      kinds: z.array(z.string()).optional(),
    }),
  ])
  .describe('Retrieve context from the memory store into the prompt; the response lists the sources used.');

/** Accepted so that clients that send them get a clear answer; see the handlers for what is refused. */
const OpenAiExtras = {
  logit_bias: z
    .record(z.string().regex(/^\d+$/), z.number().min(-100).max(100))
    .optional()
    .describe("Token id (of this model's vocabulary) to a bias added to its logit; -100 bans it, 100 all but forces it."),
  logprobs: z.boolean().optional().describe('Not supported yet (the chat generation reports no token probabilities): true is refused with 400.'),
  top_logprobs: z.number().int().min(0).max(20).optional().describe('Not supported yet: more than 0 is refused with 400.'),
  parallel_tool_calls: z.boolean().optional().describe('false: at most one tool call is returned.'),
};

export const ChatCompletionRequest = SamplingOptions.extend({
  model: ModelId.optional().describe('Model id; when omitted the selected default model answers (Ollama/LM Studio behaviour).'),
  messages: z.array(ChatMessage).min(1),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
  max_completion_tokens: TokenBudget.optional().describe("OpenAI's newer name for max_tokens."),
  reasoning_effort: z
    .enum(['none', 'minimal', 'low', 'medium', 'high'])
    .optional()
    .describe(
      'How much a reasoning model thinks. none: it does not (its thought is closed at once). low/medium/high: given to models that take an effort (gpt-oss); others ignore them and think as they do. Models without reasoning ignore the field.',
    ),
  response_format: ResponseFormat.optional(),
  tools: z.array(ToolDefinition).optional(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) })]).optional(),
  n: z.number().int().min(1).max(128).optional().describe('Only one choice is generated: more than 1 is refused with 400.'),
  user: z.string().optional(),
  memory: MemoryOption.optional(),
  ...OpenAiExtras,
}).meta({ id: 'ChatCompletionRequest' });

/** Why a generation ended, within OpenAI's values (a stopped generation is `stop`, with `tabagent.cancelled`). */
export const FinishReason = z
  .enum(['stop', 'length', 'tool_calls'])
  .describe("OpenAI's values. A generation stopped by the stop route, halt or a client disconnect is `stop`, with `tabagent.cancelled: true`.");

/** What TabAgent adds to a completion, apart from OpenAI's fields. */
export const TabAgentCompletionInfo = z
  .object({ cancelled: z.boolean().describe('The generation was stopped (stop route, halt, client disconnect) before it finished.') })
  .meta({ id: 'TabAgentCompletionInfo' });

export const MemorySource = z
  .object({ id: z.string(), kind: z.string(), title: z.string().nullable(), url: z.string().nullable(), score: z.number() })
  .meta({ id: 'MemorySource' });

/** llama-server's `timings` on a finished generation: the prompt phase (until the first token) and the decoding after it. */
export const GenerationTimings = z
  .object({
    prompt_n: z.number().int().describe('Prompt tokens.'),
    prompt_ms: z.number().nullable().describe('From the request to the first generated text (queueing and prompt evaluation); null when no text came.'),
    predicted_n: z.number().int().describe('Generated tokens.'),
    predicted_ms: z.number().describe('From the first generated text to the end.'),
    predicted_per_second: z.number().nullable().describe('Decoding speed; null when nothing was generated.'),
  })
  .meta({ id: 'GenerationTimings' });

export const ChatCompletionResponse = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({
          role: z.literal('assistant'),
          content: z.string().nullable(),
          reasoning_content: z
            .string()
            .optional()
            .describe("A reasoning model's thinking, apart from its answer (llama-server's, vLLM's and DeepSeek's field); absent when it did not think."),
          tool_calls: z.array(ToolCall).optional(),
        }),
        finish_reason: FinishReason,
        logprobs: z.null(),
      }),
    ),
    usage: Usage,
    system_fingerprint: z.string().optional(),
    request_id: z.string().describe('Pass to POST /v1/generation/stop to abort; also in the X-Request-Id header.'),
    timings: GenerationTimings.optional(),
    tabagent: TabAgentCompletionInfo.optional(),
    memory_sources: z.array(MemorySource).optional(),
  })
  .meta({ id: 'ChatCompletionResponse' });

export const ChatCompletionChunk = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion.chunk'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        delta: z.object({
          role: z.literal('assistant').optional(),
          content: z.string().nullable().optional(),
          reasoning_content: z.string().optional().describe('Thinking, streamed as it is produced, before the answer.'),
          tool_calls: z
            .array(
              z.object({
                index: z.number().int(),
                id: z.string().optional(),
                type: z.literal('function').optional(),
                function: z.object({ name: z.string().optional(), arguments: z.string().optional() }),
              }),
            )
            .optional(),
        }),
        finish_reason: FinishReason.nullable(),
        logprobs: z.null().optional(),
      }),
    ),
    usage: Usage.nullable().optional().describe('On the final chunk (always sent there; OpenAI sends it with stream_options.include_usage).'),
    request_id: z.string(),
    tabagent: TabAgentCompletionInfo.optional(),
    memory_sources: z.array(MemorySource).optional(),
  })
  .meta({ id: 'ChatCompletionChunk' });

const TokenIds = z.array(z.number().int().nonnegative()).min(1);

export const CompletionRequest = SamplingOptions.extend({
  model: ModelId.optional(),
  prompt: z
    .union([z.string(), z.array(z.string()).min(1).max(1), TokenIds, z.array(TokenIds).min(1).max(1)])
    .describe(
      "One prompt: text, or token ids of this model's vocabulary (as llama-server takes them); an array of one of either is accepted, as OpenAI clients send.",
    ),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
  echo: z.boolean().optional(),
  suffix: z.string().optional(),
  n: z.number().int().min(1).max(128).optional().describe('Only one choice is generated: more than 1 is refused with 400.'),
  best_of: z.number().int().min(1).max(20).optional().describe('Only 1 is available.'),
  user: z.string().optional(),
  response_format: ResponseFormat.optional(),
  logit_bias: OpenAiExtras.logit_bias,
  logprobs: z.number().int().min(0).max(5).optional().describe('Not supported yet: more than 0 is refused with 400.'),
}).meta({ id: 'CompletionRequest' });

export const CompletionResponse = z
  .object({
    id: z.string(),
    object: z.literal('text_completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(z.object({ index: z.number().int(), text: z.string(), finish_reason: FinishReason, logprobs: z.null() })),
    usage: Usage,
    request_id: z.string(),
    tabagent: TabAgentCompletionInfo.optional(),
  })
  .meta({ id: 'CompletionResponse' });

export const CompletionChunk = z
  .object({
    id: z.string(),
    object: z.literal('text_completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(z.object({ index: z.number().int(), text: z.string(), finish_reason: FinishReason.nullable(), logprobs: z.null().optional() })),
    usage: Usage.nullable().optional(),
    request_id: z.string(),
    tabagent: TabAgentCompletionInfo.optional(),
  })
  .meta({ id: 'CompletionChunk' });

export const StopGenerationRequest = z.object({ request_id: z.string().min(1) }).meta({ id: 'StopGenerationRequest' });
export const StopGenerationResponse = z
  .object({ status: z.enum(['stopped', 'not_found']), request_id: z.string(), stopped: z.number().int().nonnegative() })
  .meta({ id: 'StopGenerationResponse' });

export const HaltStatusResponse = z
  .object({
    generating: z.boolean(),
    active_requests: z.number().int().nonnegative(),
    active_request_ids: z.array(z.string()),
    last_halt_time: z.string().nullable(),
  })
  .meta({ id: 'HaltStatusResponse' });

export const HaltResponse = z
  .object({ status: z.literal('halted'), was_generating: z.boolean(), stopped: z.number().int().nonnegative(), stopped_request_ids: z.array(z.string()) })
  .meta({ id: 'HaltResponse' });

/** Default sampling settings applied when a request leaves a field out. Persisted. */
export const GenerationParams = z
  .object({
    temperature: z.number().min(0).max(2),
    top_p: z.number().min(0).max(1),
    top_k: z.number().int().min(0),
    min_p: z.number().min(0).max(1),
    repeat_penalty: z.number().min(0).max(10),
    frequency_penalty: z.number().min(-2).max(2),
    presence_penalty: z.number().min(-2).max(2),
    max_tokens: z.number().int().min(1).max(1_000_000).nullable().describe('null: until the model stops or the context is full.'),
    seed: z.number().int().nullable(),
    stop: z.array(z.string().min(1)).max(16),
    system_prompt: z.string().nullable(),
  })
  .meta({ id: 'GenerationParams' });

export const SetGenerationParamsRequest = GenerationParams.partial().meta({ id: 'SetGenerationParamsRequest' });

export const chatCompletionsRoute = defineRoute({
  id: 'chat.completions',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/chat/completions',
  aliases: ['/v1/chat'],
  summary: 'Chat completion (OpenAI compatible; SSE when stream is true)',
  description:
    "OpenAI request and response shapes (Python's streaming, Rust's path). The id of the generation is returned as `request_id` and in the X-Request-Id header.",
  tags: ['generation'],
  request: z.preprocess(nullMeansUnset(), ChatCompletionRequest),
  response: ChatCompletionResponse,
  chunk: ChatCompletionChunk,
});

export const completionsRoute = defineRoute({
  id: 'completions',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/completions',
  aliases: ['/v1/generate'],
  summary: 'Raw prompt completion (OpenAI compatible; SSE when stream is true)',
  description: "Returns a `text_completion` object (Rust shape), not Python's chat.completion.",
  tags: ['generation'],
  request: z.preprocess(nullMeansUnset(), CompletionRequest),
  response: CompletionResponse,
  chunk: CompletionChunk,
});

export const generationStopRoute = defineRoute({
  id: 'generation.stop',
  method: 'POST',
  path: '/v1/generation/stop',
  summary: 'Abort one generation by its request id',
  description: 'Any non-empty id (Rust required a UUID; our ids are not always UUIDs).',
  tags: ['generation'],
  request: StopGenerationRequest,
  response: StopGenerationResponse,
});

export const haltStatusRoute = defineRoute({
  id: 'generation.halt_status',
  method: 'GET',
  path: '/v1/halt',
  summary: 'Whether anything is generating',
  description: 'GET reports (Rust meaning); it never stops anything, because a GET must be safe. POST /v1/halt stops.',
  tags: ['generation'],
  request: EmptyRequest,
  response: HaltStatusResponse,
});

export const haltRoute = defineRoute({
  id: 'generation.halt',
  method: 'POST',
  path: '/v1/halt',
  summary: 'Abort every running generation',
  tags: ['generation'],
  request: EmptyRequest,
  response: HaltResponse,
});

export const paramsGetRoute = defineRoute({
  id: 'params.get',
  method: 'GET',
  path: '/v1/params',
  summary: 'Default sampling settings',
  tags: ['generation'],
  request: EmptyRequest,
  response: GenerationParams,
});

export const paramsSetRoute = defineRoute({
  id: 'params.set',
  method: 'POST',
  path: '/v1/params',
  summary: 'Change default sampling settings (persisted); returns all of them',
  tags: ['generation'],
  request: SetGenerationParamsRequest,
  response: GenerationParams,
});
