import { defaultGenerationParams } from '@tabagent/model-cache';
import { legacyGenerateAnswerOf, legacyGenerateOf } from './convert-legacy-generate.js';

describe('the legacy generate codec', () => {
  it("maps the extension's Hugging Face setting names onto the contract, puts system_prompt first and ignores what llama.cpp has no use for", () => {
    const { model, request } = legacyGenerateOf(
      {
        model_id: 'tiny',
        messages: [{ role: 'user', content: 'hello there' }],
        settings: { temperature: 0.2, max_new_tokens: 64, repetition_penalty: 1.3, top_k: 5, do_sample: true, num_beams: 1, system_prompt: 'Be brief.' },
      },
      defaultGenerationParams,
    );
    expect(model).toBe('tiny');
    expect(request.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hello there' },
    ]);
    expect(request).toMatchObject({ temperature: 0.2, maxTokens: 64, repeatPenalty: 1.3, topK: 5, topP: defaultGenerationParams.top_p });
  });

  it('takes the extension names first whatever their order in the settings (max_new_tokens over max_tokens), as params.set does', () => {
    const { request } = legacyGenerateOf(
      { messages: [{ role: 'user', content: 'x' }], settings: { max_tokens: 9, max_new_tokens: 5 } },
      defaultGenerationParams,
    );
    expect(request.maxTokens).toBe(5);
  });

  it('refuses a setting out of range, naming it as the extension sent it', () => {
    expect(() => legacyGenerateOf({ messages: [{ role: 'user', content: 'x' }], settings: { repetition_penalty: 99 } }, defaultGenerationParams)).toThrow(
      /^Invalid request for legacy\.generate: settings\.repetition_penalty: /,
    );
  });

  it('answers with the text, the stats in milliseconds and the usage', () => {
    const answer = legacyGenerateAnswerOf(
      {
        modelId: 'tiny',
        text: 'Hi',
        reasoning: '',
        finishReason: 'cancelled',
        toolCalls: [],
        promptTokens: 7,
        cachedPromptTokens: 2,
        completionTokens: 3,
        reasoningTokens: 0,
        timeToFirstTokenMs: 12,
        tokensPerSecond: 50,
        totalTimeMs: 60,
      },
      'r1',
    );
    expect(answer).toEqual({
      text: 'Hi',
      stats: { time_to_first_token: 12, tokens_per_second: 50, input_tokens: 7, output_tokens: 3, total_time: 60 },
      finish_reason: 'stop',
      model: 'tiny',
      request_id: 'r1',
      usage: {
        prompt_tokens: 7,
        completion_tokens: 3,
        total_tokens: 10,
        prompt_tokens_details: { cached_tokens: 2 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
  });
});
