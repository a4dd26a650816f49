import { safeParseJson, type GeneratedToolCall, type GenerationEvent, type GenerationResult, type RouteResponse } from '@tabagent/values';

// The internal generation contract back into Ollama's answers: NDJSON lines while streaming, or
// the whole answer as one line, with Ollama's counters in nanoseconds.

type ChatLine = RouteResponse<'ollama.chat'>;
type GenerateLine = RouteResponse<'ollama.generate'>;
type OllamaToolCall = NonNullable<ChatLine['message']['tool_calls']>[number];

/** When the request started, and how long loading the model took (Ollama's `load_duration`). */
export interface OllamaTiming {
  /** `performance.now()` at the start of the request. */
  started: number;
  /** When the generation was started (after the load). */
  generationStarted: number;
  loadNs: number;
}

const nowIso = (): string => new Date().toISOString();
const nanoseconds = (fromMs: number, toMs: number): number => Math.max(0, Math.round((toMs - fromMs) * 1_000_000));

/** Ollama's `done_reason`: `length` when the budget or context ran out, else `stop` (a stopped or tool-calling generation included). */
export function mapOllamaDoneReason(result: GenerationResult): 'stop' | 'length' {
  return result.finishReason === 'length' ? 'length' : 'stop';
}

/** The contract's tool calls (arguments as JSON text) as Ollama's (arguments as an object, an index per call). */
export function ollamaToolCallsOf(calls: readonly GeneratedToolCall[]): OllamaToolCall[] {
  return calls.map((call, index) => {
    const parsed = safeParseJson(call.arguments === '' ? '{}' : call.arguments);
    const args: unknown = parsed.success ? parsed.value : {};
    return {
      id: call.id,
      function: {
        index,
        name: call.name,
        arguments: typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {},
      },
    };
  });
}

/** The last line's counters: the whole request, the load, the prompt (until the first token) and the decoding after it. */
function countersOf(result: GenerationResult, timing: OllamaTiming, endedAt: number) {
  const first = timing.generationStarted + (result.timeToFirstTokenMs ?? endedAt - timing.generationStarted);
  return {
    done_reason: mapOllamaDoneReason(result),
    total_duration: nanoseconds(timing.started, endedAt),
    load_duration: timing.loadNs,
    prompt_eval_count: result.promptTokens,
    prompt_eval_duration: nanoseconds(timing.started, first),
    eval_count: result.completionTokens,
    eval_duration: nanoseconds(first, endedAt),
  };
}

/** A whole chat answer (`stream: false`). */
export function ollamaChatAnswerOf(result: GenerationResult, name: string, timing: OllamaTiming): ChatLine {
  return {
    model: name,
    created_at: nowIso(),
    message: {
      role: 'assistant',
      content: result.text,
      ...(result.reasoning === '' ? {} : { thinking: result.reasoning }),
      ...(result.toolCalls.length === 0 ? {} : { tool_calls: ollamaToolCallsOf(result.toolCalls) }),
    },
    done: true,
    ...countersOf(result, timing, performance.now()),
  };
}

/** A whole generate answer (`stream: false`). */
export function ollamaGenerateAnswerOf(result: GenerationResult, name: string, timing: OllamaTiming): GenerateLine {
  return {
    model: name,
    created_at: nowIso(),
    response: result.text,
    ...(result.reasoning === '' ? {} : { thinking: result.reasoning }),
    done: true,
    ...countersOf(result, timing, performance.now()),
  };
}

/** The event stream as chat lines: one per text or reasoning delta, the tool calls in one line, then the last line with the counters. */
export async function* ollamaChatLinesOf(events: AsyncIterable<GenerationEvent>, name: string, timing: OllamaTiming): AsyncGenerator<ChatLine> {
  const line = (message: ChatLine['message']): ChatLine => ({ model: name, created_at: nowIso(), message, done: false });
  for await (const event of events) {
    if (event.type === 'text-delta') yield line({ role: 'assistant', content: event.text });
    else if (event.type === 'reasoning-delta') yield line({ role: 'assistant', content: '', thinking: event.text });
    else if (event.type === 'end') {
      if (event.result.toolCalls.length > 0) yield line({ role: 'assistant', content: '', tool_calls: ollamaToolCallsOf(event.result.toolCalls) });
      yield {
        model: name,
        created_at: nowIso(),
        message: { role: 'assistant', content: '' },
        done: true,
        ...countersOf(event.result, timing, performance.now()),
      };
    } else if (event.type === 'error') throw event.error;
  }
}

/** The event stream as generate lines. */
export async function* ollamaGenerateLinesOf(
  events: AsyncIterable<GenerationEvent>,
  name: string,
  timing: OllamaTiming,
  raw: boolean,
): AsyncGenerator<GenerateLine> {
  for await (const event of events) {
    if (event.type === 'text-delta' || (raw && event.type === 'reasoning-delta'))
      yield { model: name, created_at: nowIso(), response: event.text, done: false };
    else if (event.type === 'reasoning-delta') yield { model: name, created_at: nowIso(), response: '', thinking: event.text, done: false };
    else if (event.type === 'end')
      yield { model: name, created_at: nowIso(), response: '', done: true, ...countersOf(event.result, timing, performance.now()) };
    else if (event.type === 'error') throw event.error;
  }
}
