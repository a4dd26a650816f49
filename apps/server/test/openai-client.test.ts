import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { createApiApp } from '@tabagent/api';
import { createGgufModelBackend, createGgufModelManager, ggufModelInspector, type GgufModelManager } from '@tabagent/gguf-loader';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { ModelNotFoundError, createAppStateProvider } from '@tabagent/values';
import { createModelRegistry, createModelResolver } from '@tabagent/model-cache';
import { composeHandlers, createEmbeddingHandlers, createGenerationHandlers, createModelHandlers, createRunningRequests } from '@tabagent/services';

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
  const models = createModelResolver({ registry, backends: [createGgufModelBackend(manager)] });
  const handlers = composeHandlers(
    createModelHandlers({ models, availableMemory: async () => ({ ramBytes: 4 * 1024 ** 3, vramBytes: 0 }) }),
    createGenerationHandlers({ models, running: createRunningRequests() }),
    createEmbeddingHandlers({
      resolveEmbedder: async (modelId) => {
        if (modelId === undefined) throw new ModelNotFoundError('Name a model');
        return models.resolveEmbedder(modelId);
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
    // llama-server's timings, the figures stats.get keeps for this request.
    const { timings } = completion as typeof completion & { timings: Record<string, number | null> };
    expect(timings).toMatchObject({ prompt_n: completion.usage?.prompt_tokens, predicted_n: completion.usage?.completion_tokens });
    expect(timings['prompt_ms']).toBeGreaterThan(0);
    expect(timings['predicted_ms']).toBeGreaterThan(0);
    expect(timings['predicted_per_second']).toBeGreaterThan(0);
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

  it('tools: a forced call arrives whole and as stream deltas the client assembles', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'lookup', parameters: { type: 'object', properties: { q: { enum: ['a', 'b'] } }, required: ['q'] } },
      },
    ];
    const body = {
      model: 'tiny',
      messages: [{ role: 'user' as const, content: 'Use the tool' }],
      max_tokens: 100,
      seed: 6,
      tools,
      tool_choice: 'required' as const,
    };
    const whole = await client.chat.completions.create(body);
    const call = whole.choices[0]?.message.tool_calls?.[0];
    expect([whole.choices[0]?.finish_reason, call?.type, call?.type === 'function' ? call.function.name : undefined]).toEqual([
      'tool_calls',
      'function',
      'lookup',
    ]);
    const stream = client.chat.completions.stream({ ...body, ...evaluateAll });
    const assembled = await stream.finalChatCompletion();
    const streamed = assembled.choices[0]?.message.tool_calls?.[0];
    expect(assembled.choices[0]?.finish_reason).toBe('tool_calls');
    expect(streamed?.type === 'function' ? [streamed.function.name, JSON.parse(streamed.function.arguments) as unknown] : undefined).toEqual([
      'lookup',
      call?.type === 'function' ? (JSON.parse(call.function.arguments) as unknown) : undefined,
    ]);
  });

  it('tools: a call streams as it is generated, id and name first, then argument fragments only', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'lookup',
          strict: true,
          parameters: { type: 'object', properties: { q: { enum: ['alpha', 'beta'] }, n: { enum: [1, 2] } }, required: ['q', 'n'] },
        },
      },
    ];
    const body = { model: 'tiny', messages: [{ role: 'user' as const, content: 'Use the tool' }], max_tokens: 100, tools, tool_choice: 'required' as const };
    const deltas: {
      index: number;
      id?: string | undefined;
      type?: string | undefined;
      function?: { name?: string | undefined; arguments?: string | undefined } | undefined;
    }[] = [];
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) deltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
    expect(deltas.length).toBeGreaterThan(2);
    const [first, ...rest] = deltas;
    expect(first).toEqual({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'lookup', arguments: '' } });
    for (const delta of rest) expect(Object.keys(delta).sort()).toEqual(['function', 'index']);
    const argumentsText = rest.map((delta) => delta.function?.arguments ?? '').join('');
    expect(JSON.parse(argumentsText)).toEqual({ q: expect.stringMatching(/^(alpha|beta)$/), n: expect.any(Number) });
    // The stream helper (ChatCompletionStream) assembles it and says when the arguments are done.
    const stream = client.chat.completions.stream(body);
    const done: { name: string; arguments: string }[] = [];
    stream.on('tool_calls.function.arguments.done', (event) => done.push({ name: event.name, arguments: event.arguments }));
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(done).toEqual([{ name: 'lookup', arguments: call?.type === 'function' ? call.function.arguments : '' }]);
    expect(final.choices[0]?.message.content ?? '').toBe('');
  });

  it('tools: a round trip with content null, a tool message in parts, and tool_choice none calls nothing', async () => {
    const answer = await client.chat.completions.create({
      model: 'tiny',
      max_tokens: 4,
      tool_choice: 'none',
      parallel_tool_calls: false,
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
      messages: [
        { role: 'user', content: 'Use the tool' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'found it' }] },
      ],
    });
    expect(answer.choices[0]?.message.tool_calls).toBeUndefined();
    expect(['stop', 'length']).toContain(answer.choices[0]?.finish_reason);
  });

  it('errors reach the client with our detail: message, code, type, param and status', async () => {
    const unknown = await client.chat.completions
      .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'Hi' }] })
      .catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    const notFound = unknown as InstanceType<typeof OpenAI.NotFoundError>;
    expect([notFound.status, notFound.code, notFound.type, notFound.param]).toEqual([404, 'model_not_found', 'invalid_request_error', 'model']);
    expect(notFound.message).toBe('404 No model with id "no-such-model" is registered');
    const bad = await client.chat.completions
      .create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], temperature: 'hot' as unknown as number })
      .catch((error: unknown) => error);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    const badRequest = bad as InstanceType<typeof OpenAI.BadRequestError>;
    expect([badRequest.status, badRequest.code, badRequest.type, badRequest.param]).toEqual([400, 'invalid_request', 'invalid_request_error', 'temperature']);
    expect(badRequest.message).toMatch(/^400 Invalid request for chat\.completions: temperature: /);
  });

  it('every field the OpenAI spec marks nullable may be null, meaning unset', async () => {
    const nulls = {
      stop: null,
      max_tokens: null,
      max_completion_tokens: null,
      temperature: null,
      top_p: null,
      seed: null,
      n: null,
      tools: null,
      tool_choice: null,
      parallel_tool_calls: null,
      response_format: null,
      stream: null,
      stream_options: null,
      user: null,
      logprobs: null,
      top_logprobs: null,
      logit_bias: null,
      presence_penalty: null,
      frequency_penalty: null,
    };
    const messages = [
      { role: 'system', content: 'Be brief', name: null },
      { role: 'user', content: 'Hello', name: null },
      { role: 'assistant', content: 'Hi', tool_calls: null, name: null },
      { role: 'user', content: 'Again' },
    ];
    const chat = await client.chat.completions.create({ model: 'tiny', messages, ...nulls, max_tokens: 3, ...ignoreEos } as never);
    expect([chat.object, chat.choices[0]?.finish_reason]).toEqual(['chat.completion', 'length']);
    const completion = await client.completions.create({
      model: 'tiny',
      prompt: 'Hi',
      ...nulls,
      max_tokens: 3,
      echo: null,
      suffix: null,
      best_of: null,
      ...ignoreEos,
    } as never);
    expect([completion.object, completion.choices[0]?.finish_reason]).toEqual(['text_completion', 'length']);
    const embedded = await client.embeddings.create({ model: 'tiny', input: 'Hi', encoding_format: null, dimensions: null, user: null } as never);
    expect(embedded.data[0]?.embedding).toHaveLength(64);
  });

  it('embeddings as base64 (what the client asks for by default) decode to the float vectors', async () => {
    const floats = await client.embeddings.create({ model: 'tiny', input: ['tide tables'], encoding_format: 'float' });
    // Without encoding_format the client requests base64 and decodes it itself.
    const decoded = await client.embeddings.create({ model: 'tiny', input: ['tide tables'] });
    expect(decoded.data[0]?.embedding).toEqual(floats.data[0]?.embedding);
    const raw = await client.embeddings.create({ model: 'tiny', input: ['tide tables'], encoding_format: 'base64' });
    const bytes = Buffer.from(raw.data[0]?.embedding as unknown as string, 'base64');
    expect(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4))).toEqual(floats.data[0]?.embedding);
  });

  it('logit_bias steers sampling, and what cannot be given is refused, not ignored', async () => {
    // The fixture's vocabulary: 3 specials, 256 byte tokens, then "▁", then "a" (id 260).
    const letterA = 3 + 256 + 1;
    const body = { model: 'tiny', messages: [{ role: 'user' as const, content: 'Bias' }], max_tokens: 4, temperature: 0, ...ignoreEos };
    const plain = await client.chat.completions.create(body);
    const biased = await client.chat.completions.create({ ...body, logit_bias: { [String(letterA)]: 100 } });
    expect([plain.choices[0]?.message.content === 'aaaa', biased.choices[0]?.message.content]).toEqual([false, 'aaaa']);
    const completion = await client.completions.create({
      model: 'tiny',
      prompt: 'Bias',
      max_tokens: 3,
      temperature: 0,
      logit_bias: { [String(letterA)]: 100 },
      ...ignoreEos,
    });
    expect(completion.choices[0]?.text).toBe('aaa');
    for (const [field, value] of [
      ['n', 2],
      ['logprobs', true],
    ] as const) {
      const refused = await client.chat.completions.create({ ...body, [field]: value }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
      expect((refused as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(field);
    }
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
    let cancelled: unknown;
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
      cancelled = (chunk as unknown as { tabagent?: unknown }).tabagent ?? cancelled;
    }
    // Within OpenAI's enum (the client's types allow no other), with the stop said beside it.
    expect([finish, cancelled]).toEqual(['stop', { cancelled: true }]);
  });
});
