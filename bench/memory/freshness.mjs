// Freshness under steady interactive load: how long a saved message takes to reach the vector
// index while the server is never idle. One `tabagent serve` (a tiny Jinja-template GGUF chat model
// and the tiny ONNX embedder, 1 thread), three phases in one run, each saving --messages messages at
// --rate per second into its own conversation:
//   idle   nothing else runs (the baseline);
//   embed  a client calls /v1/embeddings with one text every 500 ms (2 texts/s: an extension
//          embedding pages as the user browses), from before the first save until all are indexed;
//   chat   a client streams chat completions back to back, the same way.
// Freshness = done time of the message's index item minus its enqueue time, both from the outbox
// rows on the server's clock, read after the server stops (measuring does not load the server).
// Floor (issue "Memory and endurance"): p95 < 10 s in the embed and chat phases.
// Every failure of every client (refused connection, non-2xx, an SSE error frame, a stream without
// [DONE], a request stuck past 30 s) is counted and shown.
// --max-wait S is the server's --memory-max-wait (default 5 s); 3600 shows the weaver without its
// guaranteed share (as before it had one).
//   node bench/memory/freshness.mjs [--messages 300] [--rate 20] [--cap-s 90] [--max-wait S]
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createStorage } from '@tabagent/storage';
import { option, percentile, startTabagent } from '../support/bench-support.mjs';

const messages = Number(option('messages', '300'));
const rate = Number(option('rate', '20'));
const capS = Number(option('cap-s', '90'));
const maxWait = option('max-wait', undefined);
const stuckMs = 30_000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const root = mkdtempSync(join(tmpdir(), 'bench-freshness-'));
const modelsDir = join(root, 'models');
mkdirSync(modelsDir);
writeTinyLlamaGguf(join(modelsDir, 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
await writeTinyEmbedderModel(join(modelsDir, 'embedder'));
const server = await startTabagent({
  models: [join(modelsDir, 'chat.gguf'), join(modelsDir, 'embedder')],
  keepDataDir: true,
  args: ['--threads', '1', ...(maxWait === undefined ? [] : ['--memory-max-wait', maxWait])],
});
const base = server.baseUrl;

const failures = { refused: 0, status: 0, errorFrame: 0, truncated: 0, stuck: 0 };
/** One request with the stuck guard; every way it can fail is counted. Resolves with the response body text, or null. */
async function call(path, body, { stream = false } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), stuckMs);
  try {
    let response;
    try {
      response = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (error) {
      if (controller.signal.aborted) failures.stuck += 1;
      else failures.refused += 1;
      console.error(`[freshness] ${path}: ${error.message}`);
      return null;
    }
    const text = await response.text();
    if (!response.ok) {
      failures.status += 1;
      console.error(`[freshness] ${path}: ${response.status} ${text.slice(0, 200)}`);
      return null;
    }
    if (stream) {
      if (text.split('\n').some((line) => line.startsWith('data: {"error"'))) failures.errorFrame += 1;
      else if (!text.includes('data: [DONE]')) failures.truncated += 1;
      else return text;
      return null;
    }
    return text;
  } catch (error) {
    if (controller.signal.aborted) failures.stuck += 1;
    else failures.truncated += 1;
    console.error(`[freshness] ${path}: ${error.message}`);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

async function unindexed() {
  const response = await fetch(`${base}/v1/memory/status`);
  if (!response.ok) throw new Error(`memory status ${response.status}`);
  return (await response.json()).unindexed;
}

/** Saves the phase's messages at the rate, with `load` running from before the first until all are indexed (or the cap). */
async function phase(name, load) {
  let running = true;
  let requests = 0;
  const loadLoop = load
    ? (async () => {
        while (running) {
          await load(requests++);
        }
      })()
    : Promise.resolve();
  await sleep(load ? 2000 : 0);
  const started = Date.now();
  const saves = [];
  for (let i = 0; i < messages; i++) {
    const wait = started + (i * 1000) / rate - Date.now();
    if (wait > 0) await sleep(wait);
    saves.push(
      call(`/v1/sessions/${name}/messages`, {
        message: { role: 'user', content: `${name} note ${i}: the meeting about project ${i % 97} moved to room ${i % 13}.` },
      }),
    );
  }
  await Promise.all(saves);
  const deadline = Date.now() + capS * 1000;
  while ((await unindexed()) > 0 && Date.now() < deadline) await sleep(200);
  running = false;
  await loadLoop;
  return { name, requests };
}

const embedLoad = async (n) => {
  const sent = Date.now();
  await call('/v1/embeddings', { model: 'embedder', input: `a page the user opened, number ${n}` });
  await sleep(Math.max(0, 500 - (Date.now() - sent)));
};
const chatLoad = async (n) => {
  await call(
    '/v1/chat/completions',
    { model: 'chat', messages: [{ role: 'user', content: `Tell me about the garden, take ${n}.` }], max_tokens: 16, stream: true, seed: n },
    { stream: true },
  );
};

let phases;
try {
  // Warm both models first: their load is not what the phases measure.
  await call('/v1/embeddings', { model: 'embedder', input: 'warm up' });
  await call('/v1/chat/completions', { model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, stream: true }, { stream: true });
  phases = [await phase('idle', null), await phase('embed', embedLoad), await phase('chat', chatLoad)];
} finally {
  await server.stop();
}

const storage = createStorage({ path: join(server.dataDir, 'tabagent.db') });
const nodes = new Map();
for (const item of storage.listOutbox()) {
  if (item.payload.kind !== 'index-message') continue;
  const node = storage.getNode(item.payload.node_id);
  if (node?.chat_id) nodes.set(item.id, { chat: node.chat_id, item });
}
storage.close();
rmSync(root, { recursive: true, force: true });
rmSync(server.dataDir, { recursive: true, force: true });

console.log(
  `## Freshness under load, ${new Date().toISOString().slice(0, 10)}: ${messages} messages at ${rate}/s per phase, tiny models, 1 thread, --memory-max-wait ${maxWait ?? '5 (default)'}\n`,
);
console.log('| phase | load requests | indexed | freshness p50 | p95 | max |');
console.log('|---|---|---|---|---|---|');
const p95 = {};
for (const { name, requests } of phases) {
  const items = [...nodes.values()].filter((entry) => entry.chat === name).map((entry) => entry.item);
  const done = items.filter((item) => item.status === 'done');
  // An item not indexed when the phase ended (the cap) counts as never: the percentiles then say so.
  const fresh = items.map((item) => (item.status === 'done' ? item.updated_at - item.created_at : Number.POSITIVE_INFINITY));
  p95[name] = percentile(fresh, 95);
  const ms = (value) => (Number.isFinite(value) ? `${(value / 1000).toFixed(2)} s` : `not indexed within the ${capS} s cap`);
  console.log(
    `| ${name} | ${name === 'idle' ? '-' : requests} | ${done.length} of ${items.length} | ${ms(percentile(fresh, 50))} | ${ms(p95[name])} | ${ms(Math.max(...fresh))} |`,
  );
}
console.log(
  `\nfailures: ${Object.entries(failures)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ')}`,
);
const met = (name) => (p95[name] < 10_000 ? 'met' : 'NOT met');
console.log(`p95 < 10 s under embedding load: ${met('embed')}; under chat load: ${met('chat')} (idle p95 ${(p95.idle / 1000).toFixed(2)} s)`);
