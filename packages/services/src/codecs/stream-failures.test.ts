import { ContextLengthExceededError, InternalError, type GenerationEvent, type RouteRequest } from '@tabagent/values';
import { anthropicEventsOf } from './anthropic/convert-to-anthropic-response.js';
import { openAiChatChunksOf } from './openai/convert-from-generation-result.js';
import { responsesEventsOf } from './responses/convert-to-responses-output.js';

// How the stream codecs end a generation that fails: before the prompt is known to fit, the
// error is thrown (the transport answers it with its status); after the stream started, in the
// dialect's own terms (Anthropic's `error` event, the Responses API's `response.failed`). And how
// they keep a silent stream alive.

const overflow = new ContextLengthExceededError('The prompt has 5000 tokens; the context of m holds 1024', {
  details: { prompt_tokens: 5000, context_size: 1024 },
});

async function* failsBeforeStart(): AsyncGenerator<GenerationEvent> {
  yield { type: 'start', modelId: 'm' };
  yield { type: 'error', error: overflow };
}

async function* failsMidway(): AsyncGenerator<GenerationEvent> {
  yield { type: 'start', modelId: 'm' };
  yield { type: 'prompt', promptTokens: 12 };
  yield { type: 'text-delta', text: 'Hel' };
  yield { type: 'error', error: new InternalError('the engine crashed') };
}

/** Starts, then says nothing until `released` (the reader has seen its keep-alives), then ends with an error. */
async function* slowPrefill(released: Promise<void>): AsyncGenerator<GenerationEvent> {
  yield { type: 'start', modelId: 'm' };
  yield { type: 'prompt', promptTokens: 12 };
  await released;
  yield { type: 'error', error: new InternalError('stopped') };
}

/** Reads a stream, releasing its silent source once `enough` keep-alive events have come. */
async function readUntilKeptAlive<T extends { type: string }>(
  streamOf: (released: Promise<void>) => AsyncIterable<T>,
  keepAliveType: string,
  enough: number,
): Promise<T[]> {
  let release = (): void => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const events: T[] = [];
  for await (const event of streamOf(released)) {
    events.push(event);
    if (events.filter((seen) => seen.type === keepAliveType).length === enough) release();
  }
  return events;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const responsesMeta = { id: 'resp_1', createdAt: 0, model: 'm', request: { stream: true, input: 'x' } as RouteRequest<'responses.create'> };

describe('stream codecs when the generation fails', () => {
  it('throw a failure before the prompt is known to fit, with Anthropic wording for a context overflow', async () => {
    await expect(collect(openAiChatChunksOf(failsBeforeStart(), { id: 'c', created: 0, model: 'm', requestId: 'r' }))).rejects.toBe(overflow);
    await expect(collect(anthropicEventsOf(failsBeforeStart(), 'msg_1', 'm', 60_000))).rejects.toThrow('prompt is too long: 5000 tokens > 1024 maximum');
    await expect(collect(responsesEventsOf(failsBeforeStart(), responsesMeta, 60_000, () => undefined))).rejects.toBe(overflow);
  });

  it('Anthropic: closes the open block and ends with an error event (what the SDK raises as an APIError)', async () => {
    const events = await collect(anthropicEventsOf(failsMidway(), 'msg_1', 'm', 60_000));
    expect(events.map((event) => event.type)).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'error']);
    expect(events[events.length - 1]).toEqual({ type: 'error', error: { type: 'api_error', message: 'the engine crashed' } });
  });

  it('Responses: closes the open item and ends with response.failed carrying the error and the output so far; nothing is stored', async () => {
    let stored = 0;
    const events = await collect(
      responsesEventsOf(failsMidway(), responsesMeta, 60_000, () => {
        stored += 1;
      }),
    );
    const last = events[events.length - 1] as unknown as {
      type: string;
      response: { status: string; error: unknown; output: { type: string; status: string }[] };
    };
    expect(last.type).toBe('response.failed');
    expect(last.response.status).toBe('failed');
    expect(last.response.error).toEqual({ code: 'server_error', message: 'the engine crashed' });
    expect(last.response.output).toMatchObject([{ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text: 'Hel' }] }]);
    expect(stored).toBe(0);
  });

  it('keep a silent stream alive: Anthropic ping, Responses keepalive with its sequence number', async () => {
    const anthropic = await readUntilKeptAlive((released) => anthropicEventsOf(slowPrefill(released), 'msg_1', 'm', 25), 'ping', 2);
    expect(anthropic.map((event) => event.type)).toEqual(['message_start', 'ping', 'ping', 'error']);
    const responses = await readUntilKeptAlive((released) => responsesEventsOf(slowPrefill(released), responsesMeta, 25, () => undefined), 'keepalive', 2);
    expect(responses.map((event) => event.type)).toEqual(['response.created', 'response.in_progress', 'keepalive', 'keepalive', 'response.failed']);
    expect(responses.map((event) => event.sequence_number)).toEqual(responses.map((_event, index) => index));
  });
});
