// Ollama's chat path against the OpenAI one, same server, same model, same run: streaming decode
// tokens/s of POST /api/chat (NDJSON) over POST /v1/chat/completions (SSE), and the whole
// request's wall time. Both ask for the same messages, sampling and seed, with end-of-generation
// tokens made impossible (Ollama option / OpenAI field `ignore_eos`), so both generate exactly
// the budget and the same text; runs alternate in pairs whose order swaps, and the ratio is the
// median of the paired ratios (a slow moment of the machine hits both sides of a pair).
// Usage (from the repository root, after `npx nx run server:build`):
//   node bench/http/ollama-chat.mjs [--tokens 128] [--pairs 8] [--size medium|small]
// Floor (issue "Real clients work unchanged"): /api/chat decode tokens/s >= 0.97 x OpenAI streaming.
import { chatMlToolsTemplate } from '@tabagent/gguf-loader/test-support';
import { ensureBenchModel, median, option, postJson, readSse, startTabagent } from '../support/bench-support.mjs';

const tokens = Number(option('tokens', '128'));
const pairs = Number(option('pairs', '8'));
const size = option('size', 'medium');
if (!(tokens > 1) || !(pairs > 0)) throw new Error('--tokens must be above 1 and --pairs positive');

const modelName = `chat-bench-${size}`;
const modelPath = await ensureBenchModel(modelName, size, { chatTemplate: chatMlToolsTemplate });
const server = await startTabagent({ models: [modelPath], args: ['--threads', '1'] });
const messages = [
  { role: 'system', content: 'You are the assistant of a lighthouse keeper. Answer in short sentences.' },
  { role: 'user', content: 'Tell me about the tides at the north jetty this week.' },
];
const sampling = { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1 };

/** Decode speed from arrival times: tokens after the first over the time from first to last piece. */
const rate = (count, first, last) => ((count - 1) * 1000) / (last - first);

async function openAiStream(seed) {
  const started = performance.now();
  const body = { model: modelName, messages, max_tokens: tokens, seed, stream: true, stream_options: { include_usage: true }, ignore_eos: true, ...sampling };
  const response = await postJson(`${server.baseUrl}/v1/chat/completions`, body);
  let first = null;
  let last = 0;
  let text = '';
  let count = 0;
  await readSse(response, (chunk, at) => {
    if (chunk.usage) count = chunk.usage.completion_tokens;
    const piece = chunk.choices?.[0]?.delta?.content ?? '';
    if (piece.length === 0) return;
    first ??= at;
    last = at;
    text += piece;
  });
  return { tokensPerSecond: rate(count, first, last), wallMs: performance.now() - started, text, count };
}

async function ollamaStream(seed) {
  const started = performance.now();
  const body = { model: modelName, messages, stream: true, options: { num_predict: tokens, seed, ignore_eos: true, ...sampling } };
  const response = await postJson(`${server.baseUrl}/api/chat`, body);
  const decoder = new TextDecoder();
  let buffer = '';
  let first = null;
  let last = 0;
  let text = '';
  let count = 0;
  for await (const bytes of response.body) {
    const at = performance.now();
    buffer += decoder.decode(bytes, { stream: true });
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.trim().length === 0) continue;
      const part = JSON.parse(line);
      if (part.error) throw new Error(`/api/chat: ${part.error}`);
      if (part.done) count = part.eval_count;
      const piece = part.message?.content ?? '';
      if (piece.length === 0) continue;
      first ??= at;
      last = at;
      text += piece;
    }
  }
  return { tokensPerSecond: rate(count, first, last), wallMs: performance.now() - started, text, count };
}

try {
  await postJson(`${server.baseUrl}/v1/models/load`, { model: modelName, context_size: 2048, keep_alive: -1 });
  // Warm-up: one of each (first-request costs, page cache).
  await openAiStream(1);
  await ollamaStream(1);
  const openAi = [];
  const ollama = [];
  const ratios = [];
  const wallRatios = [];
  let sameText = true;
  for (let pair = 0; pair < pairs; pair++) {
    const seed = 100 + pair;
    const ollamaFirst = pair % 2 === 1;
    const a = ollamaFirst ? await ollamaStream(seed) : await openAiStream(seed);
    const b = ollamaFirst ? await openAiStream(seed) : await ollamaStream(seed);
    const [fromOllama, fromOpenAi] = ollamaFirst ? [a, b] : [b, a];
    if (fromOllama.text !== fromOpenAi.text || fromOllama.count !== fromOpenAi.count) sameText = false;
    openAi.push(fromOpenAi.tokensPerSecond);
    ollama.push(fromOllama.tokensPerSecond);
    ratios.push(fromOllama.tokensPerSecond / fromOpenAi.tokensPerSecond);
    wallRatios.push(fromOpenAi.wallMs / fromOllama.wallMs);
  }
  const ratio = median(ratios);
  console.log(
    `Ollama /api/chat against OpenAI /v1/chat/completions, streaming, ${modelName}, ${tokens} tokens, ${pairs} pairs, 1 thread, Node ${process.version}`,
  );
  console.log(`  OpenAI SSE     decode ${median(openAi).toFixed(1).padStart(7)} tok/s (median; runs ${openAi.map((value) => value.toFixed(1)).join(', ')})`);
  console.log(`  Ollama NDJSON  decode ${median(ollama).toFixed(1).padStart(7)} tok/s (median; runs ${ollama.map((value) => value.toFixed(1)).join(', ')})`);
  console.log(
    `  ratio Ollama/OpenAI decode: ${ratio.toFixed(3)} (median of paired ratios ${ratios.map((value) => value.toFixed(3)).join(', ')}; floor >= 0.97: ${ratio >= 0.97 ? 'met' : 'NOT met'})`,
  );
  console.log(`  ratio OpenAI/Ollama wall time per request: ${median(wallRatios).toFixed(3)}`);
  console.log(`  same tokens and text on both paths: ${sameText ? 'yes' : 'NO'}`);
} finally {
  await server.stop();
}
