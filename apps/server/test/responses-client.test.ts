import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import OpenAI7 from 'openai-v7';
import { parseRouteRequest } from '@tabagent/values';
import { parseSseFrames, startDialectServer, type DialectServer } from './support/dialect-server.js';

// The official openai client, the project's pin (6.x) and the current 7.x (whose Responses stream
// accumulator is strict), against /v1/responses on real GGUF fixtures through node-llama-cpp.
let server: DialectServer;
let client6: OpenAI;
let client7: OpenAI7;

const weatherTool = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] } }, required: ['city'] },
  strict: true,
};

beforeAll(async () => {
  server = await startDialectServer({ responseStoreLimits: { maxRows: 3, ttlMs: 60_000 } });
  client6 = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  client7 = new OpenAI7({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server.close();
});

type StreamEvent = { type: string; sequence_number: number; [field: string]: unknown };

/** Reads a raw SSE response of /v1/responses: every frame's event: line is its type, and sequence numbers count from 0. */
async function rawEvents(body: Record<string, unknown>, headers: Record<string, string> = {}, payload?: Buffer): Promise<StreamEvent[]> {
  const response = await fetch(`${server.url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: payload ?? JSON.stringify({ ...body, stream: true }),
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const frames = parseSseFrames(await response.text());
  const events = frames.map((frame) => frame.data as StreamEvent);
  frames.forEach((frame, index) => {
    expect(frame.event).toBe(events[index]?.type);
    expect(events[index]?.sequence_number).toBe(index);
  });
  return events;
}

describe('the openai clients against /v1/responses', () => {
  // Both clients' calls: 7.x's types differ from 6.x's only in fields these tests do not read.
  const clients: [string, () => OpenAI][] = [
    ['6.x', () => client6],
    ['7.x (strict accumulator)', () => client7 as unknown as OpenAI],
  ];

  it.each(clients)('%s: responses.create with a string input', async (_version, client) => {
    const response = await client().responses.create({ model: 'tiny', input: 'Say something', max_output_tokens: 8 });
    expect(response.object).toBe('response');
    expect(response.id).toMatch(/^resp_[0-9a-f]{24}$/);
    expect(['completed', 'incomplete']).toContain(response.status);
    expect(response.status === 'incomplete' ? response.incomplete_details?.reason : null).toBe(response.status === 'incomplete' ? 'max_output_tokens' : null);
    const usage = response.usage;
    expect(usage?.total_tokens).toBe((usage?.input_tokens ?? 0) + (usage?.output_tokens ?? 0));
    expect(response.output[0]?.type).toBe('message');
    const counted = await fetch(`${server.url}/v1/responses/input_tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', input: 'Say something' }),
    });
    expect(await counted.json()).toEqual({ object: 'response.input_tokens', input_tokens: usage?.input_tokens });
  });

  it.each(clients)('%s: responses.stream().finalResponse() equals the text deltas', async (_version, client) => {
    const stream = client().responses.stream({ model: 'tiny', input: [{ role: 'user', content: 'Tell me more' }], max_output_tokens: 12 });
    let text = '';
    const types: string[] = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    const final = await stream.finalResponse();
    expect(types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(['response.completed', 'response.incomplete']).toContain(types[types.length - 1]);
    expect(final.output_text).toBe(text);
    expect(final.usage?.output_tokens).toBeGreaterThan(0);
  });

  it("streams a reasoning model's thought as a reasoning item whose summary deltas carry summary_index (what Codex reads)", async () => {
    const events = await rawEvents({ model: 'thinker', input: 'Think', max_output_tokens: 12, reasoning: { effort: 'medium', summary: 'auto' } });
    const deltas = events.filter((event) => event.type === 'response.reasoning_summary_text.delta');
    expect(deltas.length).toBeGreaterThan(0);
    for (const delta of deltas) expect(delta).toMatchObject({ summary_index: 0, output_index: 0, item_id: expect.stringMatching(/^rs_/) });
    const completed = events[events.length - 1] as StreamEvent & { response: { output: { type: string; summary?: { text: string }[] }[] } };
    expect(completed.response.output[0]?.type).toBe('reasoning');
    expect(completed.response.output[0]?.summary?.[0]?.text).toBe(deltas.map((delta) => delta['delta']).join(''));
    // The strict accumulator takes it.
    const final = await client7.responses.stream({ model: 'thinker', input: 'Think', max_output_tokens: 12 }).finalResponse();
    expect(final.output[0]?.type).toBe('reasoning');
  });

  it('constrains the output to text.format (a JSON schema)', async () => {
    const response = await client7.responses.create({
      model: 'tiny',
      input: 'Pick a color',
      text: {
        format: { type: 'json_schema', name: 'pick', schema: { type: 'object', properties: { color: { enum: ['red', 'blue'] } }, required: ['color'] } },
      },
    });
    expect(JSON.parse(response.output_text)).toEqual({ color: expect.stringMatching(/^(red|blue)$/) });
  });

  it('a required function call, streamed as argument deltas, and its output taken back (string and parts)', async () => {
    const request = { model: 'tiny', input: 'Weather in Paris?', tools: [weatherTool], tool_choice: 'required' as const };
    const response = await client7.responses.create(request);
    const call = response.output.find((item) => item.type === 'function_call');
    expect(call?.type).toBe('function_call');
    if (call?.type !== 'function_call') return;
    expect(call.call_id).toMatch(/^call_/);
    expect(call.name).toBe('get_weather');
    expect(['Paris', 'Rome', 'Oslo']).toContain((JSON.parse(call.arguments) as { city: string }).city);

    const events = await rawEvents(request);
    const added = events.findIndex((event) => event.type === 'response.output_item.added' && (event['item'] as { type: string }).type === 'function_call');
    const deltas = events.filter((event) => event.type === 'response.function_call_arguments.delta');
    expect(added).toBeGreaterThan(-1);
    expect(deltas.length).toBeGreaterThan(1);
    expect(events.indexOf(deltas[0] as StreamEvent)).toBeGreaterThan(added);
    const done = events.find((event) => event.type === 'response.output_item.done' && (event['item'] as { type: string }).type === 'function_call');
    const doneItem = done?.['item'] as { arguments: string; call_id: string };
    expect(deltas.map((event) => event['delta']).join('')).toBe(doneItem.arguments);
    const completed = events[events.length - 1] as StreamEvent & { response: { output: unknown[] } };
    expect(completed.type).toBe('response.completed');
    expect(completed.response.output).toContainEqual(doneItem);

    // The strict accumulator takes the same stream.
    const finalCall = (await client7.responses.stream(request).finalResponse()).output.find((item) => item.type === 'function_call');
    expect(finalCall?.type).toBe('function_call');

    for (const output of ['{"temperature": 21}', [{ type: 'input_text' as const, text: 'sunny' }]]) {
      const next = await client7.responses.create({
        model: 'tiny',
        max_output_tokens: 6,
        tools: [weatherTool],
        input: [{ role: 'user', content: 'Weather in Paris?' }, call, { type: 'function_call_output', call_id: call.call_id, output }],
      });
      expect(next.output.some((item) => item.type === 'message')).toBe(true);
    }
  });

  it('accepts what Codex sends: developer messages, encrypted reasoning, hosted tools, plain and zstd-compressed', async () => {
    const codexLike = {
      model: 'tiny',
      instructions: '',
      input: [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'You are a coding agent.' }] },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'list the files' }] },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gAAAA-opaque' },
        { type: 'function_call', call_id: 'call_1', name: 'shell', arguments: '{"command":["ls"]}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'a.txt\nb.txt' },
        { type: 'web_search_call', id: 'ws_1', status: 'completed', action: { type: 'search', query: 'x' } },
      ],
      tools: [
        {
          type: 'function',
          name: 'shell',
          description: 'Runs a command',
          parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } } } },
          strict: false,
        },
        { type: 'web_search' },
        { type: 'custom', name: 'apply_patch', description: 'Patches', format: { type: 'grammar', syntax: 'lark', definition: 'start: /.+/' } },
        { type: 'local_shell' },
      ],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      reasoning: { effort: 'medium', summary: 'auto' },
      store: false,
      include: ['reasoning.encrypted_content'],
      prompt_cache_key: 'session-1',
      text: { verbosity: 'low' },
      client_metadata: { originator: 'codex_exec' },
      max_output_tokens: 4,
    };
    const plain = await rawEvents(codexLike);
    expect(plain[plain.length - 1]?.type).toMatch(/^response\.(completed|incomplete)$/);
    const compressed = execFileSync('zstd', ['-q', '-c'], { input: JSON.stringify({ ...codexLike, stream: true }) });
    const viaZstd = await rawEvents({}, { 'content-encoding': 'zstd' }, compressed);
    expect(viaZstd[viaZstd.length - 1]?.type).toMatch(/^response\.(completed|incomplete)$/);
    // store: false keeps nothing.
    const id = (viaZstd[0] as StreamEvent & { response: { id: string } }).response.id;
    expect((await fetch(`${server.url}/v1/responses/${id}`)).status).toBe(404);
  });

  it("accepts Codex's own first request (captured from codex 0.171.0) and counts it with its namespace tools expanded", async () => {
    const captured = JSON.parse(readFileSync(new URL('./fixtures/codex-0.171.0-responses-request.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const count = async (body: Record<string, unknown>): Promise<number> => {
      const response = await fetch(`${server.url}/v1/responses/input_tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as { input_tokens: number }).input_tokens;
    };
    const whole = await count(captured);
    expect(whole).toBeGreaterThan(3000);
    // The namespace's five tools are in the prompt: without them it is shorter.
    const tools = captured['tools'] as { type: string }[];
    expect(await count({ ...captured, tools: tools.filter((tool) => tool.type !== 'namespace') })).toBeLessThan(whole - 200);
    // On a 1,024-token context the whole request is the error Codex knows (it compacts).
    const refused = await fetch(`${server.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(captured),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('context_length_exceeded');
  });

  it('stores responses: retrieve, previous_response_id, input_items, delete, and eviction at the cap', async () => {
    const first = await client7.responses.create({ model: 'tiny', input: 'My name is Ada.', max_output_tokens: 4, store: true });
    expect(await client7.responses.retrieve(first.id)).toEqual(JSON.parse(JSON.stringify(first)));
    const second = await client7.responses.create({ model: 'tiny', input: 'What is my name?', previous_response_id: first.id, max_output_tokens: 4 });
    expect(second.previous_response_id).toBe(first.id);
    // The earlier turn is part of the prompt: more input tokens than the question alone.
    const alone = await client7.responses.create({ model: 'tiny', input: 'What is my name?', max_output_tokens: 1, store: false });
    expect(second.usage?.input_tokens).toBeGreaterThan((alone.usage?.input_tokens ?? 0) + 5);
    const items = await client7.responses.inputItems.list(second.id);
    expect(items.data).toHaveLength(1);
    expect(items.data[0]).toMatchObject({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is my name?' }] });

    const deleted = await fetch(`${server.url}/v1/responses/${first.id}`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual({ id: first.id, object: 'response', deleted: true });
    // The SDK's delete of a deleted response is a NotFoundError.
    await expect(client7.responses.delete(first.id)).rejects.toBeInstanceOf(OpenAI7.NotFoundError);
    await expect(client7.responses.retrieve(first.id)).rejects.toBeInstanceOf(OpenAI7.NotFoundError);
    await expect(client7.responses.create({ model: 'tiny', input: 'again', previous_response_id: first.id })).rejects.toMatchObject({
      constructor: OpenAI7.BadRequestError,
      status: 400,
      param: 'previous_response_id',
      message: expect.stringContaining(`Previous response with id '${first.id}' not found.`),
    });

    // The store keeps 3 here: a fourth evicts the oldest.
    const kept = [];
    for (let index = 0; index < 4; index++) kept.push(await client7.responses.create({ model: 'tiny', input: `n${index}`, max_output_tokens: 1 }));
    await expect(client7.responses.retrieve((kept[0] as { id: string }).id)).rejects.toBeInstanceOf(OpenAI7.NotFoundError);
    expect((await client7.responses.retrieve((kept[3] as { id: string }).id)).id).toBe((kept[3] as { id: string }).id);
  });

  it("keeps a stored response its caller's: another caller cannot read, list, continue or delete it", async () => {
    const stored = await client7.responses.create({ model: 'tiny', input: 'private', max_output_tokens: 1 });
    const other = { requestId: 'other-1', signal: new AbortController().signal, transport: 'in-process' as const, caller: {} };
    for (const [id, request] of [
      ['responses.get', { response_id: stored.id }],
      ['responses.input_items', { response_id: stored.id }],
      ['responses.delete', { response_id: stored.id }],
    ] as const) {
      await expect(server.provider.handle(id, parseRouteRequest(id, request), other)).rejects.toThrow(`Response with id '${stored.id}' not found.`);
    }
    await expect(
      server.provider.handle('responses.create', parseRouteRequest('responses.create', { model: 'tiny', input: 'x', previous_response_id: stored.id }), other),
    ).rejects.toThrow(`Previous response with id '${stored.id}' not found.`);
    expect((await client7.responses.retrieve(stored.id)).id).toBe(stored.id);
  });

  it('answers errors as the SDK types them: unknown model, context_length_exceeded', async () => {
    await expect(client7.responses.create({ model: 'no-such-model', input: 'hi' })).rejects.toBeInstanceOf(OpenAI7.NotFoundError);
    await expect(client7.responses.create({ model: 'tiny', input: 'word '.repeat(3000) })).rejects.toMatchObject({
      constructor: OpenAI7.BadRequestError,
      code: 'context_length_exceeded',
    });
    await expect(client7.responses.create({ model: 'tiny', input: [{ type: 'item_reference', id: 'x' } as never] })).rejects.toThrow(
      'input items of type "item_reference" are not supported',
    );
  });
});
