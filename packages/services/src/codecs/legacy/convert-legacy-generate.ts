import type { GenerationParams } from '@tabagent/model-cache';
import {
  InvalidRequestError,
  SamplingOptions,
  toFieldIssues,
  type ChatGenerationRequest,
  type GenerationChatMessage,
  type GenerationResult,
  type RouteRequest,
  type RouteResponse,
} from '@tabagent/values';
import { samplingWithDefaults, withDefaultSystemPrompt } from '../generation-defaults.js';

// The extension's legacy generate action into the internal generation contract and back, once:
// its InferenceSettings names (Hugging Face generation-config: max_new_tokens,
// repetition_penalty, ...) are read here and nowhere else.

type LegacyGenerate = RouteRequest<'legacy.generate'>;

/** Extension setting name -> this server's sampling name; keys not listed (do_sample, num_beams, ...) have no llama.cpp meaning and are ignored. */
const settingNames: Readonly<Record<string, string>> = {
  temperature: 'temperature',
  max_new_tokens: 'max_tokens',
  max_tokens: 'max_tokens',
  top_k: 'top_k',
  top_p: 'top_p',
  min_p: 'min_p',
  repetition_penalty: 'repeat_penalty',
  repeat_penalty: 'repeat_penalty',
  frequency_penalty: 'frequency_penalty',
  presence_penalty: 'presence_penalty',
  seed: 'seed',
  stop: 'stop',
};

const SettingValues = SamplingOptions.pick({
  temperature: true,
  max_tokens: true,
  top_k: true,
  top_p: true,
  min_p: true,
  repeat_penalty: true,
  frequency_penalty: true,
  presence_penalty: true,
  seed: true,
  stop: true,
});

/** The legacy request as the contract's chat request, over the stored defaults; `model` is the model it names, if any. */
export function legacyGenerateOf(body: LegacyGenerate, defaults: GenerationParams): { model: string | undefined; request: ChatGenerationRequest } {
  const given: Record<string, unknown> = {};
  const nameOf = new Map<string, string>();
  for (const [key, value] of Object.entries(body.settings ?? {})) {
    const name = settingNames[key];
    if (name === undefined || value === undefined || value === null || given[name] !== undefined) continue;
    given[name] = value;
    nameOf.set(name, key);
  }
  const parsed = SettingValues.safeParse(given);
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error).map((issue) => ({ ...issue, path: `settings.${nameOf.get(issue.path.split('.')[0] ?? '') ?? issue.path}` }));
    throw new InvalidRequestError(`Invalid request for legacy.generate: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`, { issues });
  }
  const values = parsed.data;
  const systemPrompt = body.settings?.['system_prompt'];
  const messages: GenerationChatMessage[] = [
    ...(typeof systemPrompt === 'string' && systemPrompt.length > 0 ? [{ role: 'system' as const, content: systemPrompt }] : []),
    ...body.messages.map((message): GenerationChatMessage => ({ role: message.role, content: message.content ?? '' })),
  ];
  return {
    model: body.model ?? body.model_id,
    request: {
      ...samplingWithDefaults(
        {
          temperature: values.temperature,
          maxTokens: values.max_tokens,
          topK: values.top_k,
          topP: values.top_p,
          minP: values.min_p,
          repeatPenalty: values.repeat_penalty,
          frequencyPenalty: values.frequency_penalty,
          presencePenalty: values.presence_penalty,
          seed: values.seed,
          stop: values.stop === undefined ? undefined : typeof values.stop === 'string' ? [values.stop] : values.stop,
        },
        defaults,
      ),
      messages: withDefaultSystemPrompt(messages, defaults),
    },
  };
}

/** The result as the extension's reply: the text, its stats (milliseconds, tokens per second) and usage. */
export function legacyGenerateAnswerOf(result: GenerationResult, requestId: string): RouteResponse<'legacy.generate'> {
  return {
    text: result.text,
    stats: {
      time_to_first_token: result.timeToFirstTokenMs ?? result.totalTimeMs,
      tokens_per_second: result.tokensPerSecond ?? 0,
      input_tokens: result.promptTokens,
      output_tokens: result.completionTokens,
      total_time: result.totalTimeMs,
    },
    // A stopped generation is a finished one here, as on the OpenAI routes.
    finish_reason: result.finishReason === 'cancelled' ? 'stop' : result.finishReason,
    model: result.modelId,
    request_id: requestId,
    usage: {
      prompt_tokens: result.promptTokens,
      completion_tokens: result.completionTokens,
      total_tokens: result.promptTokens + result.completionTokens,
      prompt_tokens_details: { cached_tokens: result.cachedPromptTokens },
      completion_tokens_details: { reasoning_tokens: result.reasoningTokens },
    },
  };
}
