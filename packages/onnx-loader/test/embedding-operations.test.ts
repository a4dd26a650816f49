import { join } from 'node:path';
import {
  clusterTexts,
  computeSimilarity,
  cosineSimilarity,
  createEmbeddings,
  createOnnxTextEmbedder,
  decodeFloat32Base64,
  dotProduct,
  euclideanDistance,
  evaluateEmbeddings,
  recommendCandidates,
  searchDocuments,
  silhouetteScore,
  type OnnxTextEmbedder,
} from '../src/index.js';
import { writeTinyEmbedderModel } from '../src/test-support/index.js';
import { createTemporaryFolder, normalized } from './temporary-folder.js';

let folder: { path: string; remove(): Promise<void> };
let embedder: OnnxTextEmbedder;

beforeAll(async () => {
  folder = await createTemporaryFolder('operations');
  const fixture = await writeTinyEmbedderModel(join(folder.path, 'tiny-embedder'));
  embedder = await createOnnxTextEmbedder(fixture.folder, { threads: 1, modelId: 'tiny-embedder' });
});
afterAll(async () => {
  await embedder.dispose();
  await folder.remove();
});

async function vectorsOf(texts: string[]): Promise<Float32Array[]> {
  return (await embedder.embed(texts)).vectors;
}

describe('createEmbeddings', () => {
  it('returns the OpenAI shape with real token usage', async () => {
    const response = await createEmbeddings(embedder, { input: ['hello world', 'the cats'], encoding_format: 'float' });
    const [a, b] = await vectorsOf(['hello world', 'the cats']);
    expect(response).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: Array.from(a as Float32Array) },
        { object: 'embedding', index: 1, embedding: Array.from(b as Float32Array) },
      ],
      model: 'tiny-embedder',
      usage: { prompt_tokens: 9, total_tokens: 9 },
    });
  });

  it('truncates to dimensions and renormalises', async () => {
    const response = await createEmbeddings(embedder, { input: 'hello world', encoding_format: 'float', dimensions: 8 });
    const [full] = await vectorsOf(['hello world']);
    const embedding = response.data[0]?.embedding as number[];
    expect(embedding).toHaveLength(8);
    normalized(Array.from((full as Float32Array).slice(0, 8))).forEach((v, i) => expect(embedding[i]).toBeCloseTo(v, 6));
  });

  it('encodes base64 as little-endian float32 that decodes to the float vector', async () => {
    const asFloat = await createEmbeddings(embedder, { input: 'paris', encoding_format: 'float' });
    const asBase64 = await createEmbeddings(embedder, { input: 'paris', encoding_format: 'base64' });
    const encoded = asBase64.data[0]?.embedding as string;
    expect(typeof encoded).toBe('string');
    expect(Buffer.from(encoded, 'base64').length).toBe(32 * 4);
    expect(Array.from(decodeFloat32Base64(encoded))).toEqual(asFloat.data[0]?.embedding);
    expect(Buffer.from(encoded, 'base64').readFloatLE(4)).toBe((asFloat.data[0]?.embedding as number[])[1]);
  });

  it('refuses more dimensions than the model has', async () => {
    await expect(createEmbeddings(embedder, { input: 'x', encoding_format: 'float', dimensions: 33 })).rejects.toMatchObject({
      code: 'invalid_request',
      message: "dimensions 33 is larger than the model's 32",
    });
  });
});

describe('computeSimilarity', () => {
  it('gives cosine, dot product and euclidean (as 1 / (1 + distance)) of the two embeddings', async () => {
    const [a, b] = (await vectorsOf(['red car', 'blue car'])) as [Float32Array, Float32Array];
    const request = { text1: 'red car', text2: 'blue car' };
    expect((await computeSimilarity(embedder, { ...request, metric: 'cosine' })).similarity).toBeCloseTo(cosineSimilarity(a, b), 10);
    expect((await computeSimilarity(embedder, { ...request, metric: 'dot_product' })).similarity).toBeCloseTo(dotProduct(a, b), 10);
    expect(await computeSimilarity(embedder, { ...request, metric: 'euclidean' })).toEqual({
      similarity: 1 / (1 + euclideanDistance(a, b)),
      metric: 'euclidean',
      model: 'tiny-embedder',
    });
    expect((await computeSimilarity(embedder, { text1: 'cat', text2: 'cat', metric: 'cosine' })).similarity).toBeCloseTo(1, 6);
  });
});

describe('searchDocuments', () => {
  it('ranks sent documents by similarity, keeps k and applies the threshold', async () => {
    const documents = ['the cat', 'a red car', 'cat', 'music and sport', 'the old house'];
    const [query, ...vectors] = await vectorsOf(['cat', ...documents]);
    const expected = vectors.map((v, index) => ({ index, score: cosineSimilarity(query as Float32Array, v) })).sort((x, y) => y.score - x.score);
    const response = await searchDocuments(embedder, { query: 'cat', documents, k: 3, metric: 'cosine' });
    expect(response.results).toEqual(expected.slice(0, 3).map((e) => ({ index: e.index, id: null, document: documents[e.index], score: e.score })));
    expect(response.results[0]?.document).toBe('cat');
    expect(response.total_documents).toBe(5);
    const threshold = (expected[1] as { score: number }).score;
    const filtered = await searchDocuments(embedder, { query: 'cat', documents, k: 5, metric: 'cosine', score_threshold: threshold });
    expect(filtered.results.map((r) => r.index)).toEqual(expected.slice(0, 2).map((e) => e.index));
  });
});

describe('evaluateEmbeddings', () => {
  it('computes MRR, recall@1 and recall@k from the ranks of the relevant documents', async () => {
    const queries = ['cat', 'red car', 'music'];
    const documents = ['the cat', 'a red car', 'music and sport', 'tree'];
    const vectors = await vectorsOf([...queries, ...documents]);
    const ranks = queries.map((_, i) => {
      const scores = documents.map((_, j) => cosineSimilarity(vectors[i] as Float32Array, vectors[queries.length + j] as Float32Array));
      return 1 + scores.filter((s) => s > (scores[i] as number)).length;
    });
    const response = await evaluateEmbeddings(embedder, { queries, documents, k: 2 });
    expect(response.mean_reciprocal_rank).toBeCloseTo(ranks.reduce((a, r) => a + 1 / r, 0) / 3, 10);
    expect(response.recall_at_1).toBeCloseTo(ranks.filter((r) => r === 1).length / 3, 10);
    expect(response.recall_at_k).toBeCloseTo(ranks.filter((r) => r <= 2).length / 3, 10);
    expect([response.query_count, response.document_count, response.k, response.model]).toEqual([3, 4, 2, 'tiny-embedder']);
  });

  it('gives a perfect score when each query is its own document', async () => {
    const texts = ['cat', 'red car', 'music and sport'];
    const response = await evaluateEmbeddings(embedder, { queries: texts, documents: texts, relevant: [0, 1, 2], k: 1 });
    expect([response.mean_reciprocal_rank, response.recall_at_1, response.recall_at_k]).toEqual([1, 1, 1]);
    expect(response.mean_relevant_similarity).toBeCloseTo(1, 6);
  });

  it('refuses a relevant index outside the documents', async () => {
    await expect(evaluateEmbeddings(embedder, { queries: ['a'], documents: ['b'], relevant: [3], k: 1 })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('clusterTexts', () => {
  const texts = ['cat', 'cat cat', 'the cat', 'red car', 'red car car', 'a red car', 'music', 'music music'];

  it('is deterministic for a seed and reports the silhouette of its labels', async () => {
    const first = await clusterTexts(embedder, { texts, n_clusters: 3, seed: 1, max_iterations: 100 });
    const again = await clusterTexts(embedder, { texts, n_clusters: 3, seed: 1, max_iterations: 100 });
    expect(again).toEqual(first);
    expect(new Set(first.labels).size).toBe(3);
    expect(first.silhouette_score).toBeCloseTo(silhouetteScore(await vectorsOf(texts), first.labels) as number, 10);
    expect(first.labels[0]).toBe(first.labels[1]);
    expect(first.labels[3]).toBe(first.labels[4]);
  });

  it('reports a null silhouette for one cluster and refuses more clusters than texts', async () => {
    const one = await clusterTexts(embedder, { texts: ['a', 'b', 'c'], n_clusters: 1, seed: 42, max_iterations: 10 });
    expect(one.labels).toEqual([0, 0, 0]);
    expect(one.silhouette_score).toBeNull();
    await expect(clusterTexts(embedder, { texts: ['a', 'b'], n_clusters: 3, seed: 42, max_iterations: 10 })).rejects.toMatchObject({ code: 'invalid_request' });
  });
});

describe('recommendCandidates', () => {
  const candidates = ['cat', 'the cat', 'cat cat', 'red car', 'music'];

  it('orders by similarity without diversity', async () => {
    const [query, ...vectors] = await vectorsOf(['cat', ...candidates]);
    const expected = vectors
      .map((v, index) => ({ index, score: cosineSimilarity(query as Float32Array, v) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);
    const response = await recommendCandidates(embedder, { query: 'cat', candidates, top_n: 3, diversity: 0 });
    expect(response.recommendations).toEqual(expected.map((e) => ({ index: e.index, text: candidates[e.index], score: e.score })));
  });

  it('with diversity, picks by maximal marginal relevance', async () => {
    const [query, ...vectors] = await vectorsOf(['cat', ...candidates]);
    const lambda = 0.7;
    const picked: number[] = [];
    while (picked.length < 3) {
      let best = -1;
      let bestScore = -Infinity;
      vectors.forEach((v, i) => {
        if (picked.includes(i)) return;
        const redundancy = picked.length === 0 ? 0 : Math.max(...picked.map((p) => cosineSimilarity(v, vectors[p] as Float32Array)));
        const score = (1 - lambda) * cosineSimilarity(query as Float32Array, v) - lambda * redundancy;
        if (score > bestScore) [best, bestScore] = [i, score];
      });
      picked.push(best);
    }
    const response = await recommendCandidates(embedder, { query: 'cat', candidates, top_n: 3, diversity: lambda });
    expect(response.recommendations.map((r) => r.index)).toEqual(picked);
    const plain = await recommendCandidates(embedder, { query: 'cat', candidates, top_n: 3, diversity: 0 });
    expect(response.recommendations.map((r) => r.index)).not.toEqual(plain.recommendations.map((r) => r.index));
  });
});
