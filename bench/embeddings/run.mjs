// Embeddings throughput: direct InferenceSession.run against our server, same model, same run.
// Usage (from the repository root, after `npx nx run-many -t build -p onnx-loader server`):
//   node bench/embeddings/run.mjs [--sentences 1000] [--threads N] [--server-url http://127.0.0.1:8080]
//                                 [--in-process] [--no-server]
// Three ways, each over the same sentences, tokenization INCLUDED in every one (and mean pooling
// plus L2 normalisation, which the server does too):
//   direct    : @huggingface/tokenizers + InferenceSession.run, batches of 32 in input order
//   batched   : our server, one request of 32 inputs at a time
//   concurrent: our server, 32 single-input requests in flight at once (micro-batching)
// "Our server" is `node apps/server/dist/cli.js serve` with the model folder in <data-dir>/models
// (or --server-url). When it cannot serve embeddings, the server rows are measured over HTTP in this
// process (the api package's app with the embedding handlers); with --in-process, or when the
// server is not built, without HTTP (onnx-loader's embedder + the embeddings operation). The output
// says which.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { createEmbeddings, createOnnxTextEmbedder } from '@tabagent/onnx-loader';
import { writeBertEncoderModel } from '@tabagent/onnx-loader/test-support';

const here = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = join(here, '..', '..');
const modelName = 'minilm-l6-shaped';
const modelFolder = join(repositoryRoot, 'bench', '.models', modelName);
const batchSize = 32;

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : process.argv[index + 1];
}
const flag = (name) => process.argv.includes(`--${name}`);

const sentenceCount = Number(option('sentences', '1000'));
const threads = Number(option('threads', String(availableParallelism())));
const serverUrlOption = option('server-url', undefined);
if (!(sentenceCount > 0) || !(threads > 0)) throw new Error('--sentences and --threads must be positive numbers');

function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function ensureModel() {
  if (existsSync(join(modelFolder, 'model.onnx')) && existsSync(join(modelFolder, 'tokenizer.json'))) return;
  const started = performance.now();
  mkdirSync(modelFolder, { recursive: true });
  const written = await writeBertEncoderModel(modelFolder);
  process.stderr.write(`wrote ${modelFolder} (${(written.sizeBytes / 1e6).toFixed(1)} MB) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

function sentencesFrom(tokenizerJson) {
  const words = Object.keys(tokenizerJson.model.vocab).filter((t) => /^[a-z]{4,}$/.test(t));
  const random = seededRandom(2024);
  const punctuation = ['.', '!', '?'];
  return Array.from({ length: sentenceCount }, () => {
    const length = 10 + Math.floor(random() * 51);
    const picked = Array.from({ length }, () => words[Math.floor(random() * words.length)]);
    // A few words with unknown endings, so WordPiece splits them as real text would be split.
    for (let i = 0; i < length; i += 7) picked[i] = `${picked[i]}${'xq'.slice(0, 1 + (i % 2))}`;
    return `${picked.join(' ')}${punctuation[length % 3]}`;
  });
}

function meanPoolNormalize(data, row, sequenceLength, tokens, dim) {
  const out = new Float32Array(dim);
  for (let t = 0; t < tokens; t++) {
    const offset = (row * sequenceLength + t) * dim;
    for (let k = 0; k < dim; k++) out[k] += data[offset + k];
  }
  let norm = 0;
  for (let k = 0; k < dim; k++) norm += (out[k] / tokens) ** 2;
  norm = Math.sqrt(norm);
  for (let k = 0; k < dim; k++) out[k] = out[k] / tokens / norm;
  return out;
}

async function createDirectRunner(tokenizerJson, tokenizerConfig) {
  const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  const session = await ort.InferenceSession.create(join(modelFolder, 'model.onnx'), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const runBatch = async (batch) => {
    const encoded = batch.map((s) => tokenizer.encode(s).ids);
    const sequenceLength = Math.max(...encoded.map((ids) => ids.length));
    const ids = new BigInt64Array(batch.length * sequenceLength);
    const mask = new BigInt64Array(batch.length * sequenceLength);
    encoded.forEach((row, r) => row.forEach((id, t) => ((ids[r * sequenceLength + t] = BigInt(id)), (mask[r * sequenceLength + t] = 1n))));
    const dims = [batch.length, sequenceLength];
    const feeds = {};
    for (const name of session.inputNames) {
      feeds[name] = new ort.Tensor('int64', name === 'input_ids' ? ids : name === 'attention_mask' ? mask : new BigInt64Array(ids.length), dims);
    }
    const output = (await session.run(feeds)).last_hidden_state;
    const dim = output.dims[2];
    return encoded.map((row, r) => meanPoolNormalize(output.data, r, sequenceLength, row.length, dim));
  };
  return {
    /** Embeds a block in consecutive batches of 32, in input order. */
    async run(block) {
      for (let i = 0; i < block.length; i += batchSize) await runBatch(block.slice(i, i + batchSize));
    },
    release: () => session.release(),
  };
}

async function runPool(count, concurrency, task) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** One request of 32 inputs at a time. */
async function runBatchedRequests(block, embed) {
  for (let i = 0; i < block.length; i += batchSize) await embed(block.slice(i, i + batchSize));
}

/** Single-input requests, 32 in flight at once. */
async function runConcurrentSingles(block, embed) {
  await runPool(block.length, batchSize, (i) => embed([block[i]]));
}

/**
 * Times the three ways block by block, interleaved (direct, batched, concurrent on the same 128
 * sentences, then the next block), so that load from other processes on a shared machine falls
 * on all three alike instead of on whichever ran during a busy spell.
 */
async function measureInterleaved(sentences, direct, embed) {
  const warm = sentences.slice(0, batchSize);
  await direct.run(warm);
  await runBatchedRequests(warm, embed);
  await runConcurrentSingles(warm, embed);
  const totals = { direct: 0, batched: 0, concurrent: 0 };
  const blockSize = 4 * batchSize;
  for (let start = 0; start < sentences.length; start += blockSize) {
    const block = sentences.slice(start, start + blockSize);
    for (const [name, run] of [
      ['direct', () => direct.run(block)],
      ['batched', () => runBatchedRequests(block, embed)],
      ['concurrent', () => runConcurrentSingles(block, embed)],
    ]) {
      const started = performance.now();
      await run();
      totals[name] += (performance.now() - started) / 1000;
    }
  }
  return totals;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startOurServer() {
  const cli = join(repositoryRoot, 'apps', 'server', 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is not built`);
  const dataDir = mkdtempSync(join(tmpdir(), 'tabagent-bench-embeddings-'));
  cpSync(modelFolder, join(dataDir, 'models', modelName), { recursive: true });
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [cli, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--threads', String(threads), '--log-level', 'warn'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      stop();
      throw new Error(`server exited with code ${child.exitCode}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v1/health`)).status === 200) return { url: `http://127.0.0.1:${port}`, stop };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  stop();
  throw new Error('server did not answer /v1/health within 60 s');
}

function httpEmbedder(url, model) {
  return async (input) => {
    const response = await fetch(`${url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, input }),
    });
    const body = await response.json();
    if (response.status !== 200) throw new Error(`POST /v1/embeddings answered ${response.status}: ${body.detail ?? body.title ?? JSON.stringify(body)}`);
    if (body.data.length !== input.length) throw new Error('wrong number of embeddings');
    return body;
  };
}

async function main() {
  await ensureModel();
  const tokenizerJson = JSON.parse(readFileSync(join(modelFolder, 'tokenizer.json'), 'utf8'));
  const tokenizerConfig = JSON.parse(readFileSync(join(modelFolder, 'tokenizer_config.json'), 'utf8'));
  const sentences = sentencesFrom(tokenizerJson);
  const tokens = sentences.reduce((sum, s) => sum + new Tokenizer(tokenizerJson, tokenizerConfig).encode(s).ids.length, 0);
  process.stderr.write(`${sentences.length} sentences, ${tokens} tokens (mean ${(tokens / sentences.length).toFixed(1)}), ${threads} threads\n`);

  const direct = await createDirectRunner(tokenizerJson, tokenizerConfig);

  let times = null;
  let label = 'in-process (no HTTP): onnx-loader embedder + createEmbeddings, JSON-serialised';
  let note = '';
  if (!flag('in-process') && !flag('no-server')) {
    let stop = () => undefined;
    try {
      let url = serverUrlOption;
      if (url === undefined) ({ url, stop } = await startOurServer());
      const listed = await (await fetch(`${url}/v1/embedding-models`)).json().catch(() => ({}));
      const model = listed.models?.find((m) => m.id.includes(modelName))?.id ?? modelName;
      const embed = httpEmbedder(url, model);
      await embed(['probe']);
      times = await measureInterleaved(sentences, direct, embed);
      label = `HTTP ${serverUrlOption ? url : 'apps/server/dist/cli.js serve'} (model ${model})`;
    } catch (error) {
      note = `CLI server not used: ${error.message}`;
    } finally {
      stop();
    }
  }
  const handlersModule = join(repositoryRoot, 'apps', 'server', 'dist', 'handlers', 'embedding-handlers.js');
  if (times === null && !flag('in-process') && existsSync(handlersModule)) {
    // The CLI does not serve this model yet: serve the same handlers over the api package's HTTP
    // app inside this process instead (client and server then share one event loop).
    const embedder = await createOnnxTextEmbedder(modelFolder, { threads, modelId: modelName });
    const { createEmbeddingHandlers } = await import(handlersModule);
    const { createApiApp } = await import('@tabagent/api');
    const { createAppStateProvider, NotImplementedError, routeIds } = await import('@tabagent/values');
    const notBuilt = Object.fromEntries(routeIds.map((id) => [id, async () => Promise.reject(new NotImplementedError(id))]));
    const handlers = createEmbeddingHandlers({ resolveEmbedder: async () => embedder, resolveReranker: async () => null, listEmbeddingModels: async () => [] });
    const server = createApiApp(createAppStateProvider({ ...notBuilt, ...handlers }), { allowedOrigins: [] }).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${server.address().port}`;
    times = await measureInterleaved(sentences, direct, httpEmbedder(url, modelName));
    label = `HTTP in this process (api package's app + createEmbeddingHandlers at ${url}; the CLI did not serve embeddings)`;
    await new Promise((resolve) => server.close(resolve));
    await embedder.dispose();
  }
  if (times === null) {
    const embedder = await createOnnxTextEmbedder(modelFolder, { threads, modelId: modelName });
    times = await measureInterleaved(sentences, direct, (input) =>
      createEmbeddings(embedder, { input, encoding_format: 'float' }).then((r) => JSON.stringify(r)),
    );
    await embedder.dispose();
  }
  await direct.release();

  const rate = (seconds) => sentences.length / seconds;
  const rows = [
    ['direct InferenceSession.run, batch 32', rate(times.direct), 1],
    ['server, one request of 32 inputs at a time', rate(times.batched), times.direct / times.batched],
    ['server, 32 concurrent single-input requests', rate(times.concurrent), times.direct / times.concurrent],
  ];
  const out = [
    `model: ${modelName} (6 layers, hidden 384, 12 heads, intermediate 1536, vocab 30522, random weights); tokenization included in all three; timed interleaved in blocks of 128 sentences`,
    `server rows: ${label}`,
  ];
  if (note) out.push(note);
  for (const [name, perSecond, ratio] of rows) out.push(`${name.padEnd(48)} ${perSecond.toFixed(1).padStart(8)} sentences/s   ${ratio.toFixed(3)} of direct`);
  const batchedOk = rows[1][2] >= 0.9;
  const concurrentOk = rows[2][2] >= 0.6;
  out.push(`floors: batched >= 0.9 of direct: ${batchedOk ? 'PASS' : 'FAIL'}; concurrent >= 0.6 of direct: ${concurrentOk ? 'PASS' : 'FAIL'}`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (!batchedOk || !concurrentOk) process.exitCode = 1;
}

await main();
