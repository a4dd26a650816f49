import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { pino } from 'pino';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { routeList } from '@tabagent/values';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';
import { waitUntilIndexed } from './support/memory-status.js';

// The whole server as `tabagent serve` composes it (registry, GGUF and ONNX backends, memory,
// HTTP), driven by the official openai client and plain fetch.
let root: string;
let server: RunningServer;
let client: OpenAI;
let base: string;

const json = async (url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> => {
  const response = await fetch(`${base}${url}`, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};
const post = (url: string, body: unknown) => json(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'tabagent-server-'));
  mkdirSync(path.join(root, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(root, 'models', 'tiny-llama.gguf'));
  await writeTinyEmbedderModel(path.join(root, 'models', 'tiny-embedder'));
  const config = parseServeArguments(['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off'], {});
  server = await startServer(config, { logger: pino({ level: 'silent' }) });
  base = server.httpUrl as string;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

/** llama-server's `ignore_eos`, which the openai client passes through: a generation ends by max_tokens only. */
const ignoreEos = { ignore_eos: true };
/** Runs compared for equal output each evaluate their whole prompt (llama-server's cache_prompt off). */
const evaluateAll = { cache_prompt: false };

describe('tabagent serve (in-process)', () => {
  it('binds loopback and answers health', async () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { status, body } = await json('/v1/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'tabagent-server' });
  });

  it('lists the GGUF file and the ONNX folder of the models folder', async () => {
    const page = await client.models.list();
    expect(page.data.map((model) => model.id).sort()).toEqual(['tiny-embedder', 'tiny-llama']);
    const byId = Object.fromEntries(page.data.map((model) => [model.id, model as unknown as Record<string, unknown>]));
    expect(byId['tiny-llama']).toMatchObject({ format: 'gguf', task: 'text-generation' });
    expect(byId['tiny-embedder']).toMatchObject({ format: 'onnx', task: 'embedding' });
  });

  it('chats with the only text model, loading it on demand, with real usage', async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny-llama',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 5,
      seed: 7,
      ...ignoreEos,
      ...evaluateAll,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.usage?.completion_tokens).toBeGreaterThanOrEqual(5);
    expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0));
    const again = await client.chat.completions.create({
      model: 'tiny-llama',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 5,
      seed: 7,
      ...ignoreEos,
      ...evaluateAll,
    });
    expect(again.choices[0]?.message.content).toBe(completion.choices[0]?.message.content);
  });

  it('streams chat chunks ending with finish_reason and usage', async () => {
    const stream = await client.chat.completions.create({
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4,
      stream: true,
      model: 'tiny-llama',
      ...ignoreEos,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const last = chunks.at(-1);
    expect(last?.choices[0]?.finish_reason).toBe('length');
    expect(last?.usage?.completion_tokens).toBeGreaterThanOrEqual(4);
  });

  it('completes a raw prompt', async () => {
    const completion = await client.completions.create({ model: 'tiny-llama', prompt: 'Once upon', max_tokens: 3, ...ignoreEos });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0]?.finish_reason).toBe('length');
  });

  it('embeds with the ONNX model by default', async () => {
    const result = await client.embeddings.create({ input: ['hello world', 'the cat'], model: 'tiny-embedder', encoding_format: 'float' });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding).toHaveLength(32);
    const norm = Math.hypot(...(result.data[0]?.embedding ?? []));
    expect(norm).toBeCloseTo(1, 5);
    const byDefault = await post('/v1/embeddings', { input: 'hello world' });
    expect(byDefault.status).toBe(200);
    expect(byDefault.body['model']).toBe('tiny-embedder');
  });

  it('makes saved messages and pages searchable and feeds them to chat', async () => {
    const saved = await post('/v1/sessions/s1/messages', { message: { role: 'user', content: 'The lighthouse keeper painted the door blue.' } });
    expect(saved.status).toBe(200);
    const page = await post('/v1/documents', { url: 'https://example.org/bread', title: 'Bread', text: 'Sourdough bread needs a starter and a long rise.' });
    expect(page.body).toMatchObject({ status: 'queued', kind: 'webpage' });
    await waitUntilIndexed(base);
    const hits = (await post('/v1/rag/query', { query: 'lighthouse door', k: 5 })).body['results'] as { source: { id: string } }[];
    expect(hits.map((hit) => hit.source.id)).toEqual([saved.body['message_id'], page.body['document_id']]);
    const chat = await post('/v1/chat/completions', {
      model: 'tiny-llama',
      messages: [{ role: 'user', content: 'what colour is the lighthouse door?' }],
      max_tokens: 2,
      memory: { k: 1 },
    });
    expect(chat.status).toBe(200);
    expect((chat.body['memory_sources'] as { id: string }[]).map((source) => source.id)).toEqual([saved.body['message_id']]);
  });

  it('serves an OpenAPI document with every route, WebRTC signalling included', async () => {
    const { body } = await json('/api-doc/openapi.json');
    const operations = Object.values(body['paths'] as Record<string, Record<string, unknown>>).reduce((sum, methods) => sum + Object.keys(methods).length, 0);
    expect(operations).toBe(routeList.length);
    const webrtc = await post('/v1/webrtc/offer', { sdp: 'v=0' });
    // The transport is real now: an SDP that is no offer is refused for what it lacks.
    expect(webrtc.status).toBe(400);
    expect(webrtc.body).toMatchObject({
      code: 'invalid_request',
      detail:
        'The SDP offer is not usable: it has no data channel section (m=application ... webrtc-datachannel); it has no a=ice-ufrag; it has no a=ice-pwd; it has no a=fingerprint',
    });
  });
});
