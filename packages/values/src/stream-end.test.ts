import { GenerationRunController, generationEvents } from './generation/generation-run.js';
import type { GenerationDelta, GenerationResult } from './generation/generation-contract.js';
import { onStreamEnd } from './stream-end.js';

async function* numbers(count: number, failAt?: number): AsyncGenerator<number> {
  for (let index = 0; index < count; index += 1) {
    if (index === failAt) throw new Error('boom');
    yield index;
  }
}

describe('onStreamEnd', () => {
  it('calls end once with how the stream ended: finished, failed, or closed (even before its first chunk)', async () => {
    const outcomes: string[] = [];
    const finished = onStreamEnd(numbers(3), (outcome) => outcomes.push(outcome));
    const seen: number[] = [];
    for await (const value of finished) seen.push(value);
    expect(seen).toEqual([0, 1, 2]);
    await finished.next();
    const failed = onStreamEnd(numbers(3, 1), (outcome, error) => outcomes.push(`${outcome}:${(error as Error).message}`));
    await expect(
      (async () => {
        for await (const _ of failed);
      })(),
    ).rejects.toThrow('boom');
    const closed = onStreamEnd(numbers(3), (outcome) => outcomes.push(outcome));
    await closed.return?.();
    await closed.return?.();
    expect(outcomes).toEqual(['finished', 'failed:boom', 'closed']);
  });
});

describe('generationEvents', () => {
  const result = (toolCalls: GenerationResult['toolCalls']): GenerationResult => ({
    modelId: 'm',
    text: 'Hi',
    reasoning: 'so',
    finishReason: toolCalls.length > 0 ? 'tool_calls' : 'stop',
    toolCalls,
    promptTokens: 3,
    cachedPromptTokens: 0,
    completionTokens: 2,
    reasoningTokens: 1,
    timeToFirstTokenMs: 1,
    tokensPerSecond: 10,
    totalTimeMs: 5,
  });

  it('gives start, the deltas in order, the tool calls, then end with the result', async () => {
    const final = result([{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }]);
    const run = new GenerationRunController<GenerationResult, GenerationDelta>(async (push) => {
      push({ kind: 'reasoning', text: 'so' });
      push({ kind: 'content', text: 'Hi' });
      return final;
    });
    const events = [];
    for await (const event of generationEvents('m', run)) events.push(event);
    expect(events).toEqual([
      { type: 'start', modelId: 'm' },
      { type: 'reasoning-delta', text: 'so' },
      { type: 'text-delta', text: 'Hi' },
      { type: 'tool-call', index: 0, call: final.toolCalls[0] },
      { type: 'end', result: final },
    ]);
  });

  it('ends with an error event when the generation fails', async () => {
    const failure = new Error('model gone');
    const run = new GenerationRunController<GenerationResult, GenerationDelta>(async (push) => {
      push({ kind: 'content', text: 'H' });
      await new Promise((resolve) => setImmediate(resolve));
      throw failure;
    });
    const events = [];
    for await (const event of generationEvents('m', run)) events.push(event);
    expect(events).toEqual([
      { type: 'start', modelId: 'm' },
      { type: 'text-delta', text: 'H' },
      { type: 'error', error: failure },
    ]);
  });
});
