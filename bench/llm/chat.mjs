// Chat as users feel it: what POST /v1/chat/completions costs over the same work as a raw
// completion, time to first token over a conversation against node-llama-cpp's own chat session,
// /v1/health while chats stream, and chat decode speed against node-llama-cpp direct.
// Usage (from the repository root, after `npx nx run server:build`):
//   node bench/llm/chat.mjs [--requests 40] [--turns 10] [--repeats 3] [--decode-tokens 64] [--decode-runs 4]
//                           [--only latency|conversation|health|decode]
// Models: synthetic llamas whose GGUF carries a ChatML template with tools (the shape of current
// instruction models' templates, our own wording), so node-llama-cpp resolves and renders a real
// Jinja template: small (~7M parameters) for the latency figures, medium (~125M) for decode.
// Both sides use 1 thread, the same sampling and seeds, and end-of-generation tokens are made
// impossible (ignore_eos / the same bias) so every run generates exactly its budget.
// Floors (issue "Chat as fast as the engine"): chat p50 - completion p50 < 5 ms; health p99 while
// 4 chat streams run < 20 ms; turn-10 TTFT <= 1.3 x turn 1 and <= 1.2 x LlamaChatSession at every
// turn; chat decode tokens/s >= 0.95 x direct.
import { getLlama, LlamaChat, LlamaChatSession, resolveChatWrapper } from 'node-llama-cpp';
import { createEndOfGenerationBias, inspectGgufFile } from '@tabagent/gguf-loader';
import { chatMlToolsTemplate } from '@tabagent/gguf-loader/test-support';
import { ensureBenchModel, flag, median, option, percentile, postJson, readSse, runWrk, startTabagent } from '../support/bench-support.mjs';

const requests = Number(option('requests', '40'));
const turns = Number(option('turns', '10'));
const repeats = Number(option('repeats', '3'));
const decodeTokens = Number(option('decode-tokens', '64'));
const decodeRuns = Number(option('decode-runs', '4'));
const only = option('only', undefined);
// The conversation runs on the medium model by default: with the small one, time to first token is
// ~25 ms and the HTTP and rendering overhead of a request (~8 ms) is most of it.
const conversationSize = option('conversation-size', 'medium');
const runs = (section) => only === undefined || only === section;
const contextSize = 2048;
const sampling = { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1 };
const samplingDirect = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 };

const systemPrompt =
  'You are the assistant of a lighthouse keeper on a small island. Answer in short sentences, say when you are unsure, and prefer the tools below to guessing about the weather or the notes.';
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather and the next hours for a place',
      parameters: { type: 'object', properties: { place: { type: 'string' }, hours: { type: 'integer', minimum: 1, maximum: 48 } }, required: ['place'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'search_notes',
      description: 'Full-text search over the keeper’s saved notes',
      parameters: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 20 } }, required: ['query'] },
    },
  },
];

const smallPath = await ensureBenchModel('chat-bench-small', 'small', { chatTemplate: chatMlToolsTemplate });
const mediumPath = await ensureBenchModel('chat-bench-medium', 'medium', { chatTemplate: chatMlToolsTemplate });
const llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' });
const server = await startTabagent({ models: [smallPath, mediumPath], args: ['--threads', '1'] });
const chatUrl = `${server.baseUrl}/v1/chat/completions`;
const fmt = (ms) => `${ms.toFixed(1).padStart(7)} ms`;
const verdict = (ok) => (ok ? 'met' : 'NOT met');

async function loadOnServer(model) {
  await postJson(`${server.baseUrl}/v1/models/load`, { model, context_size: contextSize, keep_alive: -1 });
}

/** A streamed chat: time to the first text (answer or thinking), decode speed, usage. */
async function streamChat(model, messages, maxTokens, seed, extra = {}) {
  const started = performance.now();
  const response = await postJson(chatUrl, { model, messages, max_tokens: maxTokens, seed, stream: true, ignore_eos: true, ...sampling, ...extra });
  let first = null;
  let last = 0;
  let text = '';
  let usage = null;
  await readSse(response, (chunk, at) => {
    if (chunk.usage) usage = chunk.usage;
    const delta = chunk.choices?.[0]?.delta ?? {};
    const piece = `${delta.content ?? ''}${delta.reasoning_content ?? ''}`;
    if (piece.length === 0) return;
    first ??= at;
    last = at;
    text += delta.content ?? '';
  });
  const tokens = usage?.completion_tokens ?? 0;
  return { ttftMs: first - started, tokensPerSecond: ((tokens - 1) * 1000) / (last - first), text, usage };
}

try {
  if (runs('latency')) {
    // Same model, same rendered prompt: the chat route renders the messages and tools with the
    // model's template; the completion route gets that rendering as its prompt. Both answer 8
    // tokens; repeated requests reuse the KV cache on both sides alike.
    await loadOnServer('chat-bench-small');
    const vocab = await llama.loadModel({ modelPath: smallPath, vocabOnly: true });
    const wrapper = resolveChatWrapper(vocab);
    const functions = Object.fromEntries(tools.map(({ function: tool }) => [tool.name, { description: tool.description, params: tool.parameters }]));
    const messages = [
      { role: 'system', content: systemPrompt },
      { role: 'user', content: 'Will it be windy at the north jetty tonight?' },
    ];
    const rendered = wrapper
      .generateContextState({
        chatHistory: [
          { type: 'system', text: messages[0].content },
          { type: 'user', text: messages[1].content },
          { type: 'model', response: [] },
        ],
        availableFunctions: functions,
        documentFunctionParams: true,
      })
      .contextText.tokenize(vocab.tokenizer);
    const prompt = vocab.detokenize(rendered, true);
    await vocab.dispose();
    const chatBody = { model: 'chat-bench-small', messages, tools, max_tokens: 8, seed: 1, ignore_eos: true, ...sampling };
    const completionBody = { model: 'chat-bench-small', prompt, max_tokens: 8, seed: 1, ignore_eos: true, ...sampling };
    const timed = async (url, body) => {
      const started = performance.now();
      const answer = await (await postJson(url, body)).json();
      return { ms: performance.now() - started, promptTokens: answer.usage.prompt_tokens };
    };
    const chatTimes = [];
    const completionTimes = [];
    let promptTokens = {};
    for (let i = -3; i < requests; i++) {
      const chat = await timed(chatUrl, chatBody);
      const completion = await timed(`${server.baseUrl}/v1/completions`, completionBody);
      promptTokens = { chat: chat.promptTokens, completion: completion.promptTokens };
      if (i < 0) continue; // warm-up
      chatTimes.push(chat.ms);
      completionTimes.push(completion.ms);
    }
    const added = median(chatTimes) - median(completionTimes);
    console.log(
      `\nchat against completion, same model and rendered prompt (${promptTokens.chat} and ${promptTokens.completion} prompt tokens, 8 generated, ${requests} requests each)`,
    );
    console.log(`  completion  p50 ${fmt(median(completionTimes))}   p99 ${fmt(percentile(completionTimes, 99))}`);
    console.log(`  chat        p50 ${fmt(median(chatTimes))}   p99 ${fmt(percentile(chatTimes, 99))}`);
    console.log(
      `  chat p50 - completion p50: ${added.toFixed(1)} ms (floor < 5 ms: ${verdict(added < 5)}); p99 difference ${(percentile(chatTimes, 99) - percentile(completionTimes, 99)).toFixed(1)} ms`,
    );
  }

  if (runs('conversation')) {
    // A conversation with its history resent each turn, as chat UIs do, against node-llama-cpp's
    // LlamaChatSession, which keeps its context between turns (the limit).
    const conversationModel = `chat-bench-${conversationSize}`;
    const conversationPath = conversationSize === 'small' ? smallPath : mediumPath;
    await loadOnServer(conversationModel);
    const model = await llama.loadModel({ modelPath: conversationPath });
    const context = await model.createContext({ contextSize, sequences: 1, threads: 1 });
    const wrapper = resolveChatWrapper(model);
    const bias = createEndOfGenerationBias(model, (await inspectGgufFile(conversationPath)).vocabularySize);
    const serverTtft = Array.from({ length: turns }, () => []);
    const directTtft = Array.from({ length: turns }, () => []);
    for (let repeat = 0; repeat < repeats; repeat++) {
      // Each conversation opens differently, so none starts from another's cached prefix: turn 1
      // evaluates its whole prompt on both sides.
      const opening = `Conversation ${repeat + 1}. ${systemPrompt}`;
      const sequence = context.getSequence();
      const session = new LlamaChatSession({ contextSequence: sequence, chatWrapper: wrapper, systemPrompt: opening, autoDisposeSequence: false });
      const messages = [{ role: 'system', content: opening }];
      for (let turn = 0; turn < turns; turn++) {
        const question = `Run ${repeat}, turn ${turn + 1}: what did the keeper write about the fog and the ships that night?`;
        messages.push({ role: 'user', content: question });
        const served = await streamChat(conversationModel, messages, 32, 10 * repeat + turn);
        messages.push({ role: 'assistant', content: served.text });
        serverTtft[turn].push(served.ttftMs);
        const started = performance.now();
        let first = null;
        await session.prompt(question, {
          maxTokens: 32,
          seed: 10 * repeat + turn,
          tokenBias: bias,
          ...samplingDirect,
          onTextChunk: () => (first ??= performance.now()),
        });
        directTtft[turn].push(first - started);
      }
      session.dispose({ disposeSequence: true });
    }
    await context.dispose();
    await model.dispose();
    console.log(
      `\nconversation on the ${conversationSize} model: time to first token per turn, median of ${repeats} conversations (history resent each turn, 32-token answers)`,
    );
    console.log('  turn   server     LlamaChatSession   ratio');
    let withinSession = true;
    for (let turn = 0; turn < turns; turn++) {
      const ratio = median(serverTtft[turn]) / median(directTtft[turn]);
      withinSession &&= ratio <= 1.2;
      console.log(`  ${String(turn + 1).padStart(4)}  ${fmt(median(serverTtft[turn]))}  ${fmt(median(directTtft[turn]))}      ${ratio.toFixed(2)}`);
    }
    const growth = median(serverTtft[turns - 1]) / median(serverTtft[0]);
    console.log(
      `  turn ${turns} / turn 1 (server): ${growth.toFixed(2)} (floor <= 1.3: ${verdict(growth <= 1.3)}); within 1.2 x LlamaChatSession at every turn: ${verdict(withinSession)}`,
    );
  }

  if (runs('health')) {
    // /v1/health (wrk, a C client) idle, then while 4 clients stream chats with growing histories.
    await loadOnServer('chat-bench-small');
    const idle = await runWrk(`${server.baseUrl}/v1/health`, { seconds: 5 });
    let streaming = true;
    let chats = 0;
    const client = async (index) => {
      let messages = [{ role: 'system', content: systemPrompt }];
      for (let turn = 0; streaming; turn++) {
        if (turn % 4 === 0) messages = [{ role: 'system', content: systemPrompt }];
        messages.push({ role: 'user', content: `Client ${index}, question ${turn}: how high were the waves?` });
        const served = await streamChat('chat-bench-small', messages, 24, turn, { tools });
        messages.push({ role: 'assistant', content: served.text });
        chats++;
      }
    };
    const clients = Array.from({ length: 4 }, (_, index) => client(index));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const busy = await runWrk(`${server.baseUrl}/v1/health`, { seconds: 5 });
    streaming = false;
    await Promise.all(clients);
    console.log(`\n/v1/health (wrk, 2 connections, 5 s), idle and while 4 clients stream chats (${chats} chats in all)`);
    console.log(`  idle          p50 ${fmt(idle.p50)}   p99 ${fmt(idle.p99)}   ${idle.requestsPerSecond.toFixed(0)} req/s`);
    console.log(`  4 chat streams p50 ${fmt(busy.p50)}   p99 ${fmt(busy.p99)}   ${busy.requestsPerSecond.toFixed(0)} req/s`);
    console.log(`  health p99 under chat load: ${busy.p99.toFixed(1)} ms (floor < 20 ms: ${verdict(busy.p99 < 20)})`);
  }

  if (runs('decode')) {
    // Decode speed of a streamed chat against LlamaChat in this process, same model, prompt and seed.
    await loadOnServer('chat-bench-medium');
    const model = await llama.loadModel({ modelPath: mediumPath });
    const context = await model.createContext({ contextSize, sequences: 1, threads: 1 });
    const wrapper = resolveChatWrapper(model);
    const bias = createEndOfGenerationBias(model, (await inspectGgufFile(mediumPath)).vocabularySize);
    const sequence = context.getSequence();
    const messages = [
      { role: 'system', content: systemPrompt },
      { role: 'user', content: 'Describe the lighthouse in the evening.' },
    ];
    const history = [
      { type: 'system', text: systemPrompt },
      { type: 'user', text: messages[1].content },
      { type: 'model', response: [] },
    ];
    const served = [];
    const direct = [];
    const whole = [];
    for (let run = 0; run <= decodeRuns; run++) {
      const fromServer = await streamChat('chat-bench-medium', messages, decodeTokens, 42, { cache_prompt: false });
      // The same request not streamed: the engine's own decode speed (stats.get) with no SSE
      // writing between tokens, which separates the transport's cost from the engine's.
      const unstreamed = await postJson(chatUrl, {
        model: 'chat-bench-medium',
        messages,
        max_tokens: decodeTokens,
        seed: 42,
        ignore_eos: true,
        cache_prompt: false,
        ...sampling,
      });
      await unstreamed.json();
      const stats = await (await fetch(`${server.baseUrl}/v1/stats`)).json();
      await sequence.clearHistory();
      const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: wrapper });
      let first = null;
      let last = 0;
      const meter = sequence.tokenMeter.getState();
      await chat.generateResponse(history, {
        maxTokens: decodeTokens,
        seed: 42,
        tokenBias: bias,
        ...samplingDirect,
        onTextChunk: () => {
          const now = performance.now();
          first ??= now;
          last = now;
        },
      });
      const generated = sequence.tokenMeter.usedOutputTokens - meter.usedOutputTokens;
      chat.dispose({ disposeSequence: false });
      if (run === 0) continue; // warm-up
      served.push(fromServer.tokensPerSecond);
      whole.push(stats.last.tokens_per_second);
      direct.push(((generated - 1) * 1000) / (last - first));
    }
    await context.dispose();
    await model.dispose();
    // Runs alternate, and each server run is compared with the direct run right after it: the
    // median of those paired ratios is steadier than a ratio of means on a machine whose speed drifts.
    const ratio = median(served.map((speed, run) => speed / direct[run]));
    if (flag('verbose')) console.log(served.map((speed, run) => `${speed.toFixed(1)}/${direct[run].toFixed(1)}`).join('  '));
    console.log(`\nchat decode speed, medium model (~125M), ${decodeTokens} tokens, ${decodeRuns} runs (median)`);
    console.log(`  direct LlamaChat          ${median(direct).toFixed(1).padStart(7)} tok/s`);
    console.log(`  server chat, SSE stream   ${median(served).toFixed(1).padStart(7)} tok/s`);
    console.log(`  server chat, not streamed ${median(whole).toFixed(1).padStart(7)} tok/s (the engine's own figure)`);
    console.log(`  SSE stream / not streamed (median of paired runs): ${median(served.map((speed, run) => speed / whole[run])).toFixed(3)}`);
    console.log(`  server / direct (median of paired runs): ${ratio.toFixed(3)} (floor >= 0.95: ${verdict(ratio >= 0.95)})`);
  }
} finally {
  await server.stop();
  await llama.dispose();
}
