import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TabAgentError } from '@tabagent/values';
import type { ChatGenerationRequest, GenerationChatMessage, GenerationDelta } from '@tabagent/values';
import { createGgufModelManager, type GgufModelManager } from '../src/index.js';
import { chatMlToolsTemplate, thinkingChatTemplate, writeTinyLlamaGguf } from '../src/test-support/index.js';

// The chat path as a user of a real model meets it: GGUFs that carry Jinja chat templates, the
// wrapper resolved by node-llama-cpp ("auto"), KV-cache reuse across requests, reasoning output.
const directory = mkdtempSync(join(tmpdir(), 'gguf-chat-'));
const chatModel = join(directory, 'chatml-tools.gguf');
const thinkingModel = join(directory, 'thinking.gguf');
const logs: string[] = [];
const logger = {
  debug: () => undefined,
  info: (_fields: unknown, message?: string) => logs.push(message ?? ''),
  warn: () => undefined,
  error: () => undefined,
};

function newManager(sequences = 2): GgufModelManager {
  return createGgufModelManager({
    gpu: false,
    defaultThreads: 1,
    defaultContextSize: 1024,
    sequences,
    logger,
    availableMemory: async () => ({ ramBytes: 8 * 1024 ** 3, vramBytes: 0 }),
  });
}

let manager: GgufModelManager;

beforeAll(async () => {
  writeTinyLlamaGguf(chatModel, { chatTemplate: chatMlToolsTemplate });
  writeTinyLlamaGguf(thinkingModel, { chatTemplate: thinkingChatTemplate });
  manager = newManager();
  await manager.load('chat', chatModel, { keepAlive: -1 });
  await manager.load('thinking', thinkingModel, { keepAlive: -1 });
});

afterAll(async () => {
  await manager.dispose();
  rmSync(directory, { recursive: true, force: true });
});

const system: GenerationChatMessage = { role: 'system', content: 'Be brief.' };
const user = (content: string): GenerationChatMessage => ({ role: 'user', content });
const request = (messages: GenerationChatMessage[], extra: Partial<ChatGenerationRequest> = {}): ChatGenerationRequest => ({
  messages,
  maxTokens: 6,
  seed: 5,
  ignoreEos: true,
  ...extra,
});

/** A conversation of `turns` turns, history resent each turn as a chat UI does; the answers. */
async function converse(
  on: GgufModelManager,
  model: string,
  opening: string,
  turns: number,
  seed: number,
): Promise<{ texts: string[]; cached: number[]; prompts: number[] }> {
  const messages: GenerationChatMessage[] = [system];
  const texts: string[] = [];
  const cached: number[] = [];
  const prompts: number[] = [];
  for (let turn = 0; turn < turns; turn += 1) {
    messages.push(user(`${opening} ${turn}`));
    const result = await on.chat(model, request(messages, { seed: seed + turn })).result;
    messages.push({ role: 'assistant', content: result.text });
    texts.push(result.text);
    cached.push(result.cachedPromptTokens);
    prompts.push(result.promptTokens);
  }
  return { texts, cached, prompts };
}

describe('chat on GGUFs with Jinja templates', () => {
  it('resolves the chat wrapper once per load, not per request', async () => {
    const resolved = () => logs.filter((message) => message === 'Chat wrapper resolved').length;
    const before = resolved();
    for (let i = 0; i < 3; i += 1) await manager.chat('chat', request([system, user(`hello ${i}`)])).result;
    expect(resolved()).toBe(before);
    const fresh = newManager(1);
    await fresh.load('again', chatModel);
    expect(resolved()).toBe(before + 1);
    await fresh.dispose();
  });

  it('reuses the KV cache of the previous turn, and evaluates everything again with cachePrompt false', async () => {
    const first = await manager.chat('chat', request([system, user('A question about tides')])).result;
    const messages = [system, user('A question about tides'), { role: 'assistant' as const, content: first.text }, user('And the moon?')];
    const second = await manager.chat('chat', request(messages)).result;
    expect(second.promptTokens).toBeGreaterThan(first.promptTokens);
    // The whole first prompt is cached (and possibly some of the answer, re-tokenized alike).
    expect(second.cachedPromptTokens).toBeGreaterThanOrEqual(first.promptTokens);
    expect(second.cachedPromptTokens).toBeLessThan(second.promptTokens);
    const again = await manager.chat('chat', request(messages, { cachePrompt: false })).result;
    expect(again.cachedPromptTokens).toBe(0);
    expect(again.promptTokens).toBe(second.promptTokens);
    // The same prompt once more: all of it but the last token, evaluated again for its logits.
    const same = await manager.chat('chat', request(messages)).result;
    expect(same.cachedPromptTokens).toBe(same.promptTokens - 1);
  });

  it('reuses the KV cache for completions with the same tokens LlamaCompletion evaluates', async () => {
    const prompt = 'The keeper climbed the stairs of the lighthouse';
    const first = await manager.complete('chat', { prompt, maxTokens: 4, seed: 1, ignoreEos: true }).result;
    const second = await manager.complete('chat', { prompt: `${prompt} and looked at the sea`, maxTokens: 4, seed: 1, ignoreEos: true }).result;
    // Everything the first prompt's tokens share with the longer one (the last word may re-tokenize).
    expect(second.cachedPromptTokens).toBeGreaterThanOrEqual(first.promptTokens - 1);
    const same = await manager.complete('chat', { prompt: `${prompt} and looked at the sea`, maxTokens: 4, seed: 1, ignoreEos: true }).result;
    expect(same.cachedPromptTokens).toBe(same.promptTokens - 1);
  });

  it('gives each of two interleaved conversations the sequence that holds its own history', async () => {
    const turnOne = await Promise.all(['Gardening', 'Astronomy'].map((topic) => manager.chat('chat', request([system, user(topic)])).result));
    const turnTwo = await Promise.all(
      ['Gardening', 'Astronomy'].map(
        (topic, index) =>
          manager.chat('chat', request([system, user(topic), { role: 'assistant', content: turnOne[index]?.text ?? '' }, user('Go on')])).result,
      ),
    );
    turnTwo.forEach((result, index) => expect(result.cachedPromptTokens).toBeGreaterThanOrEqual(turnOne[index]?.promptTokens ?? Infinity));
  });

  it("keeps a conversation's cache while another conversation runs in between, as long as a sequence is free", async () => {
    // Two sequences, both free. The conversations share the template's opening, far less than half
    // of either prompt: the second takes the unused sequence, not the first one's (llama-server's
    // slot choice), and the first one's prompt is still cached when it comes back.
    const fresh = newManager(2);
    await fresh.load('chat', chatModel);
    const gardening = [user('Gardening in a windy place by the sea, with salt in the air and sand in the beds')];
    const first = await fresh.chat('chat', request(gardening)).result;
    const other = await fresh.chat('chat', request([user('Astronomy from a small island far from any town lights, on clear nights')])).result;
    expect(other.cachedPromptTokens).toBe(0);
    const again = await fresh.chat('chat', request(gardening)).result;
    expect(again.promptTokens).toBe(first.promptTokens);
    expect(again.cachedPromptTokens).toBe(again.promptTokens - 1);
    await fresh.dispose();
  });

  it('answers two interleaved conversations exactly as each alone, with the same seeds', async () => {
    const aloneA = newManager();
    await aloneA.load('chat', chatModel);
    const a = await converse(aloneA, 'chat', 'Tell me about rivers', 4, 100);
    await aloneA.dispose();
    const aloneB = newManager();
    await aloneB.load('chat', chatModel);
    const b = await converse(aloneB, 'chat', 'Explain bread', 4, 200);
    await aloneB.dispose();
    const shared = newManager();
    await shared.load('chat', chatModel);
    const [sharedA, sharedB] = await Promise.all([converse(shared, 'chat', 'Tell me about rivers', 4, 100), converse(shared, 'chat', 'Explain bread', 4, 200)]);
    await shared.dispose();
    expect(sharedA.texts).toEqual(a.texts);
    expect(sharedB.texts).toEqual(b.texts);
    // Every turn after the first reused its own history.
    for (const conversation of [sharedA, sharedB]) {
      conversation.cached.slice(1).forEach((cached, turn) => expect(cached).toBeGreaterThanOrEqual(conversation.prompts[turn] ?? Infinity));
    }
  });

  it('generates until the context is full when no budget is given, and refuses a prompt that does not fit', async () => {
    const filled = await manager.chat('chat', request([system, user('Fill it')], { maxTokens: undefined })).result;
    expect(filled.finishReason).toBe('length');
    // 8 tokens stay free for what node-llama-cpp adds after rendering.
    expect([1016, 1017]).toContain(filled.promptTokens + filled.completionTokens);
    const completion = await manager.complete('chat', { prompt: 'Once upon a time', seed: 1, ignoreEos: true }).result;
    expect(completion.finishReason).toBe('length');
    expect([1016, 1017]).toContain(completion.promptTokens + completion.completionTokens);

    const tooLong = 'word '.repeat(1500);
    for (const run of [() => manager.chat('chat', request([user(tooLong)])).result, () => manager.complete('chat', { prompt: tooLong }).result]) {
      const error = (await run().then(
        () => null,
        (reason: unknown) => reason,
      )) as TabAgentError;
      expect(TabAgentError.isInstance(error)).toBe(true);
      expect(error.code).toBe('context_length_exceeded');
      expect(error.details).toMatchObject({ context_size: 1024 });
      expect(error.details?.['prompt_tokens']).toBeGreaterThan(1024);
    }
  });
});

describe('special tokens of chat templates', () => {
  // The fixture vocabulary's BOS and EOS ('<s>', '</s>').
  const bos = 1;
  const eos = 2;
  const llama2Template =
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}";
  const count = (tokens: number[], id: number): number => tokens.filter((token) => token === id).length;

  it("renders a Llama-2 template's bos_token and eos_token as the model's BOS and EOS ids, once per turn, never as text", async () => {
    const path = join(directory, 'llama2.gguf');
    writeTinyLlamaGguf(path, { chatTemplate: llama2Template, seed: 5 });
    await manager.load('llama2', path, { keepAlive: -1 });
    const tokens = await manager.chatPromptTokens('llama2', request([user('a'), { role: 'assistant', content: 'b' }, user('c')]));
    expect(tokens[0]).toBe(bos);
    // A BOS before each user turn and an EOS after the assistant's, as the template writes them.
    expect([count(tokens, bos), count(tokens, eos)]).toEqual([2, 1]);
    expect(tokens[tokens.indexOf(eos) + 1]).toBe(bos);
    await manager.unload('llama2');
  });

  it("renders a ChatML template's leading bos_token as one BOS id, not doubled by the engine's own", async () => {
    const tokens = await manager.chatPromptTokens('thinking', request([system, user('hello')]));
    expect(tokens[0]).toBe(bos);
    expect(count(tokens, bos)).toBe(1);
    expect(count(tokens, eos)).toBe(0);
  });
});

describe('reasoning models', () => {
  type TextDelta = Extract<GenerationDelta, { kind: 'content' | 'reasoning' }>;
  /** The text deltas; the prompt comes first, once, with its size. */
  async function collect(run: AsyncIterable<GenerationDelta>): Promise<TextDelta[]> {
    const deltas: TextDelta[] = [];
    let first = true;
    for await (const delta of run) {
      if (first) expect(delta.kind).toBe('prompt');
      first = false;
      if (delta.kind === 'content' || delta.kind === 'reasoning') deltas.push(delta);
    }
    return deltas;
  }

  it('streams the thinking as reasoning, apart from the answer, and counts it as completion tokens', async () => {
    const run = manager.chat('thinking', request([system, user('Think first')], { maxTokens: 10 }));
    const deltas = await collect(run);
    const result = await run.result;
    // The template opens a thought and this random model never closes it: all of it is thinking.
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.every((delta) => delta.kind === 'reasoning')).toBe(true);
    expect(deltas.map((delta) => delta.text).join('')).toBe(result.reasoning);
    expect(result.text).toBe('');
    expect(result.finishReason).toBe('length');
    expect(result.reasoningTokens).toBe(result.completionTokens);
    expect([10, 11]).toContain(result.completionTokens);
  });

  it('with reasoning off closes the thought at once and answers', async () => {
    const run = manager.chat('thinking', request([system, user('Answer now')], { maxTokens: 10, reasoning: 'off' }));
    const deltas = await collect(run);
    const result = await run.result;
    expect(result.reasoningTokens).toBeLessThanOrEqual(1);
    expect(result.text.length).toBeGreaterThan(0);
    expect(
      deltas
        .filter((delta) => delta.kind === 'content')
        .map((delta) => delta.text)
        .join(''),
    ).toBe(result.text);
  });

  it('leaves a model without reasoning as it is', async () => {
    const result = await manager.chat('chat', request([system, user('Plain')], { reasoning: 'off' })).result;
    expect([result.reasoning, result.reasoningTokens]).toEqual(['', 0]);
    expect(result.text.length).toBeGreaterThan(0);
  });
});
