import type { GenerationParams } from '@tabagent/model-cache';
import {
  InvalidRequestError,
  SamplingOptions,
  inferenceSettingNames,
  mapInferenceSettings,
  toFieldIssues,
  type ChatGenerationRequest,
  type GenerationChatMessage,
  type GenerationResult,
  type RouteRequest,
  type RouteResponse,
} from '@tabagent/values';
import { samplingWithDefaults, withDefaultSystemPrompt } from '../generation-defaults.js';
import { usageOf } from '../usage.js';

// The extension's legacy generate action into the internal generation contract and back, once:
// its InferenceSettings names (Hugging Face generation-config: max_new_tokens,
// repetition_penalty, ...) are read here and nowhere else.

type LegacyGenerate = RouteRequest<'legacy.generate'>;

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
  // The extension's names in this server's, in the table's order of precedence (max_new_tokens before max_tokens).
  const { system_prompt: systemPrompt, ...given } = mapInferenceSettings(body.settings);
  const parsed = SettingValues.safeParse(given);
  if (!parsed.success) {
    // Named as the extension sent it.
    const sentAs = (name: string): string => inferenceSettingNames.find(([from, to]) => to === name && body.settings?.[from] !== undefined)?.[0] ?? name;
    const issues = toFieldIssues(parsed.error).map((issue) => ({ ...issue, path: `settings.${sentAs(issue.path.split('.')[0] ?? '')}` }));
    throw new InvalidRequestError(`Invalid request for legacy.generate: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`, { issues });
  }
  const values = parsed.data;
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
    usage: usageOf(result),
  };
}
