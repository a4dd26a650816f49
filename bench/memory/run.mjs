#!/usr/bin/env node
// Memory index benchmark: bulk insert, vector and hybrid query latency, recall@10 of the ANN
// index against exact search. Vectors are random unit vectors (dimension 384) with planted
// near-duplicates around each query, so the true top 10 are well defined and recall is measurable.
// Usage: node bench/memory/run.mjs [--rows 100000] [--queries 1000] [--dim 384] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createMemoryIndex } from '@tabagent/indexing';
import { createStorage } from '@tabagent/storage';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    queries: { type: 'string', default: '1000' },
    dim: { type: 'string', default: '384' },
    duplicates: { type: 'string', default: '10' },
    'ann-threshold': { type: 'string', default: '5000' },
    json: { type: 'boolean', default: false },
  },
});
const rows = Number(args.rows);
const queryCount = Number(args.queries);
const dim = Number(args.dim);
const duplicates = Number(args.duplicates);

// Seeded PRNG (mulberry32) and Box-Muller normals: the same data every run.
let state = 0x5eed;
function random() {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function normal() {
  return Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
}
function unitVector(base, noise) {
  const v = new Float32Array(dim);
  let norm = 0;
  for (let i = 0; i < dim; i += 1) {
    v[i] = (base === undefined ? 0 : base[i]) + noise * normal();
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm);
  for (let i = 0; i < dim; i += 1) v[i] /= norm;
  return v;
}
const vocabulary = Array.from({ length: 5000 }, (_, i) => `w${i.toString(36)}${'aeiou'[i % 5]}`);
function words(n, topic) {
  const out = [];
  for (let i = 0; i < n; i += 1) out.push(topic !== undefined && i % 3 === 0 ? topic[i % topic.length] : vocabulary[Math.floor(random() * vocabulary.length)]);
  return out.join(' ');
}

const queryTopics = Math.min(queryCount, Math.floor(rows / duplicates));
const bases = Array.from({ length: queryTopics }, () => unitVector(undefined, 1));
const topicWords = Array.from({ length: queryTopics }, (_, i) => [
  `topic${i}x`,
  vocabulary[(i * 7) % vocabulary.length],
  vocabulary[(i * 13) % vocabulary.length],
]);
const dir = mkdtempSync(join(tmpdir(), 'tabagent-bench-memory-'));
const storage = createStorage({ path: join(dir, 'tabagent.db') });
const model = { modelId: 'bench/random-384', dimensions: dim, maxTokens: 512, embed: () => Promise.reject(new Error('bench passes vectors')) };
const index = createMemoryIndex({ dir: join(dir, 'index'), storage, embedder: () => Promise.resolve(model), annThreshold: Number(args['ann-threshold']) });

function chunkAt(i) {
  const topic = i < queryTopics * duplicates ? Math.floor(i / duplicates) : undefined;
  // Near-duplicates: the topic vector plus noise of about 0.5 of its norm (cosine ~0.9 to the base).
  const vector = topic === undefined ? unitVector(undefined, 1) : unitVector(bases[topic], 0.5 / Math.sqrt(dim));
  return {
    id: `n${i}#0`,
    node_id: `n${i}`,
    chunk_index: 0,
    text: words(40, topic === undefined ? undefined : topicWords[topic]),
    kind: i % 10 === 0 ? 'webpage' : 'message',
    chat_id: `chat${i % 500}`,
    tier: 'active',
    url: null,
    title: null,
    created_at: 1_700_000_000_000 + i,
    vector,
  };
}

const progress = (message) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const summary = (times) => {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50_ms: +percentile(sorted, 50).toFixed(2),
    p95_ms: +percentile(sorted, 95).toFixed(2),
    mean_ms: +(times.reduce((a, b) => a + b, 0) / times.length).toFixed(2),
  };
};

try {
  // Generation is excluded from the insert rate (it stands in for embedding time).
  let insertMs = 0;
  const batchSize = 5000;
  for (let start = 0; start < rows; start += batchSize) {
    const batch = [];
    for (let i = start; i < Math.min(rows, start + batchSize); i += 1) batch.push(chunkAt(i));
    const t = performance.now();
    await index.appendChunks(model.modelId, dim, batch);
    insertMs += performance.now() - t;
    if ((start / batchSize) % 5 === 4) progress(`inserted ${start + batch.length} rows`);
  }
  const queries = Array.from({ length: queryCount }, (_, q) => {
    const topic = q % queryTopics;
    return { vector: unitVector(bases[topic], 0.3 / Math.sqrt(dim)), text: `${topicWords[topic][0]} ${topicWords[topic][1]}` };
  });
  // Exact top 10 before the ANN index exists (and again with bypass after, as a check).
  const exact = [];
  const exactTimes = [];
  for (const query of queries) {
    const t = performance.now();
    exact.push((await index.search({ query: query.text, vector: query.vector, k: 10, mode: 'vector', exact: true })).map((hit) => hit.id));
    exactTimes.push(performance.now() - t);
  }
  progress(`exact search done (${queries.length} queries); building the ANN index`);
  const t0 = performance.now();
  await index.optimize();
  progress('ANN index built; measuring vector, hybrid and text search');
  const indexBuildMs = performance.now() - t0;
  const [stats] = await index.stats();
  const vectorTimes = [];
  const hybridTimes = [];
  const textTimes = [];
  let found = 0;
  for (let q = 0; q < queries.length; q += 1) {
    const query = queries[q];
    let t = performance.now();
    const hits = await index.search({ query: query.text, vector: query.vector, k: 10, mode: 'vector' });
    vectorTimes.push(performance.now() - t);
    const truth = new Set(exact[q]);
    found += hits.filter((hit) => truth.has(hit.id)).length;
    t = performance.now();
    await index.search({ query: query.text, vector: query.vector, k: 10, mode: 'hybrid' });
    hybridTimes.push(performance.now() - t);
    t = performance.now();
    await index.search({ query: query.text, k: 10, mode: 'text' });
    textTimes.push(performance.now() - t);
  }
  const result = {
    rows,
    dimensions: dim,
    queries: queryCount,
    ann_index: stats?.annIndexed ? 'IVF_HNSW_SQ (cosine)' : 'none (exact)',
    insert_chunks_per_s: Math.round(rows / (insertMs / 1000)),
    index_build_s: +(indexBuildMs / 1000).toFixed(2),
    exact_vector: summary(exactTimes),
    vector: summary(vectorTimes),
    text: summary(textTimes),
    hybrid: summary(hybridTimes),
    recall_at_10: +(found / (queryCount * 10)).toFixed(4),
  };
  const floors = { hybrid_p50: result.hybrid.p50_ms < 20, hybrid_p95: result.hybrid.p95_ms < 50, recall: result.recall_at_10 >= 0.95 };
  if (args.json) process.stdout.write(`${JSON.stringify({ ...result, floors })}\n`);
  else {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\nfloors (hybrid p50 < 20 ms, p95 < 50 ms, recall@10 >= 0.95): ${JSON.stringify(floors)}\n`);
  }
} finally {
  await index.close();
  storage.close();
  rmSync(dir, { recursive: true, force: true });
}
