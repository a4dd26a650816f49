import { randomUUID } from 'node:crypto';
import { ContextLengthExceededError, TabAgentError, type GenerationEvent, type GenerationResult, type RouteChunk, type RouteResponse } from '@tabagent/values';
import { withKeepAlive } from '../keep-alive-events.js';

// The internal generation contract back into Anthropic's Messages API: a whole message, or its
// event stream (protocols.md §A.3).

type AnthropicMessage = RouteResponse<'anthropic.messages'>;
type AnthropicEvent = RouteChunk<'anthropic.messages'>;
type StopReason = NonNullable<AnthropicMessage['stop_reason']>;
type Usage = AnthropicMessage['usage'];

/** A message id unique per call: Claude Code runs a title request beside the main turn. */
export function anthropicMessageId(): string {
  return `msg_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

/** Our tool call ids (`call_…`) in Anthropic's form (`toolu_…`); the client sends them back as `tool_use_id`. */
function toolUseId(id: string): string {
  return id.startsWith('call_') ? `toolu_${id.slice('call_'.length)}` : id;
}

function stopReasonOf(result: GenerationResult): StopReason {
  if (result.toolCalls.length > 0) return 'tool_use';
  return result.finishReason === 'length' ? 'max_tokens' : 'end_turn';
}

/** input_tokens is the whole prompt (what count_tokens gives for the same request); no cache is billed apart. */
function usageOf(inputTokens: number, outputTokens: number): Usage {
  return { input_tokens: inputTokens, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
}

function parseInput(argumentsText: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(argumentsText);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** A whole message: thinking first, then the text, then the tool calls. */
export function anthropicMessageOf(result: GenerationResult, id: string, model: string): AnthropicMessage {
  const content: AnthropicMessage['content'] = [];
  if (result.reasoning.length > 0) content.push({ type: 'thinking', thinking: result.reasoning, signature: '' });
  if (result.text.length > 0) content.push({ type: 'text', text: result.text });
  for (const call of result.toolCalls) content.push({ type: 'tool_use', id: toolUseId(call.id), name: call.name, input: parseInput(call.arguments) });
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReasonOf(result),
    stop_sequence: null,
    usage: usageOf(result.promptTokens, result.completionTokens),
  };
}

/**
 * Anthropic's wording for a prompt over the context, which Claude Code knows (it offers /compact):
 * `prompt is too long: N tokens > M maximum`. Other errors pass unchanged.
 */
export function anthropicErrorOf(error: unknown): unknown {
  if (!isContextOverflow(error)) return error;
  const details = error.details ?? {};
  const prompt = typeof details['prompt_tokens'] === 'number' ? details['prompt_tokens'] : undefined;
  const context = typeof details['context_size'] === 'number' ? details['context_size'] : undefined;
  if (prompt === undefined || context === undefined) return error;
  return new ContextLengthExceededError(`prompt is too long: ${prompt} tokens > ${context} maximum`, { details, cause: error });
}

function isContextOverflow(error: unknown): error is TabAgentError {
  return TabAgentError.isInstance(error) && error.code === 'context_length_exceeded';
}

/** Anthropic's error event type for a failure after the stream started. */
function streamErrorOf(error: unknown): AnthropicEvent {
  const message = error instanceof Error ? error.message : 'The generation failed';
  return { type: 'error', error: { type: isContextOverflow(error) ? 'invalid_request_error' : 'api_error', message } };
}

type Block = { type: 'text' } | { type: 'thinking' } | { type: 'tool_use'; callIndex: number };

/**
 * The event stream as Anthropic's: `message_start` once the prompt is known to fit (before it is
 * evaluated: at once, with the exact input token count), `ping` while nothing else comes, blocks
 * with contiguous indices from 0 (the open block is closed before the next opens: thinking, text,
 * each tool call with its arguments as `input_json_delta` fragments), then `message_delta` with
 * the stop reason and usage, and `message_stop`. A failure before the start is thrown (an HTTP
 * error); after it, an `error` event ends the stream.
 */
export async function* anthropicEventsOf(
  events: AsyncIterable<GenerationEvent>,
  id: string,
  model: string,
  keepAliveMs: number,
): AsyncGenerator<AnthropicEvent> {
  let started = false;
  let inputTokens = 0;
  let outputSeen = false;
  // In an object: the generator closures below change it, which narrowing of a `let` would not see.
  const state: { open: Block | null; index: number } = { open: null, index: -1 };
  const streamedCalls = new Set<number>();
  const close = function* (): Generator<AnthropicEvent> {
    if (state.open === null) return;
    yield { type: 'content_block_stop', index: state.index };
    state.open = null;
  };
  const openBlock = function* (block: Block, start: Extract<AnthropicEvent, { type: 'content_block_start' }>['content_block']): Generator<AnthropicEvent> {
    yield* close();
    state.index += 1;
    state.open = block;
    yield { type: 'content_block_start', index: state.index, content_block: start };
  };
  for await (const event of withKeepAlive(events, keepAliveMs)) {
    if (event.type === 'error') {
      const error = anthropicErrorOf(event.error);
      if (!started) throw error;
      yield* close();
      yield streamErrorOf(error);
      return;
    }
    if (event.type === 'keep-alive') {
      if (started) yield { type: 'ping' };
      continue;
    }
    if (event.type === 'start') continue;
    if (!started) {
      // An engine that reports no prompt event: the stream starts with its first output.
      inputTokens = event.type === 'prompt' ? event.promptTokens : 0;
      started = true;
      yield {
        type: 'message_start',
        message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: usageOf(inputTokens, 0) },
      };
      if (event.type === 'prompt') continue;
    }
    switch (event.type) {
      case 'prompt':
        break;
      case 'reasoning-delta':
        outputSeen = true;
        if (state.open?.type !== 'thinking') yield* openBlock({ type: 'thinking' }, { type: 'thinking', thinking: '', signature: '' });
        yield { type: 'content_block_delta', index: state.index, delta: { type: 'thinking_delta', thinking: event.text } };
        break;
      case 'text-delta':
        outputSeen = true;
        if (state.open?.type !== 'text') yield* openBlock({ type: 'text' }, { type: 'text', text: '' });
        yield { type: 'content_block_delta', index: state.index, delta: { type: 'text_delta', text: event.text } };
        break;
      case 'tool-call-start':
        outputSeen = true;
        streamedCalls.add(event.index);
        yield* openBlock({ type: 'tool_use', callIndex: event.index }, { type: 'tool_use', id: toolUseId(event.id), name: event.name, input: {} });
        break;
      case 'tool-call-delta':
        if (state.open?.type === 'tool_use' && state.open.callIndex === event.index) {
          yield { type: 'content_block_delta', index: state.index, delta: { type: 'input_json_delta', partial_json: event.arguments } };
        }
        break;
      case 'tool-call':
        // A call an engine gives only whole: one block with its arguments in one fragment.
        if (!streamedCalls.has(event.index)) {
          outputSeen = true;
          yield* openBlock({ type: 'tool_use', callIndex: event.index }, { type: 'tool_use', id: toolUseId(event.call.id), name: event.call.name, input: {} });
          yield { type: 'content_block_delta', index: state.index, delta: { type: 'input_json_delta', partial_json: event.call.arguments } };
        }
        break;
      case 'end': {
        yield* close();
        const result = event.result;
        // A message with no content at all still has one (empty) text block, as Anthropic's do.
        if (!outputSeen) {
          yield { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } };
          yield { type: 'content_block_stop', index: 0 };
        }
        yield {
          type: 'message_delta',
          delta: { stop_reason: stopReasonOf(result), stop_sequence: null },
          usage: usageOf(result.promptTokens, result.completionTokens),
        };
        yield { type: 'message_stop' };
        return;
      }
    }
  }
}
