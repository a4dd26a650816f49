import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOnnxTextEmbedder, type OnnxTextEmbedder } from '@tabagent/onnx-loader';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createMemoryIndex, type MemoryIndex } from '@tabagent/indexing';
import { createStorage, type OutboxStatus, type Storage } from '@tabagent/storage';
import type { TextEmbedder, TextEmbedderResolver } from '@tabagent/values';
import { createWeaver } from '../src/memory-weaver.js';
import type { Weaver, WeaverOptions } from '../src/weaver-types.js';

/** Real SQLite + LanceDB + tiny ONNX embedder(s) in a temp folder. */
export interface Harness {
  dir: string;
  storage: Storage;
  index: MemoryIndex;
  weaver: Weaver;
  embedders: Map<string, OnnxTextEmbedder>;
  resolver: TextEmbedderResolver;
  close(): Promise<void>;
}

export async function writeEmbedder(dir: string, modelId: string, seed = 1): Promise<OnnxTextEmbedder> {
  const folder = join(dir, 'models', modelId);
  await writeTinyEmbedderModel(folder, { seed });
  return createOnnxTextEmbedder(folder, { modelId, threads: 1 });
}

export async function createHarness(
  options: Partial<WeaverOptions> & { wrapResolver?: (resolver: TextEmbedderResolver) => TextEmbedderResolver } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'weaver-test-'));
  const embedders = new Map<string, OnnxTextEmbedder>();
  embedders.set('tiny-a', await writeEmbedder(dir, 'tiny-a', 1));
  embedders.set('tiny-b', await writeEmbedder(dir, 'tiny-b', 2));
  const base: TextEmbedderResolver = (modelId) => {
    const embedder: TextEmbedder | undefined = embedders.get(modelId ?? 'tiny-a');
    return embedder === undefined ? Promise.reject(new Error(`unknown model ${String(modelId)}`)) : Promise.resolve(embedder);
  };
  const resolver = options.wrapResolver === undefined ? base : options.wrapResolver(base);
  const storage = createStorage({ path: join(dir, 'tabagent.db'), ...(options.now === undefined ? {} : { now: options.now }) });
  let weaverRef: Weaver | undefined;
  const index = createMemoryIndex({ dir: join(dir, 'index'), storage, embedder: () => (weaverRef === undefined ? resolver() : weaverRef.embedder()) });
  const weaver = createWeaver({ storage, index, embedders: resolver, pollIntervalMs: 20, backoffMs: 10, ...options });
  weaverRef = weaver;
  return {
    dir,
    storage,
    index,
    weaver,
    embedders,
    resolver,
    async close() {
      await weaver.stop();
      await index.close();
      storage.close();
      for (const embedder of embedders.values()) await embedder.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when `condition` holds, polling; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Index items (saved messages and pages) in `status`; enrichment and summary items are not counted. */
export function indexItems(storage: Storage, status: OutboxStatus): number {
  return storage.listOutbox(status).filter((item) => item.payload.kind === 'index-message' || item.payload.kind === 'index-document').length;
}
