import type { GenerationEvent, GenerationResult, RouteChunk, RouteResponse } from '@tabagent/values';
import { usageOf } from '../usage.js';
import { cancelledInfo, mapOpenAiFinishReason, openAiTimingsOf } from './map-openai-finish-reason.js';

// The internal generation contract back into the OpenAI dialect: answers and stream chunks.

/** What every answer of one request carries: its id, creation time, model and request id. */
export interface OpenAiAnswerMeta {
  id: string;
  created: number;
  model: string;
  requestId: string;
}

type ChatDelta = RouteChunk<'chat.completions'>['choices'][number]['delta'];

/** What a stream chunk says about the end: on the last one (with the result) its finish reason, usage and the cancelled flag; null on the others. */
function chunkEndOf(result: GenerationResult | null) {
  if (result === null) return { finish_reason: null, tail: {} };
  const finish = mapOpenAiFinishReason(result);
  return { finish_reason: finish.finish_reason, tail: { usage: usageOf(result), ...(finish.cancelled ? cancelledInfo : {}) } };
}

function toolCallsOf(result: GenerationResult) {
  return result.toolCalls.map((call) => ({ id: call.id, type: 'function' as const, function: { name: call.name, arguments: call.arguments } }));
}

/** A whole chat completion. */
export function openAiChatResponseOf(result: GenerationResult, meta: OpenAiAnswerMeta): RouteResponse<'chat.completions'> {
  const finish = mapOpenAiFinishReason(result);
  const toolCalls = toolCallsOf(result);
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: toolCalls.length > 0 && result.text.length === 0 ? null : result.text,
          ...(result.reasoning.length > 0 ? { reasoning_content: result.reasoning } : {}),
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        finish_reason: finish.finish_reason,
        logprobs: null,
      },
    ],
    usage: usageOf(result),
    request_id: meta.requestId,
    timings: openAiTimingsOf(result),
    ...(finish.cancelled ? cancelledInfo : {}),
  };
}

/**
 * The event stream as chat completion chunks: the role first (once the prompt fits), a chunk per text or reasoning
 * delta, each tool call as it is generated (its first delta with `index`, `id`, `type` and the
 * name, then argument fragments with the `index` only, as llama-server streams them), then the
 * finish reason and usage.
 */
export async function* openAiChatChunksOf(events: AsyncIterable<GenerationEvent>, meta: OpenAiAnswerMeta): AsyncGenerator<RouteChunk<'chat.completions'>> {
  const chunk = (delta: ChatDelta, result: GenerationResult | null): RouteChunk<'chat.completions'> => {
    const end = chunkEndOf(result);
    const choice = { index: 0, delta, finish_reason: end.finish_reason, logprobs: null };
    return {
      id: meta.id,
      object: 'chat.completion.chunk',
      created: meta.created,
      model: meta.model,
      choices: [choice],
      request_id: meta.requestId,
      ...end.tail,
    };
  };
  const started = new Set<number>();
  let opened = false;
  for await (const event of events) {
    if (event.type === 'start' || event.type === 'error') {
      if (event.type === 'error') throw event.error;
      continue;
    }
    // The role goes first once the prompt is known to fit (at once, before it is evaluated), so a
    // prompt over the context is an HTTP 400, not a 200 whose stream fails.
    if (!opened) {
      opened = true;
      yield chunk({ role: 'assistant', content: '' }, null);
    }
    switch (event.type) {
      case 'text-delta':
        yield chunk({ content: event.text }, null);
        break;
      case 'reasoning-delta':
        yield chunk({ reasoning_content: event.text }, null);
        break;
      case 'tool-call-start':
        started.add(event.index);
        yield chunk({ tool_calls: [{ index: event.index, id: event.id, type: 'function', function: { name: event.name, arguments: '' } }] }, null);
        break;
      case 'tool-call-delta':
        yield chunk({ tool_calls: [{ index: event.index, function: { arguments: event.arguments } }] }, null);
        break;
      case 'tool-call':
        // A call an engine gives only whole (none streamed) goes out whole, in one delta.
        if (!started.has(event.index)) {
          const { call } = event;
          yield chunk({ tool_calls: [{ index: event.index, id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }] }, null);
        }
        break;
      case 'end':
        yield chunk({}, event.result);
        break;
      case 'prompt':
        break;
    }
  }
}

/** A whole text completion; `echo` is the prompt when the request asked for it back. */
export function openAiCompletionResponseOf(result: GenerationResult, meta: OpenAiAnswerMeta, echo: string): RouteResponse<'completions'> {
  const finish = mapOpenAiFinishReason(result);
  return {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text: echo + result.text, finish_reason: finish.finish_reason, logprobs: null }],
    usage: usageOf(result),
    request_id: meta.requestId,
    ...(finish.cancelled ? cancelledInfo : {}),
  };
}

/** The event stream as text completion chunks (the echoed prompt first, when asked for). */
export async function* openAiCompletionChunksOf(
  events: AsyncIterable<GenerationEvent>,
  meta: OpenAiAnswerMeta,
  echo: string,
): AsyncGenerator<RouteChunk<'completions'>> {
  const chunk = (text: string, result: GenerationResult | null): RouteChunk<'completions'> => {
    const end = chunkEndOf(result);
    const choice = { index: 0, text, finish_reason: end.finish_reason, logprobs: null };
    return { id: meta.id, object: 'text_completion', created: meta.created, model: meta.model, choices: [choice], request_id: meta.requestId, ...end.tail };
  };
  for await (const event of events) {
    if (event.type === 'start' && echo.length > 0) yield chunk(echo, null);
    else if (event.type === 'text-delta' || event.type === 'reasoning-delta') yield chunk(event.text, null);
    else if (event.type === 'end') yield chunk('', event.result);
    else if (event.type === 'error') throw event.error;
  }
}
