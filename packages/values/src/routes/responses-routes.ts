import { z } from 'zod';
import { defineRoute, largeBodyBytes } from '../route-definition.js';

// OpenAI's Responses API (`/v1/responses`), as Codex, the Agents SDK and the AI SDK send it:
// unknown fields are dropped (`include`, `prompt_cache_key`, `client_metadata`, `truncation`,
// `safety_identifier`, ...), tools other than functions are skipped by the codec, not refused.
// Converting to the internal generation contract is the Responses codec's work (services).

const ResponsesContentPart = z.looseObject({
  type: z.string().describe('input_text, output_text, input_image, refusal, ...'),
  text: z.string().optional(),
  image_url: z.string().nullish(),
});
const ResponsesContent = z.union([z.string(), z.array(ResponsesContentPart)]);

const ResponsesMessageItem = z.looseObject({
  type: z.literal('message').optional(),
  id: z.string().optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: ResponsesContent,
});
const ResponsesFunctionCallItem = z.looseObject({
  type: z.literal('function_call'),
  id: z.string().optional(),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
});
const ResponsesFunctionCallOutputItem = z.looseObject({
  type: z.literal('function_call_output'),
  id: z.string().optional(),
  call_id: z.string().min(1),
  output: ResponsesContent,
});
const ResponsesReasoningItem = z.looseObject({
  type: z.literal('reasoning'),
  id: z.string().optional(),
  summary: z.array(z.looseObject({ type: z.string(), text: z.string() })).optional(),
  content: z.array(z.looseObject({ type: z.string(), text: z.string() })).nullish(),
  encrypted_content: z.string().nullish(),
});
/** Any other item (`custom_tool_call`, `web_search_call`, ...): the codec maps, skips or refuses it by its type. */
const ResponsesOtherItem = z.looseObject({ type: z.string() });

export const ResponsesInputItem = z
  .union([ResponsesMessageItem, ResponsesFunctionCallItem, ResponsesFunctionCallOutputItem, ResponsesReasoningItem, ResponsesOtherItem])
  .meta({ id: 'ResponsesInputItem' });
export type ResponsesInputItem = z.infer<typeof ResponsesInputItem>;

/** A function tool (flat, as Responses declares it), or another type (`web_search`, `custom`, `local_shell`, `namespace`), skipped. */
const ResponsesTool = z.looseObject({
  type: z.string(),
  name: z.string().optional(),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const ResponsesTextFormat = z.looseObject({
  type: z.enum(['text', 'json_object', 'json_schema']),
  name: z.string().optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
  strict: z.boolean().nullish(),
});

/** What a create request and an input_tokens request share. */
const ResponsesPrompt = z.object({
  model: z.string().trim().min(1).optional().describe('Model id; when omitted the selected default model answers.'),
  input: z.union([z.string(), z.array(ResponsesInputItem)]).optional(),
  instructions: z.string().nullish(),
  tools: z.array(ResponsesTool).nullish(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string(), name: z.string().optional() })]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  previous_response_id: z.string().nullish(),
  reasoning: z.looseObject({ effort: z.string().nullish(), summary: z.string().nullish() }).nullish(),
  text: z.looseObject({ format: ResponsesTextFormat.nullish(), verbosity: z.string().nullish() }).nullish(),
});

export const ResponsesCreateRequest = ResponsesPrompt.extend({
  stream: z.boolean().default(false),
  store: z
    .boolean()
    .nullish()
    .describe('Keep the response for `previous_response_id` and `GET /v1/responses/{id}` (default true, as OpenAI; a bounded store).'),
  max_output_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  background: z.boolean().nullish(),
}).meta({ id: 'ResponsesCreateRequest' });
export type ResponsesCreateRequest = z.infer<typeof ResponsesCreateRequest>;

export const ResponsesInputTokensRequest = ResponsesPrompt.meta({ id: 'ResponsesInputTokensRequest' });

const ResponsesUsage = z.object({
  input_tokens: z.number().int(),
  input_tokens_details: z.object({ cached_tokens: z.number().int() }),
  output_tokens: z.number().int(),
  output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
  total_tokens: z.number().int(),
});

/** An output item: a message, a function call or a reasoning item (exact shapes in the codec). */
export const ResponsesOutputItem = z
  .looseObject({ type: z.enum(['message', 'function_call', 'reasoning']), id: z.string() })
  .meta({ id: 'ResponsesOutputItem' });

export const ResponsesObject = z
  .looseObject({
    id: z.string(),
    object: z.literal('response'),
    created_at: z.number().int(),
    status: z.enum(['completed', 'incomplete', 'in_progress', 'failed']),
    model: z.string(),
    output: z.array(ResponsesOutputItem),
    usage: ResponsesUsage.nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    incomplete_details: z.object({ reason: z.string() }).nullable(),
  })
  .meta({ id: 'ResponsesObject' });

/** One server-sent event of a streamed response; its `type` is also the SSE `event:` name. */
export const ResponsesStreamEvent = z.looseObject({ type: z.string(), sequence_number: z.number().int() }).meta({ id: 'ResponsesStreamEvent' });

const ResponseIdParams = z.object({ response_id: z.string().min(1) });

export const responsesCreateRoute = defineRoute({
  id: 'responses.create',
  dialect: 'openai-responses',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/responses',
  summary: "OpenAI's Responses API (Codex, the Agents SDK, the AI SDK)",
  description:
    'String or item input, function tools (other tool types skipped), reasoning, `text.format`, and the full event stream with `sequence_number` (`response.created` at once, `keepalive` while the prompt is evaluated). `store` and `previous_response_id` use a bounded store.',
  tags: ['responses'],
  request: ResponsesCreateRequest,
  response: ResponsesObject,
  chunk: ResponsesStreamEvent,
});

export const responsesInputTokensRoute = defineRoute({
  id: 'responses.input_tokens',
  dialect: 'openai-responses',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/responses/input_tokens',
  summary: "The exact prompt tokens of a Responses request (the rendered prompt's, equal to its usage.input_tokens)",
  tags: ['responses'],
  request: ResponsesInputTokensRequest,
  response: z.object({ object: z.literal('response.input_tokens'), input_tokens: z.number().int() }).meta({ id: 'ResponsesInputTokens' }),
});

export const responsesGetRoute = defineRoute({
  id: 'responses.get',
  dialect: 'openai-responses',
  method: 'GET',
  path: '/v1/responses/{response_id}',
  summary: 'A stored response (store: true), as it was returned',
  tags: ['responses'],
  request: ResponseIdParams,
  response: ResponsesObject,
});

export const responsesDeleteRoute = defineRoute({
  id: 'responses.delete',
  dialect: 'openai-responses',
  method: 'DELETE',
  path: '/v1/responses/{response_id}',
  summary: 'Deletes a stored response',
  tags: ['responses'],
  request: ResponseIdParams,
  response: z.object({ id: z.string(), object: z.literal('response'), deleted: z.literal(true) }).meta({ id: 'ResponsesDeleted' }),
});

export const responsesInputItemsRoute = defineRoute({
  id: 'responses.input_items',
  dialect: 'openai-responses',
  method: 'GET',
  path: '/v1/responses/{response_id}/input_items',
  summary: "A stored response's input items",
  tags: ['responses'],
  request: ResponseIdParams.extend({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    order: z.enum(['asc', 'desc']).default('desc'),
    after: z.string().optional(),
  }),
  response: z
    .object({
      object: z.literal('list'),
      data: z.array(z.record(z.string(), z.unknown())),
      first_id: z.string().nullable(),
      last_id: z.string().nullable(),
      has_more: z.boolean(),
    })
    .meta({ id: 'ResponsesInputItems' }),
});
