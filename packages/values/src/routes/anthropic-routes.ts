import { z } from 'zod';
import { defineRoute, largeBodyBytes } from '../route-definition.js';

// Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`), as leniently as
// Claude Code needs it read: unknown top-level fields (`metadata`, `context_management`,
// `output_config`'s siblings, `container`, `service_tier`, ...) are dropped, never refused; server
// tools are accepted and skipped by the codec. Converting to the internal generation contract is
// the Anthropic codec's work (services).

const CacheControl = z.record(z.string(), z.unknown()).optional();

const AnthropicTextBlock = z.object({ type: z.literal('text'), text: z.string(), cache_control: CacheControl, citations: z.unknown().optional() });
const AnthropicImageSource = z.union([
  z.object({ type: z.literal('base64'), media_type: z.string(), data: z.string() }),
  z.object({ type: z.literal('url'), url: z.string() }),
]);
const AnthropicImageBlock = z.object({ type: z.literal('image'), source: AnthropicImageSource, cache_control: CacheControl });
const AnthropicToolUseBlock = z.object({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()).default({}),
  cache_control: CacheControl,
});
const AnthropicToolResultBlock = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(z.union([AnthropicTextBlock, AnthropicImageBlock]))]).optional(),
  is_error: z.boolean().optional(),
  cache_control: CacheControl,
});
const AnthropicThinkingBlock = z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string().optional() });
const AnthropicRedactedThinkingBlock = z.object({ type: z.literal('redacted_thinking'), data: z.string().optional() });
/** Any other block (`document`, a server tool's records): the codec refuses or skips it by its type, saying which. */
const AnthropicOtherBlock = z.looseObject({ type: z.string() });

export const AnthropicContentBlock = z
  .union([
    AnthropicTextBlock,
    AnthropicImageBlock,
    AnthropicToolUseBlock,
    AnthropicToolResultBlock,
    AnthropicThinkingBlock,
    AnthropicRedactedThinkingBlock,
    AnthropicOtherBlock,
  ])
  .meta({ id: 'AnthropicContentBlock' });
export type AnthropicContentBlock = z.infer<typeof AnthropicContentBlock>;

export const AnthropicMessage = z
  .object({
    // `system` inside messages is a beta Claude Code uses (a mid-conversation system note).
    role: z.enum(['user', 'assistant', 'system']),
    content: z.union([z.string(), z.array(AnthropicContentBlock)]),
  })
  .meta({ id: 'AnthropicMessage' });
export type AnthropicMessage = z.infer<typeof AnthropicMessage>;

/** A client tool (`input_schema`), or a server tool (`type: "web_search_20250305"` and the like), which is skipped. */
const AnthropicTool = z.looseObject({
  type: z.string().optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()).optional(),
});

const AnthropicToolChoice = z.object({
  type: z.enum(['auto', 'any', 'tool', 'none']),
  name: z.string().optional(),
  disable_parallel_tool_use: z.boolean().optional(),
});

/** What a messages request and a count_tokens request share: the prompt, the tools and thinking. */
const AnthropicPrompt = z.object({
  model: z.string().trim().min(1),
  messages: z.array(AnthropicMessage).min(1),
  system: z.union([z.string(), z.array(AnthropicTextBlock)]).optional(),
  tools: z.array(AnthropicTool).optional(),
  tool_choice: AnthropicToolChoice.optional(),
  thinking: z.looseObject({ type: z.string(), budget_tokens: z.number().int().optional() }).optional(),
  output_config: z.looseObject({ effort: z.string().optional() }).optional(),
});

export const AnthropicMessagesRequest = AnthropicPrompt.extend({
  max_tokens: z.number().int().positive().describe('Most tokens to generate; clamped to the room the context leaves (never refused for it).'),
  stream: z.boolean().default(false),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stop_sequences: z.array(z.string()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
}).meta({ id: 'AnthropicMessagesRequest' });
export type AnthropicMessagesRequest = z.infer<typeof AnthropicMessagesRequest>;

export const AnthropicCountTokensRequest = AnthropicPrompt.meta({ id: 'AnthropicCountTokensRequest' });

const AnthropicUsage = z.object({
  input_tokens: z.number().int().describe("The whole prompt's tokens, as count_tokens reports them."),
  output_tokens: z.number().int(),
  cache_creation_input_tokens: z.number().int(),
  cache_read_input_tokens: z.number().int().describe('0: the prompt cache this server reuses is not billed apart, so input_tokens is the whole prompt.'),
});

const AnthropicOutputBlock = z.union([
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() }),
  z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.record(z.string(), z.unknown()) }),
]);

export const AnthropicStopReason = z.enum(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use']);

export const AnthropicMessageResponse = z
  .object({
    id: z.string(),
    type: z.literal('message'),
    role: z.literal('assistant'),
    model: z.string(),
    content: z.array(AnthropicOutputBlock),
    stop_reason: AnthropicStopReason.nullable(),
    stop_sequence: z.string().nullable(),
    usage: AnthropicUsage,
  })
  .meta({ id: 'AnthropicMessageResponse' });

/** One server-sent event of a streamed message; its `type` is also the SSE `event:` name. */
export const AnthropicStreamEvent = z
  .union([
    z.object({ type: z.literal('message_start'), message: AnthropicMessageResponse }),
    z.object({ type: z.literal('ping') }),
    z.object({
      type: z.literal('content_block_start'),
      index: z.number().int(),
      content_block: z.union([
        z.object({ type: z.literal('text'), text: z.literal('') }),
        z.object({ type: z.literal('thinking'), thinking: z.literal(''), signature: z.literal('') }),
        z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.object({}) }),
      ]),
    }),
    z.object({
      type: z.literal('content_block_delta'),
      index: z.number().int(),
      delta: z.union([
        z.object({ type: z.literal('text_delta'), text: z.string() }),
        z.object({ type: z.literal('thinking_delta'), thinking: z.string() }),
        z.object({ type: z.literal('input_json_delta'), partial_json: z.string() }),
      ]),
    }),
    z.object({ type: z.literal('content_block_stop'), index: z.number().int() }),
    z.object({
      type: z.literal('message_delta'),
      delta: z.object({ stop_reason: AnthropicStopReason, stop_sequence: z.string().nullable() }),
      usage: AnthropicUsage,
    }),
    z.object({ type: z.literal('message_stop') }),
    z.object({ type: z.literal('error'), error: z.object({ type: z.string(), message: z.string() }) }),
  ])
  .meta({ id: 'AnthropicStreamEvent' });

export const anthropicMessagesRoute = defineRoute({
  id: 'anthropic.messages',
  dialect: 'anthropic',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/messages',
  summary: "Anthropic's Messages API (Claude Code, the Anthropic SDKs)",
  description:
    'Text, tools (`tool_use` / `tool_result`), thinking, and streams with `message_start` at once, `ping` while the prompt is evaluated, contiguous block indices and usage. Errors are Anthropic-shaped (`{type:"error", error:{type, message}}`); a prompt over the context is a 400 `prompt is too long: N tokens > M maximum`. `x-api-key` and `Authorization: Bearer` are both accepted.',
  tags: ['anthropic'],
  request: AnthropicMessagesRequest,
  response: AnthropicMessageResponse,
  chunk: AnthropicStreamEvent,
});

export const anthropicCountTokensRoute = defineRoute({
  id: 'anthropic.count_tokens',
  dialect: 'anthropic',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/messages/count_tokens',
  summary: "The exact prompt tokens of an Anthropic messages request (the rendered prompt's, equal to its usage.input_tokens)",
  tags: ['anthropic'],
  request: AnthropicCountTokensRequest,
  response: z.object({ input_tokens: z.number().int() }).meta({ id: 'AnthropicCountTokensResponse' }),
});
