import type { GenerationParams } from '@tabagent/model-cache';
import {
  type AnthropicContentBlock,
  type ChatGenerationRequest,
  type GenerationChatMessage,
  type GenerationContentPart,
  type GenerationTool,
  type GenerationToolChoice,
  type ReasoningSetting,
  type RouteRequest,
} from '@tabagent/values';
import { samplingWithDefaults, withDefaultSystemPrompt } from '../generation-defaults.js';
import { refuseField } from '../refuse-field.js';

// Anthropic's Messages API into the internal generation contract: every Anthropic field name is
// read here and nowhere else. What Claude Code sends that a local model has no use for (cache
// control, metadata, context management, server tools, its billing header) is dropped, never
// refused (protocols.md §A.3).

type MessagesRequest = RouteRequest<'anthropic.messages'>;
type PromptRequest = RouteRequest<'anthropic.count_tokens'>;

/**
 * Claude Code's attribution block: a system text that changes on every request (a per-request
 * hash), which would defeat the prompt cache; vLLM drops it too.
 */
const billingHeaderPrefix = 'x-anthropic-billing-header';

/** Server-side blocks of Anthropic's own tools (web search, code execution, MCP connectors): records of work this server never does. */
function isServerToolRecord(type: string): boolean {
  return type !== 'tool_use' && type !== 'tool_result' && (type.endsWith('_tool_use') || type.endsWith('_tool_result'));
}

/** An image block as the contract's image part (a data URL for base64 data). */
function imagePartOf(block: Extract<AnthropicContentBlock, { type: 'image' }>): GenerationContentPart {
  const source = block.source;
  return { type: 'image', url: source.type === 'base64' ? `data:${source.media_type};base64,${source.data}` : source.url };
}

/** Text and image parts as content: plain text when there are no images (what templates render best). */
function contentOf(parts: GenerationContentPart[]): string | GenerationContentPart[] {
  return parts.every((part) => part.type === 'text') ? parts.map((part) => (part as { text: string }).text).join('') : parts;
}

/** A tool result's content (string, or text and image blocks); an error result says so in its text. */
function toolResultContentOf(block: Extract<AnthropicContentBlock, { type: 'tool_result' }>): string | GenerationContentPart[] {
  const parts: GenerationContentPart[] =
    block.content === undefined
      ? []
      : typeof block.content === 'string'
        ? [{ type: 'text', text: block.content }]
        : block.content.map((part) => (part.type === 'text' ? { type: 'text', text: part.text } : imagePartOf(part)));
  if (block.is_error === true) parts.unshift({ type: 'text', text: 'Error: ' });
  return contentOf(parts);
}

/**
 * One Anthropic message as the contract's messages: a user turn's tool results become `tool`
 * messages (before its other content, as Anthropic orders them); an assistant turn's `tool_use`
 * blocks become its tool calls and its `thinking` its reasoning (`redacted_thinking` carries
 * nothing readable and is dropped).
 */
function messagesOf(message: MessagesRequest['messages'][number], index: number): GenerationChatMessage[] {
  if (typeof message.content === 'string') return [{ role: message.role, content: message.content }];
  const out: GenerationChatMessage[] = [];
  const parts: GenerationContentPart[] = [];
  const toolCalls: { id: string; name: string; arguments: string }[] = [];
  let reasoning = '';
  for (const [blockIndex, block] of message.content.entries()) {
    const path = `messages.${index}.content.${blockIndex}`;
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: (block as { text: string }).text });
        break;
      case 'image':
        parts.push(imagePartOf(block as Extract<AnthropicContentBlock, { type: 'image' }>));
        break;
      case 'tool_use': {
        if (message.role !== 'assistant') refuseField(path, 'tool_use blocks belong to assistant messages');
        const call = block as Extract<AnthropicContentBlock, { type: 'tool_use' }>;
        toolCalls.push({ id: call.id, name: call.name, arguments: JSON.stringify(call.input) });
        break;
      }
      case 'tool_result': {
        if (message.role !== 'user') refuseField(path, 'tool_result blocks belong to user messages');
        const result = block as Extract<AnthropicContentBlock, { type: 'tool_result' }>;
        out.push({ role: 'tool', toolCallId: result.tool_use_id, content: toolResultContentOf(result) });
        break;
      }
      case 'thinking':
        reasoning += (block as { thinking: string }).thinking;
        break;
      case 'redacted_thinking':
        break;
      case 'document':
        refuseField(path, 'document blocks (PDF, plain-text sources) are not supported: send the text as a text block');
        break;
      default:
        if (!isServerToolRecord(block.type)) refuseField(path, `content blocks of type "${block.type}" are not supported`);
    }
  }
  if (message.role === 'assistant') {
    out.push({
      role: 'assistant',
      content: parts.length === 0 ? null : contentOf(parts),
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(reasoning.length > 0 ? { reasoning } : {}),
    });
  } else if (parts.length > 0 || out.length === 0) {
    out.push({ role: message.role, content: contentOf(parts) });
  }
  return out;
}

/** The system prompt: a string or text blocks, less Claude Code's billing header. */
function systemOf(system: PromptRequest['system']): string | undefined {
  if (system === undefined) return undefined;
  if (typeof system === 'string') return system;
  const texts = system.map((block) => block.text).filter((text) => !text.startsWith(billingHeaderPrefix));
  return texts.length === 0 ? undefined : texts.join('\n\n');
}

/** Client tools (with an input schema); server tools (`web_search_20250305`, `bash_20250124`, ...) are skipped: this server runs none. */
function toolsOf(tools: PromptRequest['tools']): GenerationTool[] | undefined {
  if (tools === undefined) return undefined;
  return tools
    .filter((tool) => (tool.type === undefined || tool.type === 'custom') && tool.input_schema !== undefined)
    .map((tool) => ({ name: tool.name, ...(tool.description === undefined ? {} : { description: tool.description }), parameters: tool.input_schema }));
}

function toolChoiceOf(choice: PromptRequest['tool_choice']): GenerationToolChoice | undefined {
  if (choice === undefined) return undefined;
  switch (choice.type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool':
      if (choice.name === undefined) refuseField('tool_choice.name', 'tool_choice of type "tool" needs a name');
      return { name: choice.name };
  }
}

/**
 * Thinking as the contract's reasoning setting: `disabled` closes the thought at once; `enabled`
 * and `adaptive` let a reasoning model think as it does (and cost a model that does not think
 * nothing: never a 400, which Claude Code's `thinking` would otherwise get). An effort
 * (`output_config.effort`) is given to models that take one.
 */
function reasoningOf(request: PromptRequest): ReasoningSetting | undefined {
  if (request.thinking?.type === 'disabled') return 'off';
  const effort = request.output_config?.effort;
  if (effort === 'low' || effort === 'medium' || effort === 'high') return effort;
  if (effort === 'max') return 'high';
  return undefined;
}

/** The prompt part of a request (what count_tokens measures): messages, system, tools and reasoning. */
export function anthropicPromptOf(request: PromptRequest, defaults: GenerationParams): ChatGenerationRequest {
  const system = systemOf(request.system);
  const messages = request.messages.flatMap((message, index) => messagesOf(message, index));
  const tools = toolsOf(request.tools);
  return {
    ...samplingWithDefaults({ maxTokens: null }, defaults),
    messages: withDefaultSystemPrompt(system === undefined ? messages : [{ role: 'system', content: system }, ...messages], defaults),
    ...(tools === undefined || tools.length === 0 ? {} : { tools }),
    toolChoice: toolChoiceOf(request.tool_choice),
    ...(request.tool_choice?.disable_parallel_tool_use === true ? { parallelToolCalls: false } : {}),
    reasoning: reasoningOf(request),
  };
}

/** A messages request as the contract's chat request, over the stored defaults. */
export function anthropicMessagesRequestOf(request: MessagesRequest, defaults: GenerationParams): ChatGenerationRequest {
  return {
    ...anthropicPromptOf(request, defaults),
    ...samplingWithDefaults(
      {
        temperature: request.temperature,
        topP: request.top_p,
        topK: request.top_k,
        // Clamped by the engine to the room the context leaves: Claude Code asks for 32,000.
        maxTokens: request.max_tokens,
        stop: request.stop_sequences,
      },
      defaults,
    ),
  };
}
