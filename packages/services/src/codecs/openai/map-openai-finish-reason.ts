import type { GenerationResult, RouteResponse } from '@tabagent/values';

/** OpenAI's finish reason of a result: a stopped generation is `stop`, with `tabagent.cancelled`. */
export function mapOpenAiFinishReason(result: GenerationResult): { finish_reason: 'stop' | 'length' | 'tool_calls'; cancelled: boolean } {
  return result.finishReason === 'cancelled' ? { finish_reason: 'stop', cancelled: true } : { finish_reason: result.finishReason, cancelled: false };
}

/** Marks an answer whose generation was stopped (`generation.stop`, halt, disconnect). */
export const cancelledInfo = { tabagent: { cancelled: true } } as const;

/** llama-server's `timings` of a result (the figures `stats.get` keeps). */
export function openAiTimingsOf(result: GenerationResult): NonNullable<RouteResponse<'chat.completions'>['timings']> {
  const promptMs = result.timeToFirstTokenMs;
  return {
    prompt_n: result.promptTokens,
    prompt_ms: promptMs,
    predicted_n: result.completionTokens,
    predicted_ms: Math.max(0, result.totalTimeMs - (promptMs ?? 0)),
    predicted_per_second: result.tokensPerSecond,
  };
}
