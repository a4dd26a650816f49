import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { pino } from 'pino';
import { chatMlToolsTemplate, thinkingChatTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';

// The whole server with GGUFs that carry Jinja templates, as downloaded models do (a ChatML one
// with tools, and a reasoning one that opens a thought), driven by the official openai client.
let root: string;
let server: RunningServer;
let client: OpenAI;

/** What llama-server, vLLM and DeepSeek add to OpenAI's message and delta (the client passes it on). */
interface WithReasoning {
  reasoning_content?: string;
}

/** llama-server's options the openai client passes through. */
const ignoreEos = { ignore_eos: true };

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'tabagent-reasoning-'));
  mkdirSync(path.join(root, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(root, 'models', 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
  writeTinyLlamaGguf(path.join(root, 'models', 'thinker.gguf'), { chatTemplate: thinkingChatTemplate });
  server = await startServer(parseServeArguments(['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off'], {}), {
    logger: pino({ level: 'silent' }),
  });
  client = new OpenAI({ baseURL: `${server.httpUrl ?? ''}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

describe('reasoning_content', () => {
  it('returns the thinking apart from the answer, and counts it as reasoning tokens', async () => {
    const completion = await client.chat.completions.create({
      model: 'thinker',
      messages: [{ role: 'user', content: 'Think' }],
      max_tokens: 8,
      seed: 1,
      ...ignoreEos,
    });
    const message: (OpenAI.ChatCompletionMessage & WithReasoning) | undefined = completion.choices[0]?.message;
    // The template opens a thought and this random model never closes it.
    expect(message?.content).toBe('');
    expect(message?.reasoning_content?.length).toBeGreaterThan(0);
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBe(completion.usage?.completion_tokens);
  });

  it('streams the thinking as reasoning_content deltas as it is produced', async () => {
    const stream = await client.chat.completions.create({
      model: 'thinker',
      messages: [{ role: 'user', content: 'Think aloud' }],
      max_tokens: 8,
      seed: 2,
      stream: true,
      ...ignoreEos,
    });
    const deltas: (OpenAI.ChatCompletionChunk.Choice.Delta & WithReasoning)[] = [];
    for await (const chunk of stream) if (chunk.choices[0] !== undefined) deltas.push(chunk.choices[0].delta);
    const thinking = deltas.filter((delta) => delta.reasoning_content !== undefined);
    expect(thinking.length).toBeGreaterThan(1);
    expect(thinking.every((delta) => delta.content === undefined)).toBe(true);
    expect(deltas.filter((delta) => (delta.content ?? '') !== '')).toEqual([]);
  });

  it("takes reasoning_effort none: the model answers without thinking (Ollama's think belongs to /api/chat)", async () => {
    for (const off of [{ reasoning_effort: 'none' as const }]) {
      const completion = await client.chat.completions.create({
        model: 'thinker',
        messages: [{ role: 'user', content: 'Answer' }],
        max_tokens: 8,
        seed: 3,
        ...ignoreEos,
        ...off,
      });
      const message = completion.choices[0]?.message as OpenAI.ChatCompletionMessage & WithReasoning;
      expect(message.content?.length).toBeGreaterThan(0);
      expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBeLessThanOrEqual(1);
    }
  });
});

describe('KV cache reuse and token budget', () => {
  it('reports the prompt tokens a later turn reused from the cache', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'First question' }];
    const first = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 4, seed: 4, ...ignoreEos });
    messages.push({ role: 'assistant', content: first.choices[0]?.message.content ?? '' }, { role: 'user', content: 'Second question' });
    const second = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 4, seed: 4, ...ignoreEos });
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThanOrEqual(first.usage?.prompt_tokens ?? Infinity);
    const uncached = await client.chat.completions.create({
      model: 'chat',
      messages,
      max_tokens: 4,
      seed: 4,
      ...ignoreEos,
      cache_prompt: false,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect([uncached.usage?.prompt_tokens_details?.cached_tokens, uncached.usage?.prompt_tokens]).toEqual([0, second.usage?.prompt_tokens]);
  });

  it('with max_tokens -1 generates until the context is full and says length', async () => {
    const completion = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Go' }], max_tokens: -1, ...ignoreEos });
    expect(completion.choices[0]?.finish_reason).toBe('length');
    // The GGUF was trained for 2048 tokens; 8 stay free for what the chat format adds.
    expect([2040, 2041]).toContain(completion.usage?.total_tokens);
  }, 60_000);

  it('answers a prompt longer than the context with a context_length_exceeded problem', async () => {
    const response = await fetch(`${server.httpUrl ?? ''}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'word '.repeat(3000) }] }),
    });
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { code: string; context_size: number; prompt_tokens: number };
    expect(problem.code).toBe('context_length_exceeded');
    expect(problem.context_size).toBe(2048);
    expect(problem.prompt_tokens).toBeGreaterThan(2048);
    // Streamed, the same problem with its status: nothing is sent before the prompt is known to fit.
    const streamed = await fetch(`${server.httpUrl ?? ''}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'word '.repeat(3000) }] }),
    });
    expect(streamed.status).toBe(400);
    expect(((await streamed.json()) as { code: string }).code).toBe('context_length_exceeded');
  });
});
