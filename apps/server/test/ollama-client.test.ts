import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ollama, type ChatResponse, type GenerateResponse, type ModelResponse } from 'ollama';
import { pino } from 'pino';
import { chatMlToolsTemplate, thinkingChatTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';

// The official `ollama` npm client against the whole server, as Open WebUI and other Ollama
// clients use it; each answer is checked field by field against the client's TypeScript types.
let root: string;
let server: RunningServer;
let ollama: Ollama;
let base: string;

/** llama-server's option (not Ollama's): no end-of-generation token, so every run generates its budget. */
const fixed = { ignore_eos: true, num_predict: 5, seed: 3 };

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'tabagent-ollama-'));
  mkdirSync(path.join(root, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(root, 'models', 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
  writeTinyLlamaGguf(path.join(root, 'models', 'thinker.gguf'), { chatTemplate: thinkingChatTemplate });
  await writeTinyEmbedderModel(path.join(root, 'models', 'embedder'));
  // Port 9 (discard) refuses connections: a pull fails the way it does without a network.
  server = await startServer(
    parseServeArguments(['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off', '--hf-endpoint', 'http://127.0.0.1:9'], {}),
    {
      logger: pino({ level: 'silent' }),
    },
  );
  base = server.httpUrl ?? '';
  ollama = new Ollama({ host: base });
});

afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

/** The duration and count fields of a final line, as the client's types declare them. */
function expectCounters(response: ChatResponse | GenerateResponse): void {
  for (const field of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration'] as const) {
    expect(Number.isInteger(response[field])).toBe(true);
  }
  expect(response.total_duration).toBeGreaterThan(0);
  expect(response.prompt_eval_count).toBeGreaterThan(0);
  expect(response.total_duration).toBeGreaterThanOrEqual(response.prompt_eval_duration + response.eval_duration);
}

/** A list entry carries `modified_at`; a ps entry, as Ollama sends it, `expires_at` instead. */
function expectModelEntry(entry: ModelResponse, name: string, date: 'modified_at' | 'expires_at'): void {
  expect(entry.name).toBe(name);
  expect(entry.model).toBe(name);
  expect(entry.size).toBeGreaterThan(0);
  expect(entry.digest).toMatch(/^[0-9a-f]{64}$/);
  expect(Number.isNaN(Date.parse(String(entry[date])))).toBe(false);
}

describe('the ollama client against our server', () => {
  it('version, and GET / as Ollama answers it', async () => {
    expect(await ollama.version()).toMatchObject({ version: '0.12.0' });
    const root = await fetch(`${base}/`);
    expect([root.status, root.headers.get('content-type'), await root.text()]).toEqual([200, 'text/plain; charset=utf-8', 'Ollama is running']);
  });

  it('list: every text and embedding model, named name:tag, with details', async () => {
    const { models } = await ollama.list();
    expect(models.map((model) => model.name).sort()).toEqual(['chat:latest', 'embedder:latest', 'thinker:latest']);
    const chat = models.find((model) => model.name === 'chat:latest') as ModelResponse;
    expectModelEntry(chat, 'chat:latest', 'modified_at');
    expect(chat.details).toEqual({
      parent_model: '',
      format: 'gguf',
      family: 'llama',
      families: ['llama'],
      parameter_size: expect.stringMatching(/^\d+(\.\d+)?[KMB]$/),
      quantization_level: 'F16',
      context_length: 2048,
      embedding_length: 64,
    });
    expect((models.find((model) => model.name === 'embedder:latest') as ModelResponse).details.format).toBe('onnx');
  });

  it('show: the GGUF template, model_info and capabilities', async () => {
    const shown = await ollama.show({ model: 'chat' });
    expect(shown.template).toBe(chatMlToolsTemplate);
    expect(shown.details).toMatchObject({ format: 'gguf', family: 'llama', quantization_level: 'F16' });
    expect(shown.model_info).toMatchObject({ 'general.architecture': 'llama', 'llama.context_length': 2048, 'llama.embedding_length': 64 });
    expect(shown.capabilities).toEqual(['completion', 'tools']);
    expect(shown.modelfile).toContain('FROM ');
    expect((await ollama.show({ model: 'thinker:latest' })).capabilities).toEqual(['completion', 'tools', 'thinking']);
  });

  it('chat without streaming: the message, done_reason and the counters in nanoseconds', async () => {
    const response = await ollama.chat({ model: 'chat', messages: [{ role: 'user', content: 'Hello' }], options: fixed });
    expect(response.model).toBe('chat');
    expect(Number.isNaN(Date.parse(String(response.created_at)))).toBe(false);
    expect(response.message.role).toBe('assistant');
    expect(response.message.content.length).toBeGreaterThan(0);
    expect([response.done, response.done_reason]).toEqual([true, 'length']);
    expect([5, 6]).toContain(response.eval_count);
    expectCounters(response);
  });

  it('chat streaming: a line per piece, the last one done with the counters', async () => {
    const parts: ChatResponse[] = [];
    for await (const part of await ollama.chat({ model: 'chat:latest', messages: [{ role: 'user', content: 'Stream' }], stream: true, options: fixed }))
      parts.push(part);
    expect(parts.length).toBeGreaterThan(2);
    expect(parts.slice(0, -1).every((part) => !part.done && part.message.role === 'assistant')).toBe(true);
    const last = parts[parts.length - 1] as ChatResponse;
    expect([last.done, last.done_reason, last.model]).toEqual([true, 'length', 'chat:latest']);
    expectCounters(last);
  });

  it('chat with tools and a tool result in the history, and with format json or a schema', async () => {
    const tools = [
      {
        type: 'function',
        function: { name: 'get_tide', description: 'Tide times', parameters: { type: 'object', properties: { port: { type: 'string' } }, required: ['port'] } },
      },
    ];
    const plain = await ollama.chat({ model: 'chat', messages: [{ role: 'user', content: 'Tides?' }], options: fixed });
    const withTools = await ollama.chat({
      model: 'chat',
      tools,
      options: fixed,
      messages: [
        { role: 'user', content: 'Tides?' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_tide', arguments: { port: 'Brest' } } }] },
        { role: 'tool', content: '{"high":"06:12"}', tool_name: 'get_tide' },
      ],
    });
    expect(withTools.prompt_eval_count).toBeGreaterThan(plain.prompt_eval_count + 50);
    // The random fixture model never closes a free JSON string, so format json is checked by its
    // grammar: the answer opens an object (the unconstrained answer does not) and stops at the budget.
    const json = await ollama.chat({ model: 'chat', messages: [{ role: 'user', content: 'JSON' }], format: 'json', options: { seed: 1, num_predict: 40 } });
    const free = await ollama.chat({ model: 'chat', messages: [{ role: 'user', content: 'JSON' }], options: { seed: 1, num_predict: 40 } });
    expect([json.message.content.startsWith('{"'), json.done_reason, free.message.content.startsWith('{')]).toEqual([true, 'length', false]);
    const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] } }, required: ['answer'] };
    const shaped = await ollama.chat({
      model: 'chat',
      messages: [{ role: 'user', content: 'Yes or no' }],
      format: schema,
      options: { seed: 2, num_predict: 60 },
    });
    expect(['yes', 'no']).toContain((JSON.parse(shaped.message.content) as { answer: string }).answer);
  });

  it('think: the thinking in message.thinking, and none with think false', async () => {
    const thinking = await ollama.chat({ model: 'thinker', messages: [{ role: 'user', content: 'Think' }], think: true, options: fixed });
    expect(thinking.message.thinking?.length).toBeGreaterThan(0);
    expect(thinking.message.content).toBe('');
    const direct = await ollama.chat({ model: 'thinker', messages: [{ role: 'user', content: 'Answer' }], think: false, options: fixed });
    expect(direct.message.content.length).toBeGreaterThan(0);
    const streamed: ChatResponse[] = [];
    for await (const part of await ollama.chat({ model: 'thinker', messages: [{ role: 'user', content: 'Think more' }], stream: true, options: fixed }))
      streamed.push(part);
    expect(streamed.filter((part) => (part.message.thinking ?? '') !== '').length).toBeGreaterThan(0);
  });

  it('generate, streaming and not, with the chat template or raw', async () => {
    const whole = await ollama.generate({ model: 'chat', prompt: 'Once upon a time', system: 'Be brief.', options: fixed });
    expect([whole.model, whole.done, whole.done_reason, typeof whole.response]).toEqual(['chat', true, 'length', 'string']);
    expect(whole.response?.length).toBeGreaterThan(0);
    expectCounters(whole);
    const raw = await ollama.generate({ model: 'chat', prompt: 'Once upon a time', raw: true, options: fixed });
    // raw sends the prompt alone: fewer prompt tokens than with the template around it.
    expect(raw.prompt_eval_count).toBeLessThan(whole.prompt_eval_count);
    const parts: GenerateResponse[] = [];
    for await (const part of await ollama.generate({ model: 'chat', prompt: 'Stream it', stream: true, options: fixed })) parts.push(part);
    expect(parts[parts.length - 1]).toMatchObject({ done: true, done_reason: 'length', response: '' });
    expect(
      parts
        .slice(0, -1)
        .map((part) => part.response)
        .join('').length,
    ).toBeGreaterThan(0);
  });

  it('embed and the legacy embeddings', async () => {
    const embedded = await ollama.embed({ model: 'embedder', input: ['the tide', 'the moon'] });
    expect(embedded.model).toBe('embedder');
    expect(embedded.embeddings.map((vector) => vector.length)).toEqual([32, 32]);
    expect(Math.hypot(...(embedded.embeddings[0] ?? []))).toBeCloseTo(1, 5);
    expect(embedded.prompt_eval_count).toBeGreaterThan(0);
    expect(Number.isInteger(embedded.total_duration)).toBe(true);
    const legacy = await ollama.embeddings({ model: 'embedder', prompt: 'the tide' });
    expect(legacy.embedding).toEqual(embedded.embeddings[0]);
  });

  it('ps lists what is loaded; keep_alive 0 with no messages unloads it', async () => {
    await ollama.chat({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], options: fixed, keep_alive: '10m' });
    const loaded = (await ollama.ps()).models.find((model) => model.name === 'chat:latest') as ModelResponse;
    expectModelEntry(loaded, 'chat:latest', 'expires_at');
    expect(loaded.size_vram).toBe(0);
    expect(Date.parse(String(loaded.expires_at))).toBeGreaterThan(Date.now() + 9 * 60_000);
    const unloaded = await ollama.chat({ model: 'chat', messages: [], keep_alive: 0 });
    expect([unloaded.done, unloaded.done_reason]).toEqual([true, 'unload']);
    expect((await ollama.ps()).models.map((model) => model.name)).not.toContain('chat:latest');
    const reloaded = await ollama.generate({ model: 'chat', prompt: '' });
    expect(reloaded.done_reason).toBe('load');
    expect((await ollama.ps()).models.map((model) => model.name)).toContain('chat:latest');
  });

  it('copy makes another name for a model (what a tool hard-coded to gpt-4o-mini needs); delete removes only the name', async () => {
    expect(await ollama.copy({ source: 'chat', destination: 'gpt-4o-mini' })).toEqual({ status: 'success' });
    expect((await ollama.list()).models.map((model) => model.name)).toContain('gpt-4o-mini:latest');
    const answered = await ollama.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], options: fixed });
    expect(answered.model).toBe('gpt-4o-mini');
    const openAi = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    expect(openAi.status).toBe(200);
    expect(await ollama.delete({ model: 'gpt-4o-mini' })).toEqual({ status: 'success' });
    expect((await ollama.list()).models.map((model) => model.name).sort()).toEqual(['chat:latest', 'embedder:latest', 'thinker:latest']);
  });

  it('errors arrive as the client reads them: status and message', async () => {
    await expect(ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({
      status_code: 404,
      error: expect.stringContaining('no-such-model'),
    });
    await expect(ollama.delete({ model: 'no-such-model' })).rejects.toMatchObject({ status_code: 404 });
    await expect(ollama.pull({ model: 'hf.co/owner/repo:Q4_K_M' })).rejects.toMatchObject({
      status_code: 502,
      error: 'Cannot reach 127.0.0.1:9: ECONNREFUSED',
    });
    const bad = await fetch(`${base}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' });
    expect([bad.status, bad.headers.get('content-type')]).toEqual([400, 'application/json; charset=utf-8']);
    expect(Object.keys((await bad.json()) as object)).toEqual(['error']);
  });
});

describe('raw HTTP as scripts and containers send it', () => {
  function post(pathName: string, body: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const url = new URL(base);
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        { host: url.hostname, port: url.port, method: 'POST', path: pathName, headers: { 'content-length': Buffer.byteLength(body), ...headers } },
        (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  it("accepts a JSON body sent as curl -d sends it (form content type), and Docker's host.docker.internal", async () => {
    const body = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: false, options: fixed });
    const curl = await post('/api/chat', body, { 'content-type': 'application/x-www-form-urlencoded', host: `localhost:${new URL(base).port}` });
    expect(curl.status).toBe(200);
    expect((JSON.parse(curl.body) as { done: boolean }).done).toBe(true);
    const docker = await post('/v1/chat/completions', JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }), {
      'content-type': 'application/json',
      host: `host.docker.internal:${new URL(base).port}`,
    });
    expect(docker.status).toBe(200);
    const foreign = await post('/api/tags', '', { host: 'evil.example' });
    expect(foreign.status).toBe(403);
  });
});
