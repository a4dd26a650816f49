// LLM generation speed: direct node-llama-cpp against our server, same model, same settings, one run.
// Usage (from the repository root, after `npx nx run-many -t build -p gguf-loader server`):
//   node bench/llm/run.mjs [--tokens 128] [--runs 5] [--threads N] [--size small|medium]
//                          [--server-url http://127.0.0.1:8080] [--no-server]
// The model is a synthetic llama GGUF (random F16 weights, seeded) written once into bench/.models/:
//   medium (default): hidden 768, 12 layers, 12 heads (4 KV), FFN 2048, 32k vocabulary, ~125M params
//   small           : hidden 256, 4 layers, 8 heads (4 KV), FFN 768, 8k vocabulary (quick trial runs)
// Three ways, each a raw prompt completion of exactly --tokens tokens (the same prompt, seed and sampling):
//   direct     : node-llama-cpp in-process, LlamaCompletion with onTextChunk (the limit)
//   server     : our server, POST /v1/completions with stream:true, SSE read over HTTP
//   server x4  : our server, 4 such streams at once (4 sequences of one context)
// A fixed token count: max_tokens = --tokens, and end-of-generation tokens are made impossible on
// both paths: the direct one with gguf-loader's createEndOfGenerationBias (node-llama-cpp's
// TokenBias.set silently skips EOS/EOT), the server one with the request's ignore_eos. Each run
// still checks its usage (completion_tokens) and the bench reports any run that ended early.
// tokens/s counts decode only: (tokens - 1) / (last chunk - first chunk). TTFT: request start to
// the first text chunk. Floors checked: server tokens/s >= 0.95 x direct; server TTFT p50 - direct
// TTFT p50 < 10 ms.
import { availableParallelism } from 'node:os';
import { getLlama, LlamaCompletion } from 'node-llama-cpp';
import { createEndOfGenerationBias, inspectGgufFile } from '@tabagent/gguf-loader';
import { ensureBenchModel, flag, option, percentile, postJson, readSse, startTabagent } from '../support/bench-support.mjs';

const tokens = Number(option('tokens', '128'));
const runs = Number(option('runs', '5'));
const threads = Number(option('threads', String(availableParallelism())));
const size = option('size', 'medium');
const serverUrlOption = option('server-url', undefined);
const contextSize = 2048;
const sequences = 4;
const prompt = 'the quick brown fox jumps over the lazy dog and';
const sampling = { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1, seed: 42 };
if (!(tokens > 1) || !(runs > 0) || !(threads > 0)) throw new Error('--tokens must be > 1, --runs and --threads positive');

const modelPath = await ensureBenchModel(`llm-bench-${size}`, size);

const summary = (label, samples) => {
  const speeds = samples.map((sample) => sample.tokensPerSecond);
  const ttfts = samples.map((sample) => sample.ttftMs);
  return {
    label,
    tokensPerSecond: speeds.reduce((sum, value) => sum + value, 0) / speeds.length,
    ttftP50: percentile(ttfts, 50),
    ttftP95: percentile(ttfts, 95),
    short: samples.filter((sample) => sample.tokens !== tokens).length,
  };
};

async function openDirect() {
  const llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize, sequences, threads });
  const sequence = context.getSequence();
  const bias = createEndOfGenerationBias(model, (await inspectGgufFile(modelPath)).vocabularySize);
  return {
    async sample() {
      await sequence.clearHistory();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      let first = null;
      let last = 0;
      const start = performance.now();
      await completion.generateCompletion(prompt, {
        maxTokens: tokens,
        temperature: sampling.temperature,
        topK: sampling.top_k,
        topP: sampling.top_p,
        minP: sampling.min_p,
        seed: sampling.seed,
        tokenBias: bias,
        onTextChunk: () => {
          const now = performance.now();
          first ??= now;
          last = now;
        },
      });
      completion.dispose({ disposeSequence: false });
      return { ttftMs: first - start, tokensPerSecond: ((tokens - 1) * 1000) / (last - first), tokens };
    },
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

async function streamCompletion(baseUrl, modelId) {
  const start = performance.now();
  // cache_prompt false: the server evaluates the whole prompt as the direct path does, so the
  // figures compare the same work (with reuse the server's time to first token is lower).
  const response = await postJson(`${baseUrl}/v1/completions`, {
    model: modelId,
    prompt,
    max_tokens: tokens,
    stream: true,
    ignore_eos: true,
    cache_prompt: false,
    ...sampling,
    keep_alive: -1,
  });
  let first = null;
  let last = 0;
  let usage = null;
  await readSse(response, (chunk, at) => {
    if (chunk.usage) usage = chunk.usage;
    if ((chunk.choices?.[0]?.text ?? '').length > 0) {
      first ??= at;
      last = at;
    }
  });
  const generated = usage?.completion_tokens ?? 0;
  return { ttftMs: first - start, tokensPerSecond: ((generated - 1) * 1000) / (last - first), tokens: generated };
}

const startServer = () => startTabagent({ models: [modelPath], args: ['--threads', String(threads)] });

async function prepareServer(baseUrl) {
  const modelId = `llm-bench-${size}`;
  if (serverUrlOption) {
    const registered = await fetch(`${baseUrl}/v1/models/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: modelPath, id: modelId }),
    });
    if (!registered.ok && registered.status !== 409) throw new Error(`register: ${registered.status} ${await registered.text()}`);
  }
  const load = await fetch(`${baseUrl}/v1/models/load`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: modelId, context_size: contextSize, threads, keep_alive: -1 }),
  });
  if (!load.ok) throw new Error(`POST /v1/models/load: ${load.status} ${await load.text()}`);
  return modelId;
}

async function measureConcurrent(baseUrl, modelId) {
  const concurrent = [];
  for (let run = 0; run < Math.max(1, Math.ceil(runs / 2)); run++) {
    const started = performance.now();
    const samples = await Promise.all(Array.from({ length: 4 }, () => streamCompletion(baseUrl, modelId)));
    const wall = performance.now() - started;
    concurrent.push(...samples.map((sample) => ({ ...sample, aggregate: (samples.reduce((sum, entry) => sum + entry.tokens, 0) * 1000) / wall })));
  }
  const four = summary('server, 4 concurrent streams (per stream)', concurrent);
  four.aggregateTokensPerSecond = concurrent.reduce((sum, sample) => sum + sample.aggregate, 0) / concurrent.length;
  return four;
}

const format = (row) =>
  `${row.label.padEnd(44)} ${row.tokensPerSecond.toFixed(1).padStart(8)} tok/s   TTFT p50 ${row.ttftP50.toFixed(1).padStart(7)} ms   p95 ${row.ttftP95.toFixed(1).padStart(7)} ms${row.short ? `   (${row.short} runs ended early)` : ''}`;

console.log(
  `LLM bench: ${size} synthetic llama (F16), ${tokens} tokens, ${runs} runs (+1 warm-up), ${threads} threads, context ${contextSize}, ${sequences} sequences`,
);
// Direct and server runs alternate, so a busy machine slows both alike.
const direct = await openDirect();
let server = null;
try {
  let modelId = null;
  if (!flag('no-server')) {
    try {
      server = serverUrlOption ? { baseUrl: serverUrlOption.replace(/\/$/, ''), stop: async () => {} } : await startServer();
      modelId = await prepareServer(server.baseUrl);
    } catch (error) {
      console.log(`server rows not measured: ${error.message}`);
      process.exitCode = 1;
    }
  }
  const directSamples = [];
  const serverSamples = [];
  for (let run = 0; run <= runs; run++) {
    const directSample = await direct.sample();
    const serverSample = modelId ? await streamCompletion(server.baseUrl, modelId) : null;
    // Run 0 warms caches on both sides and is not counted.
    if (run === 0) continue;
    directSamples.push(directSample);
    if (serverSample) serverSamples.push(serverSample);
  }
  const directRow = summary('direct node-llama-cpp', directSamples);
  console.log(format(directRow));
  if (modelId) {
    const single = summary('server, HTTP streaming', serverSamples);
    console.log(format(single));
    await direct.close();
    const four = await measureConcurrent(server.baseUrl, modelId);
    console.log(`${format(four)}   aggregate ${four.aggregateTokensPerSecond.toFixed(1)} tok/s`);
    const speedRatio = single.tokensPerSecond / directRow.tokensPerSecond;
    const addedTtft = single.ttftP50 - directRow.ttftP50;
    console.log(`server/direct tokens/s: ${speedRatio.toFixed(3)} (floor 0.95: ${speedRatio >= 0.95 ? 'met' : 'NOT met'})`);
    console.log(`added TTFT p50: ${addedTtft.toFixed(1)} ms (floor < 10 ms: ${addedTtft < 10 ? 'met' : 'NOT met'})`);
    console.log(`4 streams aggregate / direct: ${(four.aggregateTokensPerSecond / directRow.tokensPerSecond).toFixed(2)}x`);
  } else {
    await direct.close();
  }
} finally {
  await server?.stop();
}
