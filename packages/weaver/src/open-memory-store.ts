import { join } from 'node:path';
import { createMemoryIndex, type MemoryIndex, type MemoryIndexOptions } from '@tabagent/indexing';
import { createStorage, type Storage } from '@tabagent/storage';
import { createWeaver } from './memory-weaver.js';
import type { Weaver, WeaverOptions } from './weaver-types.js';

/** Options of `openMemoryStore`: the data directory plus the weaver's and index's collaborators. */
export interface OpenMemoryStoreOptions extends Omit<WeaverOptions, 'storage' | 'index'> {
  /** Holds `tabagent.db` and `index/`. */
  dataDir: string;
  /** Initial embedding model (`--embedding-model` / `TABAGENT_EMBEDDING_MODEL`); stored as the setting when given. */
  embeddingModel?: string;
  rerank?: MemoryIndexOptions['rerank'];
  annThreshold?: number;
}

/** The opened memory store: storage, its index, and the weaver (not started). */
export interface MemoryStore {
  storage: Storage;
  index: MemoryIndex;
  weaver: Weaver;
  /** Stops the weaver, then closes the index and the database. */
  close(): Promise<void>;
}

/**
 * Opens `<dataDir>/tabagent.db` and `<dataDir>/index` and wires the weaver so that queries use the
 * configured embedding model (the index asks the weaver, which reads the setting).
 */
export async function openMemoryStore(options: OpenMemoryStoreOptions): Promise<MemoryStore> {
  const { dataDir, embeddingModel, rerank, annThreshold, ...weaverOptions } = options;
  const storage = createStorage({ path: join(dataDir, 'tabagent.db'), ...(weaverOptions.now === undefined ? {} : { now: weaverOptions.now }) });
  let weaver: Weaver | undefined;
  let index: ReturnType<typeof createMemoryIndex> | undefined;
  let created: Weaver;
  try {
    index = createMemoryIndex({
      dir: join(dataDir, 'index'),
      storage,
      embedder: () => (weaver === undefined ? weaverOptions.embedders() : weaver.embedder()),
      ...(rerank === undefined ? {} : { rerank }),
      ...(annThreshold === undefined ? {} : { annThreshold }),
    });
    created = createWeaver({ ...weaverOptions, storage, index });
    weaver = created;
    if (embeddingModel !== undefined) await created.setEmbeddingModel(embeddingModel);
  } catch (error) {
    // What opened before the failure is closed: a caller that goes on holds no handle of it.
    await weaver?.stop();
    await index?.close();
    await storage.release();
    throw error;
  }
  return {
    storage,
    index,
    weaver: created,
    async close() {
      await created.stop();
      await index.close();
      await storage.release();
    },
  };
}
