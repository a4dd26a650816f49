import { randomUUID } from 'node:crypto';
import { TabAgentError, type GenerationChatMessage, type GenerationEvent, type GenerationResult, type RouteChunk, type RouteRequest } from '@tabagent/values';
import { withKeepAlive } from '../keep-alive-events.js';

// The internal generation contract back into OpenAI's Responses API: the response object, or its
// event stream with sequence numbers (protocols.md §B.3), as the strict accumulator of the openai
// client (7.x) and Codex's parser read them.

type CreateRequest = RouteRequest<'responses.create'>;
type StreamEvent = RouteChunk<'responses.create'>;

/** An id in OpenAI's style: a prefix and 24 hex digits. */
export function responsesId(prefix: 'resp' | 'msg' | 'fc' | 'rs'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

export type ResponsesMessageItem = {
  type: 'message';
  id: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  role: 'assistant';
  content: { type: 'output_text'; text: string; annotations: never[]; logprobs: never[] }[];
};
export type ResponsesFunctionCallItem = {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed' | 'incomplete';
};
export type ResponsesReasoningItem = {
  type: 'reasoning';
  id: string;
  summary: { type: 'summary_text'; text: string }[];
};
export type ResponsesOutput = ResponsesMessageItem | ResponsesFunctionCallItem | ResponsesReasoningItem;

/** The response object, as `GET /v1/responses/{id}` returns it too. */
export type ResponsesObject = {
  id: string;
  object: 'response';
  created_at: number;
  status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
  model: string;
  output: ResponsesOutput[];
  usage: {
    input_tokens: number;
    input_tokens_details: { cached_tokens: number };
    output_tokens: number;
    output_tokens_details: { reasoning_tokens: number };
    total_tokens: number;
  } | null;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' } | null;
  [field: string]: unknown;
};

/** What every response object of one request carries: its id, time, model, and the request's settings echoed. */
export interface ResponsesMeta {
  id: string;
  createdAt: number;
  model: string;
  request: CreateRequest;
}

/** The request's settings as a response echoes them (`instructions`, `tools`, `text`, ...). */
function echoOf(request: CreateRequest): Record<string, unknown> {
  return {
    instructions: request.instructions ?? null,
    tools: request.tools ?? [],
    tool_choice: request.tool_choice ?? 'auto',
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: request.previous_response_id ?? null,
    store: request.store ?? true,
    metadata: request.metadata ?? {},
    text: { format: request.text?.format ?? { type: 'text' } },
    reasoning: { effort: request.reasoning?.effort ?? null, summary: request.reasoning?.summary ?? null },
    max_output_tokens: request.max_output_tokens ?? null,
    temperature: request.temperature ?? null,
    top_p: request.top_p ?? null,
    truncation: 'disabled',
    background: false,
  };
}

function usageOf(result: GenerationResult): NonNullable<ResponsesObject['usage']> {
  return {
    input_tokens: result.promptTokens,
    input_tokens_details: { cached_tokens: result.cachedPromptTokens },
    output_tokens: result.completionTokens,
    output_tokens_details: { reasoning_tokens: result.reasoningTokens },
    total_tokens: result.promptTokens + result.completionTokens,
  };
}

/** A response object in a state, with what was output so far. */
export function responsesObjectOf(
  meta: ResponsesMeta,
  status: ResponsesObject['status'],
  output: ResponsesOutput[],
  result: GenerationResult | null,
  error: ResponsesObject['error'] = null,
): ResponsesObject {
  return {
    id: meta.id,
    object: 'response',
    created_at: meta.createdAt,
    status,
    model: meta.model,
    output,
    usage: result === null ? null : usageOf(result),
    error,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    ...echoOf(meta.request),
  };
}

function statusOf(result: GenerationResult): 'completed' | 'incomplete' {
  return result.finishReason === 'length' ? 'incomplete' : 'completed';
}

function messageItem(id: string, text: string, status: ResponsesMessageItem['status']): ResponsesMessageItem {
  return { type: 'message', id, status, role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] };
}

/** The output items of a whole result: reasoning, then the message (when there is text, or nothing else), then each function call. */
export function responsesOutputOf(result: GenerationResult): ResponsesOutput[] {
  const output: ResponsesOutput[] = [];
  const status = statusOf(result);
  if (result.reasoning.length > 0) output.push({ type: 'reasoning', id: responsesId('rs'), summary: [{ type: 'summary_text', text: result.reasoning }] });
  if (result.text.length > 0 || result.toolCalls.length === 0) output.push(messageItem(responsesId('msg'), result.text, status));
  for (const call of result.toolCalls) {
    output.push({ type: 'function_call', id: responsesId('fc'), call_id: call.id, name: call.name, arguments: call.arguments, status: 'completed' });
  }
  return output;
}

/** A whole response. */
export function responsesResponseOf(result: GenerationResult, meta: ResponsesMeta): ResponsesObject {
  return responsesObjectOf(meta, statusOf(result), responsesOutputOf(result), result);
}

/** The output as the assistant turn a later `previous_response_id` request continues from. */
export function assistantTurnOf(output: readonly ResponsesOutput[]): GenerationChatMessage {
  let text = '';
  let reasoning = '';
  const toolCalls: { id: string; name: string; arguments: string }[] = [];
  for (const item of output) {
    if (item.type === 'message') text += item.content.map((part) => part.text).join('');
    else if (item.type === 'reasoning') reasoning += item.summary.map((part) => part.text).join('');
    else toolCalls.push({ id: item.call_id, name: item.name, arguments: item.arguments });
  }
  return {
    role: 'assistant',
    content: text.length === 0 && toolCalls.length > 0 ? null : text,
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    ...(reasoning.length > 0 ? { reasoning } : {}),
  };
}

/** The error object of a failed response: Codex knows `context_length_exceeded` (it compacts the conversation). */
function failureOf(error: unknown): { code: string; message: string } {
  if (TabAgentError.isInstance(error)) return { code: error.code === 'internal_error' ? 'server_error' : error.code, message: error.message };
  return { code: 'server_error', message: 'The generation failed; see the server log' };
}

/**
 * The event stream as the Responses API's: `response.created` and `response.in_progress` once the
 * prompt is known to fit (at once, before it is evaluated), `keepalive` while nothing else comes,
 * each output item in order (added, its deltas, done), then `response.completed` (or
 * `response.incomplete`) with the whole output and usage; every event with the next
 * `sequence_number`. A failure before the start is thrown (an HTTP error); after it, the stream
 * ends with `response.failed`. `onFinished` gets the final response (for the store).
 */
export async function* responsesEventsOf(
  events: AsyncIterable<GenerationEvent>,
  meta: ResponsesMeta,
  keepAliveMs: number,
  onFinished: (response: ResponsesObject) => void,
): AsyncGenerator<StreamEvent> {
  let sequence = 0;
  const event = (type: string, fields: Record<string, unknown>): StreamEvent => ({ type, sequence_number: sequence++, ...fields });
  const output: ResponsesOutput[] = [];
  let open: { item: ResponsesOutput; callIndex?: number; text: string } | null = null;
  let started = false;
  const streamedCalls = new Set<number>();

  const close = function* (status: 'completed' | 'incomplete'): Generator<StreamEvent> {
    if (open === null) return;
    const { item, text } = open;
    const output_index = output.length - 1;
    if (item.type === 'message') {
      const part = { type: 'output_text' as const, text, annotations: [], logprobs: [] };
      item.content = [part];
      item.status = status;
      yield event('response.output_text.done', { item_id: item.id, output_index, content_index: 0, text, logprobs: [] });
      yield event('response.content_part.done', { item_id: item.id, output_index, content_index: 0, part });
    } else if (item.type === 'reasoning') {
      const part = { type: 'summary_text' as const, text };
      item.summary = [part];
      yield event('response.reasoning_summary_text.done', { item_id: item.id, output_index, summary_index: 0, text });
      yield event('response.reasoning_summary_part.done', { item_id: item.id, output_index, summary_index: 0, part });
    } else {
      item.arguments = text;
      item.status = 'completed';
      yield event('response.function_call_arguments.done', { item_id: item.id, output_index, name: item.name, arguments: text });
    }
    yield event('response.output_item.done', { output_index, item: structuredClone(item) });
    open = null;
  };

  const openItem = function* (item: ResponsesOutput, callIndex?: number): Generator<StreamEvent> {
    yield* close('completed');
    output.push(item);
    open = { item, text: '', ...(callIndex === undefined ? {} : { callIndex }) };
    const output_index = output.length - 1;
    yield event('response.output_item.added', { output_index, item: structuredClone(item) });
    if (item.type === 'message') {
      yield event('response.content_part.added', {
        item_id: item.id,
        output_index,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      });
    } else if (item.type === 'reasoning') {
      yield event('response.reasoning_summary_part.added', { item_id: item.id, output_index, summary_index: 0, part: { type: 'summary_text', text: '' } });
    }
  };

  /** Appends text to the open item of a type, opening one first when another (or none) is open. */
  const append = function* (kind: 'message' | 'reasoning', text: string): Generator<StreamEvent> {
    if (open?.item.type !== kind) {
      yield* openItem(
        kind === 'message' ? { ...messageItem(responsesId('msg'), '', 'in_progress'), content: [] } : { type: 'reasoning', id: responsesId('rs'), summary: [] },
      );
    }
    const current = open as unknown as { item: ResponsesOutput; text: string };
    current.text += text;
    const fields = { item_id: current.item.id, output_index: output.length - 1 };
    yield kind === 'message'
      ? event('response.output_text.delta', { ...fields, content_index: 0, delta: text, logprobs: [] })
      : event('response.reasoning_summary_text.delta', { ...fields, summary_index: 0, delta: text });
  };

  for await (const generated of withKeepAlive(events, keepAliveMs)) {
    if (generated.type === 'error') {
      if (!started) throw generated.error;
      yield* close('incomplete');
      const failed = responsesObjectOf(meta, 'failed', output, null, failureOf(generated.error));
      yield event('response.failed', { response: failed });
      return;
    }
    if (generated.type === 'keep-alive') {
      if (started) yield event('keepalive', {});
      continue;
    }
    if (generated.type === 'start') continue;
    if (!started) {
      started = true;
      yield event('response.created', { response: responsesObjectOf(meta, 'in_progress', [], null) });
      yield event('response.in_progress', { response: responsesObjectOf(meta, 'in_progress', [], null) });
    }
    switch (generated.type) {
      case 'prompt':
        break;
      case 'reasoning-delta':
        yield* append('reasoning', generated.text);
        break;
      case 'text-delta':
        yield* append('message', generated.text);
        break;
      case 'tool-call-start':
        streamedCalls.add(generated.index);
        yield* openItem(
          { type: 'function_call', id: responsesId('fc'), call_id: generated.id, name: generated.name, arguments: '', status: 'in_progress' },
          generated.index,
        );
        break;
      case 'tool-call-delta': {
        const current = open as { item: ResponsesOutput; callIndex?: number; text: string } | null;
        if (current !== null && current.callIndex === generated.index) {
          current.text += generated.arguments;
          yield event('response.function_call_arguments.delta', { item_id: current.item.id, output_index: output.length - 1, delta: generated.arguments });
        }
        break;
      }
      case 'tool-call':
        // A call an engine gives only whole: one item, its arguments in one delta.
        if (!streamedCalls.has(generated.index)) {
          const { call } = generated;
          yield* openItem(
            { type: 'function_call', id: responsesId('fc'), call_id: call.id, name: call.name, arguments: '', status: 'in_progress' },
            generated.index,
          );
          const current = open as unknown as { item: ResponsesOutput; text: string };
          current.text = call.arguments;
          yield event('response.function_call_arguments.delta', { item_id: current.item.id, output_index: output.length - 1, delta: call.arguments });
        }
        break;
      case 'end': {
        const status = statusOf(generated.result);
        // A response with nothing in it still has its (empty) message, as OpenAI's do.
        if (output.length === 0) yield* append('message', '');
        yield* close(status);
        const final = responsesObjectOf(meta, status, output, generated.result);
        onFinished(final);
        yield event(status === 'completed' ? 'response.completed' : 'response.incomplete', { response: final });
        return;
      }
    }
  }
}
