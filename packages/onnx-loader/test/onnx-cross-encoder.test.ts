import { join } from 'node:path';
import { cosineSimilarity, createOnnxCrossEncoder, createOnnxTextEmbedder, rerankDocuments, type OnnxCrossEncoder } from '../src/index.js';
import { writeTinyCrossEncoderModel, writeTinyEmbedderModel, type TinyCrossEncoderFixture } from '../src/test-support/index.js';
import { createTemporaryFolder, row } from './temporary-folder.js';

let folder: { path: string; remove(): Promise<void> };
let fixture: TinyCrossEncoderFixture;
let crossEncoder: OnnxCrossEncoder;

beforeAll(async () => {
  folder = await createTemporaryFolder('cross-encoder');
  fixture = await writeTinyCrossEncoderModel(join(folder.path, 'tiny-reranker'));
  crossEncoder = await createOnnxCrossEncoder(fixture.folder, { threads: 1, modelId: 'tiny-reranker' });
});
afterAll(async () => {
  await crossEncoder.dispose();
  await folder.remove();
});

/** The fixture graph by hand: logit = mean_t tanh(E[id_t] + T[type_t]) · w + b. */
function handLogit(queryTokens: string[], documentTokens: string[]): number {
  const d = fixture.hiddenSize;
  const tokens = [['[CLS]', 0], ...queryTokens.map((t) => [t, 0]), ['[SEP]', 0], ...documentTokens.map((t) => [t, 1]), ['[SEP]', 1]] as [string, number][];
  const pooled = new Array<number>(d).fill(0);
  for (const [token, type] of tokens) {
    const word = row(fixture.wordEmbeddings, fixture.idOf(token), d);
    const typeRow = row(fixture.tokenTypeEmbeddings, type, d);
    for (let k = 0; k < d; k++) pooled[k] = (pooled[k] as number) + Math.tanh((word[k] as number) + (typeRow[k] as number)) / tokens.length;
  }
  return pooled.reduce((sum, v, k) => sum + v * (fixture.classifierWeights[k] as number), fixture.classifierBias);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe('createOnnxCrossEncoder', () => {
  it('scores each pair as sigmoid of the hand-computed logit, with pair token counts', async () => {
    const result = await crossEncoder.score('red cat', ['the cat', 'blue car', 'fish']);
    const expected = [handLogit(['red', 'cat'], ['the', 'cat']), handLogit(['red', 'cat'], ['blue', 'car']), handLogit(['red', 'cat'], ['fish'])];
    result.logits.forEach((logit, i) => expect(logit).toBeCloseTo(expected[i] as number, 5));
    result.scores.forEach((score, i) => expect(score).toBeCloseTo(sigmoid(expected[i] as number), 5));
    expect(result.tokenCounts).toEqual([7, 7, 6]);
  });

  it('truncates the longer side of a pair first to fit maxTokens', async () => {
    const short = await createOnnxCrossEncoder(fixture.folder, { threads: 1, maxTokens: 8 });
    const result = await short.score('cat', ['the big red car and the small green tree']);
    expect(result.tokenCounts).toEqual([8]);
    expect(result.logits[0]).toBeCloseTo(handLogit(['cat'], ['the', 'big', 'red', 'car']), 5);
    await short.dispose();
  });
});

describe('rerankDocuments', () => {
  const documents = ['the cat', 'blue car', 'fish', 'a dog walk', 'music and sport'];

  it('sorts documents by cross-encoder relevance, cuts to top_n and returns the texts', async () => {
    const response = await rerankDocuments({ kind: 'cross-encoder', model: crossEncoder }, { query: 'red cat', documents, top_n: 3, return_documents: true });
    const hand = documents.map((d, index) => ({ index, score: sigmoid(handLogit(['red', 'cat'], d.split(' '))) })).sort((a, b) => b.score - a.score);
    expect(response.method).toBe('cross-encoder');
    expect(response.model).toBe('tiny-reranker');
    expect(response.results.map((r) => r.index)).toEqual(hand.slice(0, 3).map((h) => h.index));
    response.results.forEach((r, i) => {
      expect(r.relevance_score).toBeCloseTo((hand[i] as { score: number }).score, 5);
      expect(r.document).toEqual({ text: documents[r.index] });
    });
    expect(response.usage.total_tokens).toBe(7 + 7 + 6 + 8 + 8);
  });

  it('leaves documents out when return_documents is false and accepts {text} documents', async () => {
    const response = await rerankDocuments(
      { kind: 'cross-encoder', model: crossEncoder },
      { query: 'cat', documents: [{ text: 'fish' }, 'dog'], return_documents: false },
    );
    expect(response.results).toHaveLength(2);
    for (const result of response.results) expect(result).not.toHaveProperty('document');
  });

  it('falls back to cosine similarity with an embedding model and says so', async () => {
    const embedderFixture = await writeTinyEmbedderModel(join(folder.path, 'embedder'));
    const embedder = await createOnnxTextEmbedder(embedderFixture.folder, { threads: 1 });
    const response = await rerankDocuments({ kind: 'embedding', model: embedder }, { query: 'red cat', documents, return_documents: false });
    const { vectors } = await embedder.embed(['red cat', ...documents]);
    const expected = documents
      .map((_, index) => ({ index, score: cosineSimilarity(vectors[0] as Float32Array, vectors[index + 1] as Float32Array) }))
      .sort((a, b) => b.score - a.score);
    expect(response.method).toBe('cosine-similarity');
    expect(response.results).toEqual(expected.map((e) => ({ index: e.index, relevance_score: e.score })));
    await embedder.dispose();
  });
});
