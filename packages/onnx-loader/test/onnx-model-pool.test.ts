import { join } from 'node:path';
import { createOnnxModelPool } from '../src/index.js';
import { writeTinyCrossEncoderModel, writeTinyEmbedderModel, writeTinyTokenClassifierModel } from '../src/test-support/index.js';
import { createTemporaryFolder } from './temporary-folder.js';

describe('createOnnxModelPool', () => {
  it('loads each task once per id, even for racing loads, and unloads', async () => {
    const folder = await createTemporaryFolder('pool');
    const pool = createOnnxModelPool({ threads: 1 });
    try {
      const embedder = await writeTinyEmbedderModel(join(folder.path, 'e'));
      const reranker = await writeTinyCrossEncoderModel(join(folder.path, 'r'));
      const ner = await writeTinyTokenClassifierModel(join(folder.path, 'n'));
      const [first, second] = await Promise.all([pool.load('emb', embedder.folder), pool.load('emb', embedder.folder)]);
      expect(first).toBe(second);
      expect(first.task).toBe('embedding');
      expect(first.model.modelId).toBe('emb');
      expect((await pool.load('rr', reranker.folder)).task).toBe('rerank');
      expect((await pool.load('ner', ner.folder)).task).toBe('token-classification');
      expect(pool.list().map((m) => m.id)).toEqual(['emb', 'rr', 'ner']);
      expect(await pool.unload('rr')).toBe(true);
      expect(await pool.unload('rr')).toBe(false);
      expect(pool.get('rr')).toBeUndefined();
      await expect(pool.load('bad', embedder.folder, 'rerank')).rejects.toMatchObject({ code: 'invalid_model' });
      expect(pool.get('bad')).toBeUndefined();
    } finally {
      await pool.dispose();
      await folder.remove();
    }
    expect(pool.list()).toEqual([]);
  });

  it('lets embeddings in flight finish when their model is unloaded, and refuses later ones as retryable', async () => {
    const folder = await createTemporaryFolder('pool-unload');
    const pool = createOnnxModelPool({ threads: 1 });
    try {
      const embedder = await writeTinyEmbedderModel(join(folder.path, 'e'));
      const loaded = await pool.load('emb', embedder.folder);
      if (loaded.task !== 'embedding') throw new Error('expected an embedder');
      const texts = Array.from({ length: 64 }, (_unused, n) => `text number ${n} about tabs and memory`);
      const inFlight = loaded.model.embed(texts);
      const unloaded = pool.unload('emb');
      const result = await inFlight;
      expect(result.vectors).toHaveLength(64);
      expect(await unloaded).toBe(true);
      await expect(loaded.model.embed(['after'])).rejects.toMatchObject({
        code: 'model_not_loaded',
        retryable: true,
        message: 'Embedding model emb was unloaded; send the request again',
      });
    } finally {
      await pool.dispose();
      await folder.remove();
    }
  });
});
