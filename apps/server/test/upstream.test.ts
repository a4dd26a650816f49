import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { pino } from 'pino';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { startFakeUpstream, type FakeUpstream } from '@tabagent/upstream/test-support';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';

// A TabAgent server fronting two upstreams on loopback: a second, real TabAgent server (GGUF chat
// and ONNX embeddings on node-llama-cpp and onnxruntime) and a small fake OpenAI server for
// faults and header checks. The clients are the official openai, ollama and Anthropic ones.
let root: string;
let upstream: RunningServer;
let front: RunningServer;
let fake: FakeUpstream;
let direct: OpenAI;
let client: OpenAI;
const frontKey = 'front-key-for-clients';
const fakeKey = 'fake-upstream-secret';
/** No end-of-generation token: every run generates its whole budget, the same on both paths. */
const fixed = { max_tokens: 6, seed: 3, ignore_eos: true } as Record<string, unknown>;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'tabagent-upstream-'));
  const upstreamDir = path.join(root, 'upstream');
  mkdirSync(path.join(upstreamDir, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(upstreamDir, 'models', 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
  await writeTinyEmbedderModel(path.join(upstreamDir, 'models', 'embedder'));
  upstream = await startServer(parseServeArguments(['--port', '0', '--data-dir', upstreamDir, '--threads', '1', '--gpu', 'off', '--webrtc', 'off'], {}), {
    logger: pino({ level: 'silent' }),
  });
  fake = await startFakeUpstream({ models: ['echo'] });
  const frontDir = path.join(root, 'front');
  mkdirSync(frontDir, { recursive: true });
  writeFileSync(path.join(root, 'front.key'), frontKey);
  writeFileSync(path.join(root, 'fake.key'), `${fakeKey}\n`);
  front = await startServer(
    parseServeArguments(
      [
        ...['--port', '0', '--data-dir', frontDir, '--gpu', 'off', '--webrtc', 'off', '--api-key-file', path.join(root, 'front.key')],
        ...['--upstream', `up=${upstream.httpUrl ?? ''}/v1`, '--upstream', `fk=${fake.url}`, '--upstream-key-file', `fk=${path.join(root, 'fake.key')}`],
      ],
      {},
    ),
    { logger: pino({ level: 'silent' }) },
  );
  direct = new OpenAI({ baseURL: `${upstream.httpUrl ?? ''}/v1`, apiKey: 'unused', maxRetries: 0 });
  client = new OpenAI({ baseURL: `${front.httpUrl ?? ''}/v1`, apiKey: frontKey, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await front.close();
  await upstream.close();
  await fake.close();
  rmSync(root, { recursive: true, force: true });
});

const authorized = { Authorization: `Bearer ${frontKey}`, 'Content-Type': 'application/json' };

describe('a TabAgent server as the upstream', () => {
  it("lists the upstream's models as NAME/MODEL, owned by NAME, in /v1/models and /api/tags", async () => {
    const listed = await client.models.list();
    const ids = listed.data.map((model) => [model.id, model.owned_by]);
    expect(ids).toEqual(
      expect.arrayContaining([
        ['up/chat', 'up'],
        ['up/embedder', 'up'],
        ['fk/echo', 'fk'],
      ]),
    );
    const ollama = new Ollama({ host: front.httpUrl ?? '', headers: { Authorization: `Bearer ${frontKey}` } });
    const tags = await ollama.list();
    expect(tags.models.map((model) => model.name)).toEqual(expect.arrayContaining(['up/chat:latest', 'up/embedder:latest', 'fk/echo:latest']));
  });

  it('answers a chat exactly as the upstream answers it directly', async () => {
    const request = { messages: [{ role: 'user' as const, content: 'Say something' }], ...fixed };
    const through = await client.chat.completions.create({ ...request, model: 'up/chat' });
    const itself = await direct.chat.completions.create({ ...request, model: 'chat' });
    expect(through.model).toBe('up/chat');
    expect(through.choices[0]?.message.content).toBe(itself.choices[0]?.message.content);
    expect(through.usage).toMatchObject({ prompt_tokens: itself.usage?.prompt_tokens, completion_tokens: 6 });
  });

  it('streams a chat chunk by chunk, the same text as the upstream streams', async () => {
    const request = { messages: [{ role: 'user' as const, content: 'Stream please' }], ...fixed, stream: true as const };
    const textOf = async (stream: AsyncIterable<OpenAI.ChatCompletionChunk>): Promise<{ text: string; chunks: number }> => {
      let text = '';
      let chunks = 0;
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta.content ?? '';
        if (piece !== '') chunks += 1;
        text += piece;
      }
      return { text, chunks };
    };
    const through = await textOf(await client.chat.completions.create({ ...request, model: 'up/chat' }));
    const itself = await textOf(await direct.chat.completions.create({ ...request, model: 'chat' }));
    expect(through.text).toBe(itself.text);
    expect(through.chunks).toBeGreaterThan(1);
  });

  it('answers a completion exactly as the upstream answers it directly', async () => {
    const request = { prompt: 'Once upon a time', ...fixed };
    const through = await client.completions.create({ ...request, model: 'up/chat' });
    const itself = await direct.completions.create({ ...request, model: 'chat' });
    expect(through.choices[0]?.text).toBe(itself.choices[0]?.text);
    // The upstream's own count, passed on (node-llama-cpp may take one token more to finish a character).
    expect(through.usage).toMatchObject({ prompt_tokens: itself.usage?.prompt_tokens, completion_tokens: itself.usage?.completion_tokens });
  });

  it('describes an upstream model on the model routes', async () => {
    const model = (await (await fetch(`${front.httpUrl ?? ''}/v1/models/${encodeURIComponent('up/chat')}`, { headers: authorized })).json()) as Record<
      string,
      unknown
    >;
    expect(model).toMatchObject({
      id: 'up/chat',
      owned_by: 'up',
      format: 'upstream',
      task: 'text-generation',
      path: `${upstream.httpUrl ?? ''}/v1`,
      chat_template: null,
    });
    const loaded = await fetch(`${front.httpUrl ?? ''}/v1/models/load`, { method: 'POST', headers: authorized, body: JSON.stringify({ model: 'up/chat' }) });
    expect(await loaded.json()).toMatchObject({ model: 'up/chat', status: 'already_loaded', device: 'upstream:up' });
  });

  it('embeds as the upstream embeds', async () => {
    const input = ['a tab about tide pools', 'another about tax forms'];
    const through = await client.embeddings.create({ model: 'up/embedder', input });
    const itself = await direct.embeddings.create({ model: 'embedder', input });
    expect(through.data).toHaveLength(2);
    through.data.forEach((entry, index) => {
      const expected = itself.data[index]?.embedding ?? [];
      expect(entry.embedding).toHaveLength(expected.length);
      entry.embedding.forEach((value, dimension) => expect(value).toBeCloseTo(expected[dimension] ?? Number.NaN, 5));
    });
  });

  it('serves the ollama client: chat and generate', async () => {
    const ollama = new Ollama({ host: front.httpUrl ?? '', headers: { Authorization: `Bearer ${frontKey}` } });
    const chat = await ollama.chat({
      model: 'up/chat',
      messages: [{ role: 'user', content: 'Hi' }],
      options: { num_predict: 4, seed: 3, ignore_eos: true } as never,
    });
    expect([chat.model, chat.done, chat.eval_count, chat.message.content.length > 0]).toEqual(['up/chat', true, 4, true]);
    const generated = await ollama.generate({ model: 'up/chat', prompt: 'Once', options: { num_predict: 3, seed: 3, ignore_eos: true } as never });
    expect([generated.done, generated.eval_count]).toEqual([true, 3]);
  });

  it('a stop by request id stops the generation on the upstream too', async () => {
    const stream = await client.chat.completions.create({
      model: 'up/chat',
      messages: [{ role: 'user', content: 'Long' }],
      max_tokens: 100_000,
      stream: true,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let count = 0;
    for await (const chunk of stream) {
      count += 1;
      if (count === 3) {
        const requestId = (chunk as unknown as { request_id: string }).request_id;
        const stopped = await fetch(`${front.httpUrl ?? ''}/v1/generation/stop`, {
          method: 'POST',
          headers: authorized,
          body: JSON.stringify({ request_id: requestId }),
        });
        expect(await stopped.json()).toMatchObject({ status: 'stopped' });
      }
    }
    // The upstream's generation ended with the front's: nothing runs there any more.
    let active = -1;
    for (let waited = 0; active !== 0 && waited < 5000; waited += 50) {
      active = ((await (await fetch(`${upstream.httpUrl ?? ''}/v1/halt`)).json()) as { active_requests: number }).active_requests;
      if (active !== 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(active).toBe(0);
  });
});

describe('a fake upstream: headers, dialect bridges, faults', () => {
  beforeEach(() => {
    fake.behaviour = { kind: 'echo' };
  });

  it("sends the upstream's key, never the client's credentials or cookies", async () => {
    const response = await fetch(`${front.httpUrl ?? ''}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authorized, Cookie: 'session=secret-cookie', 'X-Api-Key': 'client-key' },
      body: JSON.stringify({ model: 'fk/echo', messages: [{ role: 'user', content: 'hello there' }] }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as OpenAI.ChatCompletion).choices[0]?.message.content).toBe('hello there');
    const seen = fake.requests.at(-1)?.headers ?? {};
    expect(seen['authorization']).toBe(`Bearer ${fakeKey}`);
    expect([seen['cookie'], seen['x-api-key']]).toEqual([undefined, undefined]);
    expect(JSON.stringify(fake.requests)).not.toContain(frontKey);
  });

  it('bridges the Anthropic Messages API to an OpenAI upstream', async () => {
    const anthropic = new Anthropic({ baseURL: front.httpUrl ?? '', apiKey: frontKey, maxRetries: 0 });
    const stream = anthropic.messages.stream({ model: 'fk/echo', max_tokens: 50, messages: [{ role: 'user', content: 'bridged words here' }] });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: 'bridged words here' }]);
    expect([message.model, message.stop_reason, message.usage.output_tokens]).toEqual(['fk/echo', 'end_turn', 3]);
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    expect(types.filter((type) => type === 'content_block_delta')).toHaveLength(3);
  });

  it('bridges the Responses API to an OpenAI chat upstream', async () => {
    const stream = client.responses.stream({ model: 'fk/echo', input: 'responses through chat', store: false });
    const response = await stream.finalResponse();
    expect(response.output_text).toBe('responses through chat');
    expect(response.status).toBe('completed');
  });

  it('decompresses a gzip body before routing it, and refuses one that inflates past the cap', async () => {
    const body = gzipSync(JSON.stringify({ model: 'fk/echo', messages: [{ role: 'user', content: 'zipped' }] }));
    const response = await fetch(`${front.httpUrl ?? ''}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authorized, 'Content-Encoding': 'gzip' },
      body,
    });
    expect(((await response.json()) as OpenAI.ChatCompletion).choices[0]?.message.content).toBe('zipped');
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    const refused = await fetch(`${front.httpUrl ?? ''}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authorized, 'Content-Encoding': 'gzip' },
      body: bomb,
    });
    expect(refused.status).toBe(413);
  });

  it('a model the upstream does not serve is a 404 naming what it serves', async () => {
    const error = await client.chat.completions.create({ model: 'fk/nope', messages: [{ role: 'user', content: 'x' }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).message).toContain('Upstream fk serves no model "nope"; it serves: echo');
  });

  it('a 5xx before the first byte is a 502 naming the upstream, then a 503 with Retry-After while it cools down', async () => {
    fake.behaviour = { kind: 'status', status: 500 };
    const request = { method: 'POST', headers: authorized, body: JSON.stringify({ model: 'fk/echo', messages: [{ role: 'user', content: 'x' }] }) };
    const failed = await fetch(`${front.httpUrl ?? ''}/v1/chat/completions`, request);
    const problem = (await failed.json()) as { detail: string; code: string };
    expect([failed.status, problem.code, problem.detail]).toEqual([502, 'upstream_error', `Upstream fk (${fake.url}) answered 500: fake failure 500`]);
    const cooling = await fetch(`${front.httpUrl ?? ''}/v1/chat/completions`, request);
    expect([cooling.status, Number(cooling.headers.get('retry-after')) > 0]).toEqual([503, true]);
    const status = (await (await fetch(`${front.httpUrl ?? ''}/v1/upstreams`, { headers: authorized })).json()) as {
      upstreams: Array<{ name: string; members: Array<{ url: string; state: string; last_error: string | null; models: string[] }> }>;
    };
    expect(status.upstreams.map((entry) => entry.name)).toEqual(['up', 'fk']);
    expect(status.upstreams[1]?.members[0]).toMatchObject({ url: fake.url, state: 'cooling', models: ['echo'], last_error: problem.detail });
    expect(JSON.stringify(status)).not.toContain(fakeKey);
  });
});
