// Memory ingest: how fast saved messages and pages become searchable, and what saving costs the
// rest of the server. Two parts, each with its baseline from the same run:
//
// 1. In process, at two sizes: the weaver drains N saved messages (tiny ONNX embedder, 1 thread)
//    until every one is in the vector index, and until its enrichment (similar links, entities) is
//    done too. Baseline: the same texts through `embed` + `index.appendChunks` in batches of 256,
//    called directly. The floor: searchable throughput >= 0.5 x direct, and no slower at the
//    larger size than at the smaller.
// 2. Over HTTP against `tabagent serve` (a tiny Jinja-template GGUF chat model and the same
//    embedder): idle CPU with an empty outbox; a steady run of single saves at --steady-rate per
//    second; a burst of --http-messages messages (add_messages, 50 per call) and --http-pages
//    pages; chat time to first token idle and while the burst drains. Freshness (save -> in the
//    vector index) comes from the outbox rows themselves (enqueued at commit, done after the index
//    write, both on the server's clock), read after the server stops, so measuring it does not
//    load the server.
//
//   node bench/memory/ingest.mjs [--sizes 1000,10000] [--batch 256] [--no-similar]
//        [--http-messages 10000] [--http-pages 500] [--steady-rate 50] [--steady-s 30] [--no-http]
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryIndex } from '@tabagent/indexing';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { createOnnxTextEmbedder } from '@tabagent/onnx-loader';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createStorage } from '@tabagent/storage';
import { createWeaver } from '@tabagent/weaver';
import { flag, option, percentile, postJson, readSse, startTabagent } from '../support/bench-support.mjs';

const sizes = option('sizes', '1000,10000').split(',').map(Number);
const batch = option('batch', undefined);
const noSimilar = flag('no-similar');
const httpMessages = Number(option('http-messages', '10000'));
const httpPages = Number(option('http-pages', '500'));
const steadyRate = Number(option('steady-rate', '50'));
const steadyS = Number(option('steady-s', '30'));
const root = mkdtempSync(join(tmpdir(), 'bench-ingest-'));

const text = (i) => `Note ${i}: the meeting about project ${i % 97} moved to room ${i % 13}; bring the ${['apples', 'pears', 'plums'][i % 3]} and the report.`;
const pageText = (i) =>
  Array.from(
    { length: 12 },
    (_, p) => `Section ${p} of page ${i}: the garden notes say water the tomatoes in bed ${(i + p) % 17} before noon, and mulch.`,
  ).join(' ');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value, digits = 0) => Number(value.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// Part 1: in process.

async function drainInProcess(size, embedder) {
  const dir = mkdtempSync(join(root, 'run-'));
  const storage = createStorage({ path: join(dir, 'tabagent.db') });
  const index = createMemoryIndex({ dir: join(dir, 'index'), storage, embedder: async () => embedder });
  const weaver = createWeaver({
    storage,
    index,
    embedders: async () => embedder,
    pollIntervalMs: 20,
    ...(batch === undefined ? {} : { batchSize: Number(batch) }),
    ...(noSimilar ? { maxSimilarLinks: 0 } : {}),
  });
  storage.createNode({ kind: 'chat', id: 'c', title: 'notes', props: {} });
  storage.transaction(() => {
    for (let i = 0; i < size; i++) storage.createNode({ kind: 'message', id: `m${i}`, chat_id: 'c', text: text(i), props: { role: 'user' } });
  });
  // Counted from the weaver's events: no polling competes with it.
  let searchable = 0;
  let searchableAt = 0;
  const allSearchable = new Promise((resolve) =>
    weaver.on('index-end', () => {
      searchable += 1;
      if (searchable === size) {
        searchableAt = performance.now();
        resolve();
      }
    }),
  );
  const started = performance.now();
  weaver.start();
  await allSearchable;
  while (storage.outboxStats().pending + storage.outboxStats().in_progress > 0) await sleep(20);
  const enrichedAt = performance.now();
  await weaver.stop();
  const similar = storage.listOutbox('done').filter((item) => item.payload.kind === 'enrich').length;
  await index.close();
  storage.close();

  const baseDir = mkdtempSync(join(root, 'base-'));
  const baseStorage = createStorage({ path: join(baseDir, 'tabagent.db') });
  const baseIndex = createMemoryIndex({ dir: join(baseDir, 'index'), storage: baseStorage, embedder: async () => embedder });
  const baseStarted = performance.now();
  for (let i = 0; i < size; i += 256) {
    const texts = Array.from({ length: Math.min(256, size - i) }, (_, k) => text(i + k));
    const { vectors } = await embedder.embed(texts);
    await baseIndex.appendChunks(
      embedder.modelId,
      embedder.dimensions,
      texts.map((chunk, k) => ({
        id: `m${i + k}#0`,
        node_id: `m${i + k}`,
        chunk_index: 0,
        text: chunk,
        kind: 'message',
        chat_id: 'c',
        tier: 'hot',
        url: null,
        title: null,
        created_at: 0,
        vector: vectors[k],
      })),
    );
  }
  const baseSeconds = (performance.now() - baseStarted) / 1000;
  await baseIndex.close();
  baseStorage.close();
  return {
    size,
    searchablePerSecond: size / ((searchableAt - started) / 1000),
    enrichedPerSecond: size / ((enrichedAt - started) / 1000),
    enrichBatches: similar,
    basePerSecond: size / baseSeconds,
  };
}

// ---------------------------------------------------------------------------------------------
// Part 2: over HTTP.

/** CPU seconds (user + system) of a process so far, from /proc. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function memoryStatus(base) {
  return (await fetch(`${base}/v1/memory/status`)).json();
}

/** Until every saved item is in the vector index (summaries and enrichment may still be queued). */
async function waitForDrain(base) {
  for (;;) {
    const status = await memoryStatus(base);
    if (status.unindexed === 0) return status;
    await sleep(100);
  }
}

/** Time to the first content token of a short streaming chat, ms. */
async function timeToFirstToken(base, n) {
  const started = performance.now();
  let first = null;
  const response = await postJson(`${base}/v1/chat/completions`, {
    model: 'chat',
    messages: [{ role: 'user', content: `Say something about the garden, take ${n}.` }],
    max_tokens: 4,
    stream: true,
    seed: n,
  });
  await readSse(response, (chunk, at) => {
    if (first === null && chunk.choices?.[0]?.delta?.content) first = at;
  });
  return (first ?? performance.now()) - started;
}

async function ttftSeries(base, count, offset) {
  const values = [];
  for (let n = 0; n < count; n++) {
    values.push(await timeToFirstToken(base, offset + n));
    await sleep(150);
  }
  return values;
}

/** Runs `tasks` (functions returning promises) with at most `limit` at once. */
async function pool(tasks, limit) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) await tasks[next++]();
    }),
  );
}

async function httpRun(modelsDir) {
  const server = await startTabagent({ models: [join(modelsDir, 'chat.gguf'), join(modelsDir, 'embedder')], keepDataDir: true });
  const base = server.baseUrl;
  try {
    // Warm both models, then the idle figures.
    const progress = (what) => console.error(`[ingest] ${what}`);
    progress('warming up');
    await timeToFirstToken(base, 0);
    await postJson(`${base}/v1/embeddings`, { input: 'warm up' });
    await waitForDrain(base);
    const idleTtft = await ttftSeries(base, 10, 100);
    await waitForDrain(base);
    progress('idle CPU, 15 s');
    const idleCpuStart = cpuSeconds(server.pid);
    const idleStarted = performance.now();
    await sleep(15_000);
    const idleCpu = (cpuSeconds(server.pid) - idleCpuStart) / ((performance.now() - idleStarted) / 1000);

    // Steady: single saves at a user's (busy) pace.
    progress(`steady saves, ${steadyS} s`);
    const steadyStarted = Date.now();
    const steadyTasks = [];
    const steadyCount = steadyRate * steadyS;
    const acceptMs = [];
    for (let i = 0; i < steadyCount; i++) {
      const due = steadyStarted + (i * 1000) / steadyRate;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      const sent = performance.now();
      steadyTasks.push(
        postJson(`${base}/v1/sessions/steady-${i % 20}/messages`, { message: { role: 'user', content: `steady ${text(i)}` } }).then(() =>
          acceptMs.push(performance.now() - sent),
        ),
      );
    }
    await Promise.all(steadyTasks);
    const steadyEnded = Date.now();
    await waitForDrain(base);

    // Burst: messages in calls of 50 and pages, as fast as the server accepts them.
    progress('burst');
    const burstCpuStart = cpuSeconds(server.pid);
    const burstStarted = Date.now();
    const calls = [];
    for (let i = 0; i < httpMessages; i += 50) {
      const messages = Array.from({ length: Math.min(50, httpMessages - i) }, (_, k) => ({ role: 'user', content: text(i + k) }));
      calls.push(() => postJson(`${base}/v1/conversations/burst-${(i / 50) % 40}/messages`, { messages }));
    }
    for (let i = 0; i < httpPages; i++)
      calls.push(() => postJson(`${base}/v1/documents`, { url: `https://garden.test/page/${i}`, title: `Garden page ${i}`, text: pageText(i) }));
    // Conversations must exist before messages are added to them.
    for (let c = 0; c < 40; c++) await postJson(`${base}/v1/conversations`, { id: `burst-${c}`, title: `Burst ${c}` });
    await pool(calls, 4);
    const acceptedAt = Date.now();
    const drainingTtft = [];
    let drained = false;
    const drainedPromise = waitForDrain(base).then((status) => {
      drained = true;
      return status;
    });
    for (let n = 0; !drained && n < 10; n++) {
      drainingTtft.push(await timeToFirstToken(base, 200 + n));
      await sleep(150);
    }
    const finalStatus = await drainedPromise;
    const burstCpu = (cpuSeconds(server.pid) - burstCpuStart) / ((Date.now() - burstStarted) / 1000);
    const spot = await (await postJson(`${base}/v1/rag/query`, { query: 'Garden page 499 tomatoes', k: 3, mode: 'text' })).json();
    await server.stop();

    // Freshness from the outbox rows (server clock): enqueued at commit, done after the index write.
    const storage = createStorage({ path: join(server.dataDir, 'tabagent.db') });
    // Saved messages and pages only: the summaries the server writes (and indexes) are its own work.
    const items = storage
      .listOutbox('done')
      .filter((item) => (item.payload.kind === 'index-message' || item.payload.kind === 'index-document') && !item.payload.node_id.startsWith('summary_'));
    const doneAt = new Map(items.map((item) => [item.id, item.updated_at]));
    storage.close();
    const fresh = (from, to) =>
      items.filter((item) => item.created_at >= from && item.created_at <= to).map((item) => (doneAt.get(item.id) ?? item.created_at) - item.created_at);
    const steadyFresh = fresh(steadyStarted, steadyEnded + 1);
    const burstItems = items.filter((item) => item.created_at >= burstStarted).sort((a, b) => doneAt.get(a.id) - doneAt.get(b.id));
    const burstFresh = fresh(burstStarted, Number.MAX_SAFE_INTEGER);
    const lastDone = Math.max(...burstItems.map((item) => doneAt.get(item.id)));
    const rateOf = (slice) => {
      const times = slice.map((item) => doneAt.get(item.id));
      return slice.length / Math.max(0.001, (Math.max(...times) - Math.min(...times)) / 1000);
    };
    rmSync(server.dataDir, { recursive: true, force: true });
    return {
      idleCpu,
      idleTtft,
      drainingTtft,
      steady: { count: steadyCount, acceptP50: percentile(acceptMs, 50), acceptP95: percentile(acceptMs, 95), fresh: steadyFresh },
      burst: {
        items: burstItems.length,
        acceptSeconds: (acceptedAt - burstStarted) / 1000,
        drainSeconds: (lastDone - burstStarted) / 1000,
        fresh: burstFresh,
        firstThousandRate: rateOf(burstItems.slice(0, 1000)),
        lastThousandRate: rateOf(burstItems.slice(-1000)),
        cpu: burstCpu,
      },
      finalStatus,
      spotIndexed: spot.results.map((result) => [result.source.title, result.indexed]),
    };
  } catch (error) {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------

try {
  const modelsDir = join(root, 'models');
  mkdirSync(modelsDir);
  await writeTinyEmbedderModel(join(modelsDir, 'embedder'));
  writeTinyLlamaGguf(join(modelsDir, 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
  const embedder = await createOnnxTextEmbedder(join(modelsDir, 'embedder'), { modelId: 'tiny', threads: 1 });
  const results = [];
  for (const size of sizes) results.push(await drainInProcess(size, embedder));
  await embedder.dispose?.();
  console.log('memory ingest, in process: saved messages until searchable (weaver drain), tiny ONNX embedder, 1 thread');
  console.log('| messages | searchable items/s | with enrichment items/s | direct embed+add items/s (batches of 256) | ratio searchable/direct (floor 0.5) |');
  console.log('|---|---|---|---|---|');
  for (const r of results)
    console.log(
      `| ${r.size} | ${r.searchablePerSecond.toFixed(0)} | ${r.enrichedPerSecond.toFixed(0)} | ${r.basePerSecond.toFixed(0)} | ${(r.searchablePerSecond / r.basePerSecond).toFixed(2)} |`,
    );
  const [first, last] = [results[0], results.at(-1)];
  console.log(
    `searchable items/s at ${last.size} vs ${first.size}: ${(last.searchablePerSecond / first.searchablePerSecond).toFixed(2)} (floor: no slower, >= 1.0 within noise)`,
  );

  if (!flag('no-http')) {
    const http = await httpRun(modelsDir);
    const ms = (values, p) => `${round(percentile(values, p))} ms`;
    console.log('\nmemory ingest over HTTP (tabagent serve, tiny GGUF chat model and tiny ONNX embedder):');
    console.log(`idle server, empty outbox: ${(http.idleCpu * 100).toFixed(2)} % of one core (floor < 1 %)`);
    console.log(
      `steady: ${http.steady.count} single saves at ${steadyRate}/s: accept p50 ${round(http.steady.acceptP50, 1)} ms, p95 ${round(http.steady.acceptP95, 1)} ms; ` +
        `freshness p50 ${ms(http.steady.fresh, 50)}, p95 ${ms(http.steady.fresh, 95)} (floor < 2000 ms), max ${ms(http.steady.fresh, 100)}`,
    );
    console.log(
      `burst: ${http.burst.items} items (${httpMessages} messages in calls of 50, ${httpPages} pages) accepted in ${http.burst.acceptSeconds.toFixed(1)} s ` +
        `(${(http.burst.items / http.burst.acceptSeconds).toFixed(0)} items/s); all searchable after ${http.burst.drainSeconds.toFixed(1)} s ` +
        `(${(http.burst.items / http.burst.drainSeconds).toFixed(0)} items/s); server CPU ${(http.burst.cpu * 100).toFixed(0)} % of one core`,
    );
    console.log(
      `burst freshness p50 ${ms(http.burst.fresh, 50)}, p95 ${ms(http.burst.fresh, 95)}, max ${ms(http.burst.fresh, 100)}; ` +
        `drain rate first 1,000 ${http.burst.firstThousandRate.toFixed(0)} items/s, last 1,000 ${http.burst.lastThousandRate.toFixed(0)} items/s`,
    );
    const idleP50 = percentile(http.idleTtft, 50);
    const drainP50 = percentile(http.drainingTtft, 50);
    console.log(
      `chat time to first token: idle p50 ${round(idleP50, 1)} ms (n=${http.idleTtft.length}), while draining p50 ${round(drainP50, 1)} ms (n=${http.drainingTtft.length}); ` +
        `ratio ${(drainP50 / idleP50).toFixed(2)} (floor <= 1.25); worst case while draining (a chat that met a batch in flight) ${round(Math.max(...http.drainingTtft), 1)} ms, idle max ${round(Math.max(...http.idleTtft), 1)} ms`,
    );
    console.log(
      `when all were searchable: memory.status items_per_second ${http.finalStatus.items_per_second}, failed ${http.finalStatus.failed}, ` +
        `follow-up work queued (enrichment, summaries) ${http.finalStatus.queue_depth}; spot search ${JSON.stringify(http.spotIndexed)}`,
    );
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
