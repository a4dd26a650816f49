import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { createApiApp } from '@tabagent/api';
import { createGgufModelManager, ggufModelInspector, type GgufModelManager } from '@tabagent/gguf-loader';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { ModelNotFoundError, createAppStateProvider } from '@tabagent/values';
import { composeHandlers } from '../src/handlers/compose-handlers.js';
import { createEmbeddingHandlers } from '../src/handlers/embedding-handlers.js';
import { createGenerationHandlers } from '../src/handlers/generation-handlers.js';
import { createGgufModelAccess } from '../src/handlers/gguf-model-access.js';
import { createModelHandlers } from '../src/handlers/model-handlers.js';
import { createModelRegistry } from '../src/model-registry.js';

// The official openai client against the HTTP transport with the GGUF backend composed as the
// server composes it (registry + manager + model/generation/embedding handler groups).
let root: string;
let manager: GgufModelManager;
let server: Server;
let client: OpenAI;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'openai-client-'));
  const dataDir = path.join(root, 'data');
  mkdirSync(path.join(dataDir, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(dataDir, 'models', 'tiny.gguf'));
  manager = createGgufModelManager({ gpu: false, defaultThreads: 1, defaultContextSize: 1024, sequences: 2, chatWrapper: 'general', defaultKeepAlive: -1 });
  const registry = createModelRegistry({ dataDir, inspectors: [ggufModelInspector] });
  const access = createGgufModelAccess({ manager, registry });
  const handlers = composeHandlers(
    createModelHandlers({ manager, registry, access, availableMemory: async () => ({ ramBytes: 4 * 1024 ** 3, vramBytes: 0 }) }),
    createGenerationHandlers({ manager, registry, access }),
    createEmbeddingHandlers({
      resolveEmbedder: async (modelId) => {
        if (modelId === undefined) throw new ModelNotFoundError('Name a model');
        return access.embedder(modelId);
      },
      resolveReranker: async () => null,
      listEmbeddingModels: async () => [],
    }),
  );
  server = createApiApp(createAppStateProvider(handlers), { allowedOrigins: [] }).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  client = new OpenAI({ baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await manager.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** llama-server's `ignore_eos`, which the openai client passes through: no end-of-generation token is sampled. */
const ignoreEos = { ignore_eos: true };
/** llama-server's cache_prompt off: runs compared for equal output each evaluate their whole prompt. */
const evaluateAll = { cache_prompt: false };

describe('the openai client against our server', () => {
  it('models.list shows the GGUF file of the models folder', async () => {
    const page = await client.models.list();
    expect(page.data.map((model) => model.id)).toEqual(['tiny']);
    expect(page.data[0]).toMatchObject({ object: 'model', owned_by: 'tabagent' });
  });

  it('chat.completions.create without stream', async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 6,
      seed: 3,
      ...ignoreEos,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('tiny');
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.choices[0]?.message.role).toBe('assistant');
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([6, 7]).toContain(completion.usage?.completion_tokens);
  });

  it('chat.completions.create with stream gives the same text and a final usage', async () => {
    const body = { model: 'tiny', messages: [{ role: 'user' as const, content: 'Stream' }], max_tokens: 8, seed: 9, ...ignoreEos, ...evaluateAll };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(finish).toBe('length');
    expect(usage).toEqual(whole.usage);
  });

  it('chat.completions.create with a JSON schema response_format returns JSON that validates', async () => {
    const completion = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Give JSON' }],
      max_tokens: 100,
      seed: 1,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'flag', schema: { type: 'object', properties: { flag: { type: 'boolean' } }, required: ['flag'] } },
      },
    });
    expect(typeof (JSON.parse(completion.choices[0]?.message.content ?? '') as { flag: unknown }).flag).toBe('boolean');
  });

  it('completions.create, streaming and not', async () => {
    const whole = await client.completions.create({ model: 'tiny', prompt: 'the world', max_tokens: 5, seed: 2, ...ignoreEos, ...evaluateAll });
    expect(whole.object).toBe('text_completion');
    // node-llama-cpp samples one token past max_tokens when the last is a partial UTF-8 byte token.
    expect([5, 6]).toContain(whole.usage?.completion_tokens);
    const stream = await client.completions.create({ model: 'tiny', prompt: 'the world', max_tokens: 5, seed: 2, stream: true, ...ignoreEos, ...evaluateAll });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(whole.choices[0]?.text);
  });

  it('embeddings.create with the GGUF model gives unit vectors of its hidden size', async () => {
    const response = await client.embeddings.create({ model: 'tiny', input: ['hello world', 'cat'], encoding_format: 'float' });
    expect(response.data).toHaveLength(2);
    for (const item of response.data) {
      expect(item.embedding).toHaveLength(64);
      expect(Math.hypot(...item.embedding)).toBeCloseTo(1, 5);
    }
    expect(response.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('a stop request by request id ends a stream with cancelled', async () => {
    // Only the stop can end it: no end-of-generation token, and a budget far beyond the context.
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Long' }],
      max_tokens: 1_000_000,
      stream: true,
      ...ignoreEos,
    });
    let finish: string | null = null;
    let count = 0;
    for await (const chunk of stream) {
      count++;
      if (count === 3) {
        const requestId = (chunk as unknown as { request_id: string }).request_id;
        const stopped = await fetch(`${client.baseURL}/generation/stop`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ request_id: requestId }),
        });
        expect(await stopped.json()).toMatchObject({ status: 'stopped', request_id: requestId });
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('cancelled');
  });
});
