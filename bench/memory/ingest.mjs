// Memory ingest: how fast saved messages become searchable. N messages are saved (one
// transaction each, as the routes do) and the weaver drains them with the tiny ONNX embedding
// fixture; the baseline in the same run sends the same texts through `embed` + `index.add`
// directly in batches of 256. Reported at two sizes, to show whether the cost per item grows with
// the memory.
//
//   node bench/memory/ingest.mjs [--sizes 1000,5000] [--batch 32] [--no-similar]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createMemoryIndex } from '@tabagent/indexing';
import { createOnnxTextEmbedder } from '@tabagent/onnx-loader';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createStorage } from '@tabagent/storage';
import { createWeaver } from '@tabagent/weaver';

const { values: args } = parseArgs({
  options: { sizes: { type: 'string', default: '1000,5000' }, batch: { type: 'string' }, 'no-similar': { type: 'boolean', default: false } },
});
const sizes = args.sizes.split(',').map(Number);
const root = mkdtempSync(join(tmpdir(), 'bench-ingest-'));

const text = (i) => `Note ${i}: the meeting about project ${i % 97} moved to room ${i % 13}; bring the ${['apples', 'pears', 'plums'][i % 3]} and the report.`;

async function run(size, embedder) {
  const dir = mkdtempSync(join(root, 'run-'));
  const storage = createStorage({ path: join(dir, 'tabagent.db') });
  const index = createMemoryIndex({ dir: join(dir, 'index'), storage, embedder: async () => embedder });
  const weaver = createWeaver({
    storage,
    index,
    embedders: async () => embedder,
    pollIntervalMs: 20,
    ...(args.batch === undefined ? {} : { batchSize: Number(args.batch) }),
    ...(args['no-similar'] ? { maxSimilarLinks: 0 } : {}),
  });
  storage.createNode({ kind: 'chat', id: 'c', title: 'notes', props: {} });
  for (let i = 0; i < size; i++) storage.createNode({ kind: 'message', id: `m${i}`, chat_id: 'c', text: text(i), props: { role: 'user' } });
  const started = performance.now();
  weaver.start();
  while (storage.outboxStats().done < size) await new Promise((resolve) => setTimeout(resolve, 25));
  const seconds = (performance.now() - started) / 1000;
  await weaver.stop();
  await index.close();
  storage.close();

  // Baseline: the same texts embedded and added directly, 256 at a time.
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
  return { size, perSecond: size / seconds, basePerSecond: size / baseSeconds };
}

try {
  const model = join(root, 'embedder');
  await writeTinyEmbedderModel(model);
  const embedder = await createOnnxTextEmbedder(model, { modelId: 'tiny', threads: 1 });
  const results = [];
  for (const size of sizes) results.push(await run(size, embedder));
  console.log('memory ingest: saved messages until searchable (weaver drain), tiny ONNX embedder, 1 thread');
  console.log('| messages | weaver items/s | direct embed+add items/s (batches of 256) | ratio weaver/direct |');
  console.log('|---|---|---|---|');
  for (const r of results)
    console.log(`| ${r.size} | ${r.perSecond.toFixed(0)} | ${r.basePerSecond.toFixed(0)} | ${(r.perSecond / r.basePerSecond).toFixed(3)} |`);
  const [first, last] = [results[0], results.at(-1)];
  console.log(`items/s at ${last.size} vs ${first.size}: ${(last.perSecond / first.perSecond).toFixed(3)} (floor: no slower, >= 1.0 within noise)`);
  await embedder.dispose?.();
} finally {
  rmSync(root, { recursive: true, force: true });
}
