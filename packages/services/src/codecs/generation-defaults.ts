import type { GenerationChatMessage, SamplingSettings } from '@tabagent/values';
import type { GenerationParams } from '@tabagent/model-cache';

/**
 * Sampling as a dialect's request gave it, camel-cased, before the stored defaults
 * (`params.set`) fill what it left out. `maxTokens` -1 or null: until the model stops or the
 * context is full, whatever the default says.
 */
export interface RequestedSampling extends Omit<SamplingSettings, 'maxTokens'> {
  maxTokens?: number | null;
  cachePrompt?: boolean;
}

/** The request's sampling over the stored defaults: each codec's last step into the contract. */
export function samplingWithDefaults(requested: RequestedSampling, defaults: GenerationParams): SamplingSettings & { cachePrompt?: boolean } {
  const seed = requested.seed ?? defaults.seed;
  const budget = requested.maxTokens === undefined ? defaults.max_tokens : requested.maxTokens;
  return {
    temperature: requested.temperature ?? defaults.temperature,
    topP: requested.topP ?? defaults.top_p,
    topK: requested.topK ?? defaults.top_k,
    minP: requested.minP ?? defaults.min_p,
    repeatPenalty: requested.repeatPenalty ?? defaults.repeat_penalty,
    frequencyPenalty: requested.frequencyPenalty ?? defaults.frequency_penalty,
    presencePenalty: requested.presencePenalty ?? defaults.presence_penalty,
    seed: seed === null ? undefined : seed,
    maxTokens: budget === null || budget === -1 ? undefined : budget,
    stop: requested.stop ?? defaults.stop,
    ignoreEos: requested.ignoreEos,
    cachePrompt: requested.cachePrompt,
    logitBias: requested.logitBias,
  };
}

/** The stored system prompt goes first when the conversation has none of its own. */
export function withDefaultSystemPrompt(messages: GenerationChatMessage[], defaults: GenerationParams): GenerationChatMessage[] {
  if (defaults.system_prompt !== null && !messages.some((message) => message.role === 'system' || message.role === 'developer')) {
    return [{ role: 'system', content: defaults.system_prompt }, ...messages];
  }
  return messages;
}
