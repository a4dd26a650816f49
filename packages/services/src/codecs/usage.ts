import type { GenerationResult, RouteResponse } from '@tabagent/values';

/** The usage block of a result, as the OpenAI answers and the legacy generate reply both carry it (values' `Usage`). */
export function usageOf(result: GenerationResult): RouteResponse<'chat.completions'>['usage'] {
  return {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
    prompt_tokens_details: { cached_tokens: result.cachedPromptTokens },
    completion_tokens_details: { reasoning_tokens: result.reasoningTokens },
  };
}
