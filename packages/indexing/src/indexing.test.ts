import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, type Storage } from '@tabagent/storage';
import type { TextEmbedder } from '@tabagent/values';
import { createMemoryIndex } from './lance-memory-index.js';
import { chunkText } from './text-chunker.js';
import { reciprocalRankFusion } from './reciprocal-rank-fusion.js';
import { filtersToWhere } from './search-filters.js';
import { tableNameForModel } from './table-name.js';
import { expandGraph } from './graph-queries.js';
import type { IndexChunk, MemoryIndex } from './memory-index-types.js';

const dims = 8;
/** Searches here pass vectors directly; the descriptor only names the table. */
const vectorsOnly: TextEmbedder = {
  modelId: 'test/vectors-only',
  dimensions: dims,
  maxTokens: 512,
  embed: () => Promise.reject(new Error('tests pass vectors directly')),
};

function unit(values: number[]): Float32Array {
  const norm = Math.hypot(...values);
  return Float32Array.from(values.map((value) => value / norm));
}
function axis(i: number, noise = 0): Float32Array {
  const v = new Array<number>(dims).fill(noise);
  v[i % dims] = 1;
  return unit(v);
}
function chunk(nodeId: string, text: string, vector: Float32Array, extra: Partial<IndexChunk> = {}): IndexChunk {
  return {
    id: `${nodeId}#0`,
    node_id: nodeId,
    chunk_index: 0,
    text,
    kind: 'message',
    chat_id: 'c1',
    tier: 'active',
    url: null,
    title: null,
    created_at: 1000,
    vector,
    ...extra,
  };
}

let dir: string;
let storage: Storage;
let index: MemoryIndex;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'indexing-test-'));
  storage = createStorage({ path: join(dir, 'tabagent.db') });
  index = createMemoryIndex({ dir: join(dir, 'index'), storage, embedder: () => Promise.resolve(vectorsOnly) });
});
afterEach(async () => {
  await index.close();
  storage.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('chunkText', () => {
  it('keeps sentences whole, respects the size and overlaps the last sentence', () => {
    const text = 'Alpha one is here. Beta two is here. Gamma three is here. Delta four is here.';
    expect(chunkText(text, { maxChars: 40, overlapChars: 20 })).toEqual([
      'Alpha one is here. Beta two is here.',
      'Beta two is here. Gamma three is here.',
      'Gamma three is here. Delta four is here.',
    ]);
    expect(chunkText('short', { maxChars: 40 })).toEqual(['short']);
    expect(chunkText('   ')).toEqual([]);
  });
  it('cuts an overlong sentence at word boundaries', () => {
    const chunks = chunkText('word '.repeat(50).trim(), { maxChars: 30, overlapChars: 0 });
    expect(chunks.every((piece) => piece.length <= 30)).toBe(true);
    expect(chunks.join(' ').split(' ')).toHaveLength(50);
  });
});

describe('reciprocalRankFusion', () => {
  it('sums 1/(k+rank) over lists', () => {
    const fused = reciprocalRankFusion(
      [
        ['a', 'b', 'c'],
        ['c', 'a'],
      ],
      60,
    );
    expect(fused.map((item) => item.id)).toEqual(['a', 'c', 'b']);
    expect(fused[0]?.score).toBeCloseTo(1 / 61 + 1 / 62, 12);
    expect(fused[1]?.score).toBeCloseTo(1 / 63 + 1 / 61, 12);
    expect(fused[2]?.score).toBeCloseTo(1 / 62, 12);
  });
});

describe('filtersToWhere', () => {
  it('quotes values and combines clauses', () => {
    expect(
      filtersToWhere({
        chat_id: "o'neil",
        kinds: ['message', 'webpage'],
        tiers: ['active'],
        url: 'https://x/?a=1',
        since: '1970-01-01T00:00:01Z',
        until: '5000',
      }),
    ).toBe(
      "chat_id = 'o''neil' AND kind IN ('message', 'webpage') AND tier IN ('active') AND url = 'https://x/?a=1' AND created_at >= 1000 AND created_at <= 5000",
    );
    expect(filtersToWhere({})).toBeUndefined();
    expect(filtersToWhere(undefined)).toBeUndefined();
  });
  it('rejects invalid filters with InvalidRequestError', () => {
    expect(() => filtersToWhere({ since: 'yesterday-ish' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    expect(() => filtersToWhere({ kinds: ['robot'] })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    expect(() => filtersToWhere({ evil: '1=1' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    expect(() => filtersToWhere({ since: '2000', until: '1000' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});

describe('tableNameForModel', () => {
  it('derives a safe, distinct name', () => {
    expect(tableNameForModel('Xenova/all-MiniLM-L6-v2', 384)).toMatch(/^chunks_xenova_all_minilm_l6_v2_[0-9a-f]{8}_d384$/);
    expect(tableNameForModel('a/b', 4)).not.toBe(tableNameForModel('a.b', 4));
    expect(tableNameForModel("x'; DROP", 4)).toMatch(/^[a-z0-9_]+$/);
  });
});

describe('LanceMemoryIndex', () => {
  async function seed(): Promise<void> {
    await index.upsertChunks(vectorsOnly.modelId, dims, [
      chunk('n0', 'apples grow on trees in the orchard', axis(0), { created_at: 1000 }),
      chunk('n1', 'bananas are yellow', axis(1), { chat_id: 'c2', created_at: 2000 }),
      chunk('n2', "o'neil wrote about apples", axis(2), { kind: 'webpage', url: 'https://p/', chat_id: null, created_at: 3000 }),
      chunk('n3', 'cherries and plums', axis(0, 0.2), { tier: 'archive', created_at: 4000 }),
    ]);
  }

  it('finds what was written while status reads and searches opened the table at the same moment', async () => {
    // Status reads (stats) and searches racing the first write, which creates the table: each of
    // them once opened a handle of its own, and whichever reached the cache last was used for
    // every search after, blind to what the writer's handle wrote.
    let written = false;
    const writing = index.upsertChunks(vectorsOnly.modelId, dims, [chunk('n0', 'apples grow on trees', axis(0))]).finally(() => (written = true));
    const race = async (): Promise<void> => {
      while (!written) await Promise.all([index.stats(), index.search({ query: 'q', vector: axis(0), k: 3, mode: 'vector' })]);
    };
    await Promise.all([writing, race(), race(), race(), race()]);
    await index.upsertChunks(vectorsOnly.modelId, dims, [chunk('n1', 'bananas are yellow', axis(1))]);
    const hits = await index.search({ query: 'q', vector: axis(0), k: 3, mode: 'vector' });
    expect(hits.map((hit) => hit.node_id).sort()).toEqual(['n0', 'n1']);
    expect((await index.stats()).map((table) => table.rows)).toEqual([2]);
  });

  it('vector search ranks by cosine similarity and reports it as the score', async () => {
    await seed();
    const hits = await index.search({ query: 'q', vector: axis(0), k: 3, mode: 'vector' });
    expect(hits.map((hit) => hit.node_id)).toEqual(['n0', 'n3', 'n1']);
    expect(hits[0]?.score).toBeCloseTo(1, 5);
    expect(hits[1]?.score).toBeCloseTo(
      Array.from(axis(0, 0.2)).reduce((sum, value, i) => sum + value * (axis(0)[i] ?? 0), 0),
      5,
    );
  });

  it('text search finds words through the FTS index', async () => {
    await seed();
    const hits = await index.search({ query: 'apples', k: 5, mode: 'text' });
    expect(hits.map((hit) => hit.node_id).sort()).toEqual(['n0', 'n2']);
    expect(hits.every((hit) => hit.score > 0)).toBe(true);
  });

  it('treats query text as plain words, never as query syntax', async () => {
    await seed();
    for (const query of ['apples" OR (', 'text:apples AND NOT', '*', "o'neil", '~~~ ^2 [a TO z]']) {
      const hits = await index.search({ query, vector: axis(1), k: 5, mode: 'hybrid' });
      expect(hits.length).toBeGreaterThan(0);
    }
    expect((await index.search({ query: "o'neil", k: 5, mode: 'text' })).map((hit) => hit.node_id)).toContain('n2');
    // Text mode alone has no vector leg to hide a failure: a quoted phrase once failed the whole search.
    for (const query of ['"apples"', '"red apples', 'apples" OR (', 'text:apples']) {
      const hits = await index.search({ query, k: 5, mode: 'text' });
      expect({ query, found: hits.map((hit) => hit.node_id).sort() }).toEqual({ query, found: ['n0', 'n2'] });
    }
  });

  it('hybrid search fuses both lists by reciprocal rank', async () => {
    await seed();
    const hits = await index.search({ query: 'apples', vector: axis(2), k: 4, mode: 'hybrid' });
    const vector = await index.search({ query: 'apples', vector: axis(2), k: 40, mode: 'vector' });
    const text = await index.search({ query: 'apples', k: 40, mode: 'text' });
    const expected = reciprocalRankFusion([vector.map((hit) => hit.id), text.map((hit) => hit.id)]).slice(0, 4);
    expect(hits.map((hit) => [hit.id, hit.score])).toEqual(expected.map((item) => [item.id, item.score]));
    expect(hits[0]?.node_id).toBe('n2');
  });

  it('applies filters, including quoted values', async () => {
    await seed();
    const search = (filters: object) =>
      index.search({ query: 'apples', vector: axis(0), k: 10, mode: 'vector', filters }).then((hits) => hits.map((hit) => hit.node_id).sort());
    expect(await search({ chat_id: 'c2' })).toEqual(['n1']);
    expect(await search({ kinds: ['webpage'] })).toEqual(['n2']);
    expect(await search({ tiers: ['archive'] })).toEqual(['n3']);
    expect(await search({ url: 'https://p/' })).toEqual(['n2']);
    expect(await search({ since: '2000', until: '3000' })).toEqual(['n1', 'n2']);
    expect(await search({ chat_id: "c1' OR '1'='1" })).toEqual([]);
    await expect(index.search({ query: 'x', vector: axis(0), filters: { since: 'never' } })).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('reranks through the injected reranker and refuses rerank without one', async () => {
    await seed();
    await expect(index.search({ query: 'apples', vector: axis(0), rerank: true })).rejects.toMatchObject({ code: 'invalid_request' });
    const reranked = createMemoryIndex({
      dir: join(dir, 'index'),
      storage,
      embedder: () => Promise.resolve(vectorsOnly),
      rerank: (_query, docs) => Promise.resolve(docs.map((doc) => (doc.includes('cherries') ? 10 : doc.length / 100))),
    });
    const hits = await reranked.search({ query: 'apples', vector: axis(0), k: 2, rerank: true });
    expect(hits.map((hit) => [hit.node_id, hit.score])).toEqual([
      ['n3', 10],
      ['n0', 'apples grow on trees in the orchard'.length / 100],
    ]);
    await reranked.close();
  });

  it('adds saved items not indexed yet after the index hits in text mode, keeping the index scores, and reranks them with the rest', async () => {
    await seed();
    // Saved (an index item is queued) but not indexed: only storage's word index knows it.
    storage.createNode({ kind: 'chat', id: 'c9', title: 'Chat', props: {} });
    storage.createNode({ kind: 'message', id: 'pending', chat_id: 'c9', text: 'apples saved a moment ago', props: { role: 'user' } });
    const indexedOnly = await index.search({ query: 'apples', k: 5, mode: 'text', unindexed: false });
    const text = await index.search({ query: 'apples', k: 5, mode: 'text' });
    expect(text.slice(0, -1).map((hit) => [hit.node_id, hit.score, hit.indexed])).toEqual(indexedOnly.map((hit) => [hit.node_id, hit.score, true]));
    expect(text.at(-1)).toMatchObject({ node_id: 'pending', indexed: false });
    const reranked = createMemoryIndex({
      dir: join(dir, 'index'),
      storage,
      embedder: () => Promise.resolve(vectorsOnly),
      rerank: (_query, docs) => Promise.resolve(docs.map((doc) => (doc.includes('moment') ? 10 : doc.length / 100))),
    });
    const hits = await reranked.search({ query: 'apples', k: 2, mode: 'text', rerank: true });
    expect(hits.map((hit) => [hit.node_id, hit.score, hit.indexed])).toEqual([
      ['pending', 10, false],
      ['n0', 'apples grow on trees in the orchard'.length / 100, true],
    ]);
    await reranked.close();
  });

  it('replaces a node’s chunks, deletes by node id and updates tiers', async () => {
    await seed();
    await index.upsertChunks(vectorsOnly.modelId, dims, [chunk('n0', 'replaced text', axis(0))]);
    expect((await index.search({ query: 'orchard', k: 5, mode: 'text' })).length).toBe(0);
    await index.deleteNodes(['n1', 'n2']);
    expect((await index.search({ query: 'q', vector: axis(1), k: 10, mode: 'vector' })).map((hit) => hit.node_id).sort()).toEqual(['n0', 'n3']);
    await index.setTier(['n0'], 'recent');
    expect((await index.search({ query: 'q', vector: axis(0), k: 10, mode: 'vector', filters: { tiers: ['recent'] } })).map((hit) => hit.node_id)).toEqual([
      'n0',
    ]);
    expect(await index.stats()).toEqual([
      { table: tableNameForModel(vectorsOnly.modelId, dims), model: vectorsOnly.modelId, dimensions: dims, rows: 2, annIndexed: false },
    ]);
  });

  it('builds the ANN index once the table reaches the threshold and still finds exact matches', async () => {
    await index.close();
    index = createMemoryIndex({ dir: join(dir, 'index'), storage, embedder: () => Promise.resolve(vectorsOnly), annThreshold: 300 });
    const chunks: IndexChunk[] = [];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648 - 0.5;
    };
    for (let i = 0; i < 299; i += 1) chunks.push(chunk(`r${i}`, `row ${i}`, unit(Array.from({ length: dims }, random))));
    await index.upsertChunks(vectorsOnly.modelId, dims, chunks);
    await index.optimize();
    expect((await index.stats())[0]?.annIndexed).toBe(false);
    await index.upsertChunks(vectorsOnly.modelId, dims, [chunk('target', 'target row', axis(3))]);
    await index.optimize();
    expect((await index.stats())[0]).toMatchObject({ rows: 300, annIndexed: true });
    const hits = await index.search({ query: 'q', vector: axis(3), k: 1, mode: 'vector' });
    expect(hits[0]?.node_id).toBe('target');
  });

  it('returns nothing before anything was indexed', async () => {
    expect(await index.search({ query: 'anything', vector: axis(0) })).toEqual([]);
  });
});

describe('expandGraph', () => {
  it('expands k hops over typed edges', () => {
    storage.createNode({ kind: 'chat', id: 'c', props: {} });
    storage.createNode({ kind: 'message', id: 'm', chat_id: 'c', text: 'x', props: { role: 'user' } });
    storage.createNode({ kind: 'entity', id: 'e', title: 'E', props: { entity_type: 'X', normalized: 'e' } });
    storage.createNode({ kind: 'webpage', id: 'p', text: 'y', props: {} });
    storage.createEdge({ type: 'CONTAINS', from_id: 'c', to_id: 'm' });
    storage.createEdge({ type: 'MENTIONS', from_id: 'm', to_id: 'e' });
    storage.createEdge({ type: 'MENTIONS', from_id: 'p', to_id: 'e' });
    expect(
      expandGraph(storage, ['m'], { depth: 1 })
        .map((hit) => [hit.node.id, hit.depth])
        .sort(),
    ).toEqual([
      ['c', 1],
      ['e', 1],
    ]);
    expect(expandGraph(storage, ['m'], { depth: 2, types: ['MENTIONS'] }).map((hit) => [hit.node.id, hit.depth])).toEqual([
      ['e', 1],
      ['p', 2],
    ]);
    expect(expandGraph(storage, ['m'], { depth: 2, types: ['MENTIONS'], direction: 'out' }).map((hit) => hit.node.id)).toEqual(['e']);
  });
});
