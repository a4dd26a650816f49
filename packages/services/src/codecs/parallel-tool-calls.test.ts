import type { GenerationEvent, GenerationResult, RouteRequest } from '@tabagent/values';
import { anthropicEventsOf } from './anthropic/convert-to-anthropic-response.js';
import { openAiChatChunksOf } from './openai/convert-from-generation-result.js';
import { responsesEventsOf, type ResponsesObject } from './responses/convert-to-responses-output.js';

// Two tool calls in one turn, as an engine reports them: each call's start, then its argument
// fragments, then both whole. Every dialect must keep them apart (distinct indices, blocks or
// items) with the arguments of each intact: a shared index merges them into `{"x":1}{"y":2}`
// (ollama#15457, vercel/ai#14277). An engine that gives calls only whole is served too.

const calls = [
  { id: 'call_a', name: 'first', arguments: '{"x":1}' },
  { id: 'call_b', name: 'second', arguments: '{"y":2}' },
];

const result: GenerationResult = {
  modelId: 'm',
  text: '',
  reasoning: '',
  finishReason: 'tool_calls',
  toolCalls: calls,
  promptTokens: 10,
  cachedPromptTokens: 0,
  completionTokens: 7,
  reasoningTokens: 0,
  timeToFirstTokenMs: 1,
  tokensPerSecond: 10,
  totalTimeMs: 2,
};

async function* streamed(): AsyncGenerator<GenerationEvent> {
  yield { type: 'start', modelId: 'm' };
  yield { type: 'prompt', promptTokens: 10 };
  yield { type: 'tool-call-start', index: 0, id: 'call_a', name: 'first' };
  yield { type: 'tool-call-delta', index: 0, arguments: '{"x":' };
  yield { type: 'tool-call-delta', index: 0, arguments: '1}' };
  yield { type: 'tool-call-start', index: 1, id: 'call_b', name: 'second' };
  yield { type: 'tool-call-delta', index: 1, arguments: '{"y":2}' };
  yield { type: 'tool-call', index: 0, call: calls[0] as (typeof calls)[number] };
  yield { type: 'tool-call', index: 1, call: calls[1] as (typeof calls)[number] };
  yield { type: 'end', result };
}

/** The same calls from an engine that reports them only whole, at the end. */
async function* whole(): AsyncGenerator<GenerationEvent> {
  yield { type: 'start', modelId: 'm' };
  yield { type: 'prompt', promptTokens: 10 };
  yield { type: 'tool-call', index: 0, call: calls[0] as (typeof calls)[number] };
  yield { type: 'tool-call', index: 1, call: calls[1] as (typeof calls)[number] };
  yield { type: 'end', result };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe.each([
  ['streamed', streamed],
  ['whole', whole],
])('two tool calls in one turn (%s)', (_kind, events) => {
  it('OpenAI chat: distinct indices, id and name once each, arguments apart', async () => {
    const chunks = await collect(openAiChatChunksOf(events(), { id: 'c', created: 0, model: 'm', requestId: 'r' }));
    const assembled = new Map<number, { id: string; name: string; arguments: string; deltas: number }>();
    for (const chunk of chunks) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        const call = assembled.get(delta.index) ?? { id: '', name: '', arguments: '', deltas: 0 };
        if (delta.id !== undefined) {
          expect(call.id).toBe('');
          call.id = delta.id;
        }
        call.name += delta.function.name ?? '';
        call.arguments += delta.function.arguments ?? '';
        call.deltas += 1;
        assembled.set(delta.index, call);
      }
    }
    expect([...assembled.entries()].map(([index, call]) => [index, call.id, call.name, call.arguments])).toEqual([
      [0, 'call_a', 'first', '{"x":1}'],
      [1, 'call_b', 'second', '{"y":2}'],
    ]);
    expect(chunks[chunks.length - 1]?.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('Anthropic: one tool_use block each, contiguous indices, input_json_delta per block', async () => {
    const all = await collect(anthropicEventsOf(events(), 'msg_1', 'm', 60_000));
    const blocks = all.flatMap((event) => (event.type === 'content_block_start' ? [event] : []));
    expect(blocks.map((event) => [event.index, event.content_block])).toEqual([
      [0, { type: 'tool_use', id: 'toolu_a', name: 'first', input: {} }],
      [1, { type: 'tool_use', id: 'toolu_b', name: 'second', input: {} }],
    ]);
    const inputOf = (index: number): string =>
      all
        .map((event) =>
          event.type === 'content_block_delta' && event.index === index && event.delta.type === 'input_json_delta' ? event.delta.partial_json : '',
        )
        .join('');
    expect([inputOf(0), inputOf(1)]).toEqual(['{"x":1}', '{"y":2}']);
    expect(all.find((event) => event.type === 'message_delta')).toMatchObject({ delta: { stop_reason: 'tool_use' } });
  });

  it('Responses: one function_call item each, in order, arguments apart, and the same items in response.completed', async () => {
    let finished: ResponsesObject | null = null;
    const request = { stream: true, input: 'x' } as RouteRequest<'responses.create'>;
    const all = await collect(
      responsesEventsOf(events(), { id: 'resp_1', createdAt: 0, model: 'm', request }, 60_000, (response) => {
        finished = response;
      }),
    );
    expect(all.map((event) => event.sequence_number)).toEqual(all.map((_event, index) => index));
    const done = all.filter((event) => event.type === 'response.output_item.done').map((event) => event['item'] as Record<string, unknown>);
    expect(done.map((item) => [item['type'], item['call_id'], item['name'], item['arguments']])).toEqual([
      ['function_call', 'call_a', 'first', '{"x":1}'],
      ['function_call', 'call_b', 'second', '{"y":2}'],
    ]);
    const completed = all[all.length - 1] as unknown as { type: string; response: ResponsesObject };
    expect(completed.type).toBe('response.completed');
    expect(completed.response.output).toEqual(done);
    expect(finished).toBe(completed.response);
  });
});
