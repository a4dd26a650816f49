// What a similar-link enrichment costs per node, by part, at 10,000 indexed messages (tiny ONNX
// embedder, 32 dimensions, LanceDB with its ANN index built as the weaver builds it): reading the
// nodes' first-chunk vectors back (`nodeVectors`) and their nearest neighbours (`nearestNodes`, one
// multi-vector query), per unit size; then the neighbour query in other shapes (single queries in
// sequence and in parallel, flat scan, fewer probes). The profile behind the enrichment figure of
// issue "Memory and endurance": the neighbour query alone costs more per node than the floor allows.
//   node bench/memory/neighbour-query-profile.mjs [--size 10000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { createMemoryIndex } from '@tabagent/indexing';
import { createOnnxTextEmbedder } from '@tabagent/onnx-loader';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createStorage } from '@tabagent/storage';
import { option } from '../support/bench-support.mjs';

const size = Number(option('size', '10000'));
const root = mkdtempSync(join(tmpdir(), 'neighbour-profile-'));
await writeTinyEmbedderModel(join(root, 'emb'));
const embedder = await createOnnxTextEmbedder(join(root, 'emb'), { modelId: 'emb', threads: 1 });
const storage = createStorage({ path: join(root, 'tabagent.db') });
const index = createMemoryIndex({ dir: join(root, 'index'), storage, embedder: async () => embedder });
const text = (i) => `Note ${i}: the meeting about project ${i % 97} moved to room ${i % 13}; bring the ${['apples', 'pears', 'plums'][i % 3]} and the report.`;
storage.createNode({ kind: 'chat', id: 'c', title: 'notes', props: {} });
storage.transaction(() => {
  for (let i = 0; i < size; i++) storage.createNode({ kind: 'message', id: `m${i}`, chat_id: 'c', text: text(i), props: { role: 'user' } });
});
const nodes = [...storage.getNodes(Array.from({ length: size }, (_, i) => `m${i}`)).values()];
for (let i = 0; i < size; i += 256) await index.indexNodes(nodes.slice(i, i + 256), embedder);
await index.optimize();
console.log(`${size} messages indexed, ${embedder.dimensions} dimensions; per node, over 2,048 nodes:`);
for (const unit of [16, 64, 256]) {
  let vectorsMs = 0;
  let nearestMs = 0;
  for (let i = 0; i < 2048; i += unit) {
    const ids = nodes.slice(i, i + unit).map((node) => node.id);
    const a = performance.now();
    const vectors = await index.nodeVectors('emb', embedder.dimensions, ids);
    const b = performance.now();
    await index.nearestNodes('emb', embedder.dimensions, [...vectors.values()], 10);
    nearestMs += performance.now() - b;
    vectorsMs += b - a;
  }
  console.log(`unit ${String(unit).padStart(3)}: nodeVectors ${(vectorsMs / 2048).toFixed(3)} ms, nearestNodes ${(nearestMs / 2048).toFixed(3)} ms`);
}
const connection = await lancedb.connect(join(root, 'index'));
const table = await connection.openTable((await connection.tableNames())[0]);
const vectors = [
  ...(
    await index.nodeVectors(
      'emb',
      embedder.dimensions,
      nodes.slice(0, 256).map((node) => node.id),
    )
  ).values(),
].map((vector) => Array.from(vector));
const query = (vector) => table.query().nearestTo(vector).distanceType('cosine').select(['node_id', '_distance']).limit(10);
async function time(label, run) {
  const started = performance.now();
  await run();
  console.log(`${label.padEnd(34)} ${((performance.now() - started) / vectors.length).toFixed(3)} ms`);
}
await time('one multi-vector query of 256', async () => {
  let multi = table.query().nearestTo(vectors[0]);
  for (const vector of vectors.slice(1)) multi = multi.addQueryVector(vector);
  await multi.distanceType('cosine').select(['node_id', '_distance']).limit(10).toArray();
});
await time('256 queries in sequence', async () => {
  for (const vector of vectors) await query(vector).toArray();
});
await time('256 queries at once', () => Promise.all(vectors.map((vector) => query(vector).toArray())));
await time('256 queries at once, flat scan', () => Promise.all(vectors.map((vector) => query(vector).bypassVectorIndex().toArray())));
await time('256 queries at once, nprobes 4', () => Promise.all(vectors.map((vector) => query(vector).nprobes(4).toArray())));
await index.close();
storage.close();
await embedder.dispose();
rmSync(root, { recursive: true, force: true });
