import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { parseSseFrames, startDialectServer, type DialectServer } from './support/dialect-server.js';

// The official Anthropic SDK (what Claude Code bundles) against /v1/messages and
// /v1/messages/count_tokens, on real GGUF fixtures through node-llama-cpp.
let server: DialectServer;
let client: Anthropic;

const weatherTool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] } }, required: ['city'] },
};

beforeAll(async () => {
  server = await startDialectServer();
  client = new Anthropic({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server.close();
});

type Event = Anthropic.Messages.RawMessageStreamEvent;

/** Checks the event order Anthropic's MessageStream needs: one message_start first, contiguous block indices each opened before its deltas and closed before the next, message_delta, then message_stop last. */
function expectWellFormed(events: Event[]): void {
  expect(events[0]?.type).toBe('message_start');
  expect(events.filter((event) => event.type === 'message_start')).toHaveLength(1);
  expect(events[events.length - 1]?.type).toBe('message_stop');
  expect(events[events.length - 2]?.type).toBe('message_delta');
  let open: number | null = null;
  let next = 0;
  for (const event of events) {
    if (event.type === 'content_block_start') {
      expect(open).toBeNull();
      expect(event.index).toBe(next);
      open = event.index;
      next += 1;
    } else if (event.type === 'content_block_delta') {
      expect(event.index).toBe(open);
    } else if (event.type === 'content_block_stop') {
      expect(event.index).toBe(open);
      open = null;
    }
  }
  expect(open).toBeNull();
  expect(next).toBeGreaterThan(0);
}

describe('the Anthropic SDK against /v1/messages', () => {
  it('creates a message whose input_tokens equal count_tokens of the same request', async () => {
    const request = { model: 'tiny', system: 'Answer briefly.', messages: [{ role: 'user' as const, content: 'Hello there' }] };
    const message = await client.messages.create({ ...request, max_tokens: 8 });
    expect(message.type).toBe('message');
    expect(message.role).toBe('assistant');
    expect(message.id).toMatch(/^msg_[0-9a-f]{24}$/);
    expect(message.model).toBe('tiny');
    expect(message.content[0]?.type).toBe('text');
    expect(message.stop_reason === 'max_tokens' ? message.usage.output_tokens === 8 : message.stop_reason === 'end_turn').toBe(true);
    const counted = await client.messages.countTokens(request);
    expect(message.usage.input_tokens).toBe(counted.input_tokens);
    expect(counted.input_tokens).toBeGreaterThan(10);
    // Claude Code calls the beta path (?beta=true): the same count.
    expect((await client.beta.messages.countTokens(request)).input_tokens).toBe(counted.input_tokens);
  });

  it('streams events in the order MessageStream needs, and its text is finalText()', async () => {
    const stream = client.messages.stream({ model: 'tiny', max_tokens: 12, messages: [{ role: 'user', content: 'Tell me something' }] });
    const events: Event[] = [];
    let text = '';
    stream.on('streamEvent', (event) => events.push(event));
    stream.on('text', (delta) => {
      text += delta;
    });
    const final = await stream.finalMessage();
    expectWellFormed(events);
    expect(text).toBe(await stream.finalText());
    expect(final.usage.output_tokens).toBeGreaterThan(0);
    const start = events[0] as Anthropic.Messages.RawMessageStartEvent;
    expect(start.message.usage.input_tokens).toBe(final.usage.input_tokens);
  });

  it('frames every event with an event: line equal to its type, as text/event-stream', async () => {
    const response = await fetch(`${server.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'anthropic-beta': 'claude-code-20250219' },
      body: JSON.stringify({ model: 'tiny', max_tokens: 6, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const frames = parseSseFrames(await response.text());
    expect(frames.length).toBeGreaterThan(4);
    for (const frame of frames) expect(frame.event).toBe((frame.data as { type: string }).type);
  });

  it('forces a tool call (tool_choice any), streams its input as input_json_delta, and takes the tool_result back', async () => {
    const request = {
      model: 'tiny',
      // Room for the whole call: this vocabulary spells most of the JSON a character a token.
      max_tokens: 400,
      tools: [weatherTool],
      tool_choice: { type: 'any' as const },
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
    };
    const message = await client.messages.create(request);
    expect(message.stop_reason).toBe('tool_use');
    const use = message.content.find((block) => block.type === 'tool_use');
    expect(use?.type).toBe('tool_use');
    if (use?.type !== 'tool_use') return;
    expect(use.id).toMatch(/^toolu_/);
    expect(use.name).toBe('get_weather');
    expect(['Paris', 'Rome', 'Oslo']).toContain((use.input as { city: unknown }).city);

    const stream = client.messages.stream(request);
    const events: Event[] = [];
    stream.on('streamEvent', (event) => events.push(event));
    const streamed = await stream.finalMessage();
    expectWellFormed(events);
    const fragments = events.flatMap((event) =>
      event.type === 'content_block_delta' && event.delta.type === 'input_json_delta' ? [event.delta.partial_json] : [],
    );
    expect(fragments.length).toBeGreaterThan(1);
    const toolBlock = streamed.content.find((block) => block.type === 'tool_use');
    expect(JSON.parse(fragments.join(''))).toEqual(toolBlock?.type === 'tool_use' ? toolBlock.input : null);
    expect(streamed.stop_reason).toBe('tool_use');

    // The next turns: a tool_result as a string, as text blocks, and as an error.
    for (const content of ['{"temperature": 21}', [{ type: 'text' as const, text: 'sunny, 21 C' }]]) {
      for (const isError of [false, true]) {
        const answer = await client.messages.create({
          model: 'tiny',
          max_tokens: 6,
          tools: [weatherTool],
          messages: [
            { role: 'user', content: 'Weather in Paris?' },
            { role: 'assistant', content: [{ type: 'tool_use', id: use.id, name: use.name, input: use.input }] },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content, is_error: isError }] },
          ],
        });
        expect(answer.type).toBe('message');
        expect(['end_turn', 'max_tokens', 'tool_use']).toContain(answer.stop_reason);
      }
    }
  });

  it("gives a reasoning model's thought as a thinking block before the text, streamed as thinking_delta", async () => {
    const request = {
      model: 'thinker',
      max_tokens: 12,
      thinking: { type: 'enabled' as const, budget_tokens: 1024 },
      messages: [{ role: 'user' as const, content: 'Think' }],
    };
    const message = await client.messages.create(request);
    // The template opens a thought and this random model never closes it: all of the answer is thinking.
    expect(message.content.map((block) => block.type)).toEqual(['thinking']);
    const stream = client.messages.stream(request);
    const events: Event[] = [];
    stream.on('streamEvent', (event) => events.push(event));
    const final = await stream.finalMessage();
    expectWellFormed(events);
    const thought = events.map((event) => (event.type === 'content_block_delta' && event.delta.type === 'thinking_delta' ? event.delta.thinking : '')).join('');
    expect(final.content[0]).toEqual({ type: 'thinking', thinking: thought, signature: '' });
    expect(thought.length).toBeGreaterThan(0);
    // Adaptive thinking (what Claude Code sends) is accepted the same way; disabled closes the thought at once.
    expect((await client.messages.create({ ...request, thinking: { type: 'adaptive' } as never })).content[0]?.type).toBe('thinking');
    // Disabled: the thought the template opens is closed at once (at most its one closing token), then the answer.
    const off = await client.messages.create({ ...request, thinking: { type: 'disabled' } });
    expect(off.content[off.content.length - 1]?.type).toBe('text');
    expect(off.content.filter((block) => block.type !== 'thinking').map((block) => block.type)).toEqual(['text']);
  });

  it('accepts thinking and redacted_thinking in history, and thinking requests on a model that does not think', async () => {
    const message = await client.messages.create({
      model: 'tiny',
      max_tokens: 4,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: [
        { role: 'user', content: 'first' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'The user said first.', signature: 'sig' },
            { type: 'redacted_thinking', data: 'opaque' },
            { type: 'text', text: 'ok' },
          ],
        },
        { role: 'user', content: 'second' },
      ],
    });
    expect(message.type).toBe('message');
    expect(message.content.some((block) => block.type === 'thinking')).toBe(false);
  });

  it("accepts Claude Code's own first request (captured from claude 2.1.197) and counts it exactly", async () => {
    const captured = JSON.parse(readFileSync(new URL('./fixtures/claude-code-2.1.197-messages-request.json', import.meta.url), 'utf8')) as Record<
      string,
      unknown
    >;
    const { max_tokens: _maxTokens, stream: _stream, metadata: _metadata, ...prompt } = captured;
    const counted = await fetch(`${server.url}/v1/messages/count_tokens?beta=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14' },
      body: JSON.stringify(prompt),
    });
    expect(counted.status).toBe(200);
    const { input_tokens: inputTokens } = (await counted.json()) as { input_tokens: number };
    expect(inputTokens).toBeGreaterThan(5000);
    // The whole request is valid; on a 1,024-token context it is Anthropic's context error, in Anthropic's shape, before any event.
    const refused = await fetch(`${server.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(captured),
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: `prompt is too long: ${inputTokens} tokens > 1024 maximum` },
      request_id: expect.any(String),
    });
  });

  it("grows a model's context for a prompt over it, and the request then completes", async () => {
    const prompt = { model: 'roomy', messages: [{ role: 'user' as const, content: 'word '.repeat(700) }] };
    const { input_tokens: inputTokens } = await client.messages.countTokens(prompt);
    expect(inputTokens).toBeGreaterThan(1024);
    const stream = client.messages.stream({ ...prompt, max_tokens: 8 });
    const events: Event[] = [];
    stream.on('streamEvent', (event) => events.push(event));
    const message = await stream.finalMessage();
    expectWellFormed(events);
    expect(message.usage.input_tokens).toBe(inputTokens);
    // Loaded with 1,024 tokens; grown to the prompt and half again (at least 4,096), in steps of 4,096.
    expect(server.manager.get('roomy')?.contextSize).toBe(Math.ceil((inputTokens + Math.max(4096, inputTokens / 2)) / 4096) * 4096);
  });

  it('answers errors in Anthropic shape, as the SDK types them', async () => {
    await expect(client.messages.create({ model: 'no-such-model', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({
      constructor: Anthropic.NotFoundError,
      status: 404,
      error: { type: 'error', error: { type: 'not_found_error' } },
    });
    const long = 'word '.repeat(3000);
    const overflow = client.messages.create({ model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: long }] });
    await expect(overflow).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    await expect(overflow).rejects.toThrow(/prompt is too long: \d+ tokens > 1024 maximum/);
    const image = client.messages.create({
      model: 'tiny',
      max_tokens: 4,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] }],
    });
    await expect(image).rejects.toMatchObject({ status: 400, error: { error: { type: 'invalid_request_error' } } });
    await expect(image).rejects.toThrow(/image part; GGUF text models take text only/);
    const document = client.messages.create({
      model: 'tiny',
      max_tokens: 4,
      messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }],
    });
    await expect(document).rejects.toThrow(/document blocks .* are not supported/);
  });

  it('refuses tools for a model whose template has no tool syntax, rather than leaving calls as text', async () => {
    const refused = client.messages.create({ model: 'plain', max_tokens: 4, tools: [weatherTool], messages: [{ role: 'user', content: 'Weather?' }] });
    await expect(refused).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    await expect(refused).rejects.toThrow('Model plain does not support tools: its chat template has no tool-call syntax');
    const plain = await client.messages.create({ model: 'plain', max_tokens: 4, messages: [{ role: 'user', content: 'Hello' }] });
    expect(plain.type).toBe('message');
  });
});

describe('Anthropic streams while the prompt waits', () => {
  let slow: DialectServer;
  beforeAll(async () => {
    slow = await startDialectServer({ sequences: 1, keepAliveIntervalMs: 40 });
  });
  afterAll(async () => {
    await slow.close();
  });

  it('sends message_start at once and pings until the first token', async () => {
    const sdk = new Anthropic({ baseURL: slow.url, apiKey: 'unused', maxRetries: 0 });
    // The one sequence is busy with a long completion (its first chunk has come, so it holds the
    // sequence, however slow the machine): the messages requests wait for it.
    const busyResponse = await fetch(`${slow.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'Once', max_tokens: 1000, ignore_eos: true, stream: true }),
    });
    const busyBody = (busyResponse.body as ReadableStream<Uint8Array>).getReader();
    const firstChunk = await busyBody.read();
    expect(firstChunk.done).toBe(false);
    const busy = (async () => {
      let text = new TextDecoder().decode(firstChunk.value);
      for (let next = await busyBody.read(); !next.done; next = await busyBody.read()) text += new TextDecoder().decode(next.value);
      return { status: busyResponse.status, text };
    })();
    const stream = sdk.messages.stream({ model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] });
    const events: Event[] = [];
    const pings: number[] = [];
    // MessageStream skips ping events: they are read from the raw frames.
    stream.on('streamEvent', (event) => events.push(event));
    const raw = await fetch(`${slow.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', max_tokens: 2, stream: true, messages: [{ role: 'user', content: 'hey' }] }),
    });
    const frames = parseSseFrames(await raw.text());
    frames.forEach((frame, index) => {
      if (frame.event === 'ping') pings.push(index);
    });
    await stream.finalMessage();
    const busyEnd = await busy;
    expect([busyEnd.status, busyEnd.text.endsWith('data: [DONE]\n\n')]).toEqual([200, true]);
    expect(frames[0]?.event).toBe('message_start');
    expect(pings.length).toBeGreaterThan(0);
    const firstBlock = frames.findIndex((frame) => frame.event === 'content_block_start');
    expect(pings[0]).toBeLessThan(firstBlock);
    expectWellFormed(events);
  });
});

describe('Anthropic authentication', () => {
  let keyed: DialectServer;
  beforeAll(async () => {
    keyed = await startDialectServer({ apiKey: 'secret-key' });
  });
  afterAll(async () => {
    await keyed.close();
  });

  it('takes the key as x-api-key or as a bearer token, and refuses a wrong one as authentication_error', async () => {
    const request = { model: 'tiny', max_tokens: 2, messages: [{ role: 'user' as const, content: 'hi' }] };
    expect((await new Anthropic({ baseURL: keyed.url, apiKey: 'secret-key', maxRetries: 0 }).messages.create(request)).type).toBe('message');
    expect((await new Anthropic({ baseURL: keyed.url, apiKey: null, authToken: 'secret-key', maxRetries: 0 }).messages.create(request)).type).toBe('message');
    await expect(new Anthropic({ baseURL: keyed.url, apiKey: 'wrong', maxRetries: 0 }).messages.create(request)).rejects.toMatchObject({
      constructor: Anthropic.AuthenticationError,
      status: 401,
      error: { type: 'error', error: { type: 'authentication_error' } },
    });
  });
});
