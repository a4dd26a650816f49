import { join } from 'node:path';
import { rename, mkdir } from 'node:fs/promises';
import type { Logger } from '@tabagent/values';
import { createOnnxTextEmbedder } from '../src/index.js';
import { writeTinyEmbedderModel, type TinyEmbedderFixture } from '../src/test-support/index.js';
import { createTemporaryFolder, expectVectorClose, normalized, row } from './temporary-folder.js';

let folder: { path: string; remove(): Promise<void> };
let fixture: TinyEmbedderFixture;
const threads = 1;

beforeAll(async () => {
  folder = await createTemporaryFolder('embedder');
  fixture = await writeTinyEmbedderModel(join(folder.path, 'tiny-embedder'));
});
afterAll(() => folder.remove());

/** mean over tokens of tanh(E[id]), L2-normalised: what the graph plus mean pooling should give. */
function handMeanPooled(ids: number[], transform: (x: number) => number = Math.tanh): number[] {
  const d = fixture.hiddenSize;
  const sum = new Array<number>(d).fill(0);
  for (const id of ids) row(fixture.wordEmbeddings, id, d).forEach((v, k) => (sum[k] = (sum[k] as number) + transform(v)));
  return normalized(sum.map((v) => v / ids.length));
}

function ids(...tokens: string[]): number[] {
  return tokens.map((t) => fixture.idOf(t));
}

describe('createOnnxTextEmbedder', () => {
  it('mean-pools last_hidden_state exactly as a hand computation from the fixture weights', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads });
    const { vectors, tokenCounts } = await embedder.embed(['Hello, World! The cats searching.']);
    expect(tokenCounts).toEqual([12]);
    expect(embedder.usesGraphPooling).toBe(false);
    expect(embedder.pooling).toBe('mean');
    expectVectorClose(
      vectors[0] as Float32Array,
      handMeanPooled(ids('[CLS]', 'hello', ',', 'world', '!', 'the', 'cat', '##s', 'search', '##ing', '.', '[SEP]')),
    );
    await embedder.dispose();
  });

  it('reports the model id, dimensions and max tokens', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads, modelId: 'tiny' });
    expect([embedder.modelId, embedder.dimensions, embedder.maxTokens, embedder.modelFile]).toEqual(['tiny', 32, 128, 'model.onnx']);
    await embedder.dispose();
  });

  it('takes the [CLS] token when 1_Pooling/config.json says cls', async () => {
    const cls = await writeTinyEmbedderModel(join(folder.path, 'cls-embedder'), { pooling: 'cls' });
    const embedder = await createOnnxTextEmbedder(cls.folder, { threads });
    const { vectors } = await embedder.embed(['hello world']);
    expect(embedder.pooling).toBe('cls');
    expectVectorClose(vectors[0] as Float32Array, normalized(row(cls.wordEmbeddings, cls.idOf('[CLS]'), cls.hiddenSize).map(Math.tanh)));
    await embedder.dispose();
  });

  it("uses the graph's sentence_embedding output when it has one", async () => {
    const pooled = await writeTinyEmbedderModel(join(folder.path, 'pooled-embedder'), { pooledOutput: true });
    const embedder = await createOnnxTextEmbedder(pooled.folder, { threads });
    const { vectors } = await embedder.embed(['hello world']);
    expect(embedder.usesGraphPooling).toBe(true);
    // The fixture's pooled output averages the raw (pre-tanh) embeddings.
    expectVectorClose(
      vectors[0] as Float32Array,
      handMeanPooled(ids('[CLS]', 'hello', 'world', '[SEP]'), (x) => x),
    );
    await embedder.dispose();
  });

  it('feeds token_type_ids only to a graph that takes them', async () => {
    const typed = await writeTinyEmbedderModel(join(folder.path, 'typed-embedder'), { tokenTypeInput: true });
    const embedder = await createOnnxTextEmbedder(typed.folder, { threads });
    const { vectors } = await embedder.embed(['cat']);
    const d = typed.hiddenSize;
    const typeZero = row(typed.tokenTypeEmbeddings as Float32Array, 0, d);
    const sum = new Array<number>(d).fill(0);
    for (const id of [typed.idOf('[CLS]'), typed.idOf('cat'), typed.idOf('[SEP]')]) {
      row(typed.wordEmbeddings, id, d).forEach((v, k) => (sum[k] = (sum[k] as number) + Math.tanh(v + (typeZero[k] as number))));
    }
    expectVectorClose(vectors[0] as Float32Array, normalized(sum.map((v) => v / 3)));
    await embedder.dispose();
  });

  it('L2-normalises every vector', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads });
    const { vectors } = await embedder.embed(['a', 'the red car is fast', 'x y z']);
    for (const vector of vectors) expect(Math.hypot(...vector)).toBeCloseTo(1, 6);
    await embedder.dispose();
  });

  it('gives a sequence the same vector alone and padded in a batch with a longer one', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads });
    const alone = await embedder.embed(['cat']);
    const padded = await embedder.embed(['the green tree by the river and the old house at night', 'cat']);
    expect(Array.from(padded.vectors[1] as Float32Array)).toEqual(Array.from(alone.vectors[0] as Float32Array));
    await embedder.dispose();
  });

  it('gives the same vectors in one batch as one at a time, in input order', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads });
    const texts = ['the cat', 'a very long sentence about machine learning and memory', 'dog', 'paris is a city in france'];
    const batched = await embedder.embed(texts);
    for (const [i, text] of texts.entries()) {
      const single = await embedder.embed([text]);
      expect(Array.from(batched.vectors[i] as Float32Array)).toEqual(Array.from(single.vectors[0] as Float32Array));
    }
    await embedder.dispose();
  });

  it('merges concurrent requests into one session run and gives the same vectors', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads, batchWindowMs: 50 });
    const texts = ['cat', 'dog walk', 'the red car', 'hello world', 'music'];
    const concurrent = await Promise.all(texts.map((text) => embedder.embed([text])));
    expect(embedder.stats().sessionRuns).toBe(1);
    const together = await embedder.embed(texts);
    expect(embedder.stats().sessionRuns).toBe(2);
    concurrent.forEach((result, i) => expect(Array.from(result.vectors[0] as Float32Array)).toEqual(Array.from(together.vectors[i] as Float32Array)));
    expect(embedder.stats().textsEmbedded).toBe(10);
    await embedder.dispose();
  });

  it('bounds a micro-batch by maxBatchSize', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads, batchWindowMs: 50, maxBatchSize: 2 });
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((text) => embedder.embed([text])));
    expect(embedder.stats().sessionRuns).toBe(3);
    await embedder.embed(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(embedder.stats().sessionRuns).toBe(7);
    await embedder.dispose();
  });

  it('truncates inputs to maxTokens and counts the tokens actually used', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads, maxTokens: 6 });
    const { vectors, tokenCounts } = await embedder.embed(['the cat and the dog and the bird', 'hello world']);
    expect(tokenCounts).toEqual([6, 4]);
    expectVectorClose(vectors[0] as Float32Array, handMeanPooled(ids('[CLS]', 'the', 'cat', 'and', 'the', '[SEP]')));
    await embedder.dispose();
  });

  it('falls back to CPU when an unavailable execution provider is asked for first, and says so', async () => {
    const warnings: unknown[] = [];
    const logger: Logger = { debug: () => undefined, info: () => undefined, warn: (obj) => void warnings.push(obj), error: () => undefined };
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads, executionProviders: ['cuda', 'cpu'], logger });
    expect(embedder.executionProvider).toBe('cpu');
    expect(warnings).toEqual([expect.objectContaining({ provider: 'cuda' })]);
    const { vectors } = await embedder.embed(['cat']);
    expectVectorClose(vectors[0] as Float32Array, handMeanPooled(ids('[CLS]', 'cat', '[SEP]')));
    await embedder.dispose();
  });

  it('prefers model.onnx, and finds a quantized file under onnx/ when it is the only one', async () => {
    const both = await createOnnxTextEmbedder(fixture.folder, { threads });
    expect(both.modelFile).toBe('model.onnx');
    await both.dispose();
    const quantized = await writeTinyEmbedderModel(join(folder.path, 'quantized-only'), { modelFiles: ['onnx/model_quantized.onnx', 'onnx/model_fp16.onnx'] });
    const embedder = await createOnnxTextEmbedder(quantized.folder, { threads });
    expect(embedder.modelFile).toBe('onnx/model_quantized.onnx');
    await embedder.dispose();
    const other = join(folder.path, 'other-name');
    await writeTinyEmbedderModel(other, { modelFiles: ['onnx/model_q4.onnx', 'onnx/model_bnb4.onnx', 'onnx/model_o2.onnx'] });
    const fallback = await createOnnxTextEmbedder(other, { threads });
    expect(fallback.modelFile).toBe('onnx/model_o2.onnx');
    await fallback.dispose();
  });

  it('loads the file named by modelFile', async () => {
    const named = join(folder.path, 'named');
    await writeTinyEmbedderModel(named, { modelFiles: ['custom/encoder.onnx'] });
    await mkdir(join(named, 'spare'));
    await rename(join(named, 'custom', 'encoder.onnx'), join(named, 'spare', 'encoder.onnx'));
    const embedder = await createOnnxTextEmbedder(named, { threads, modelFile: 'spare/encoder.onnx' });
    expect(embedder.modelFile).toBe('spare/encoder.onnx');
    await embedder.dispose();
  });

  it('rejects an already aborted request with a cancelled error and runs nothing', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads });
    const controller = new AbortController();
    controller.abort();
    await expect(embedder.embed(['cat'], { signal: controller.signal })).rejects.toMatchObject({ code: 'cancelled' });
    expect(embedder.stats().sessionRuns).toBe(0);
    await embedder.dispose();
  });

  it('drops a request aborted while it waits for its batch, and still serves the others', async () => {
    const embedder = await createOnnxTextEmbedder(fixture.folder, { threads, batchWindowMs: 30 });
    const controller = new AbortController();
    const aborted = embedder.embed(['cat'], { signal: controller.signal });
    const kept = embedder.embed(['dog']);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'cancelled' });
    const { vectors } = await kept;
    expectVectorClose(vectors[0] as Float32Array, handMeanPooled(ids('[CLS]', 'dog', '[SEP]')));
    expect(embedder.stats()).toEqual({ sessionRuns: 1, textsEmbedded: 1 });
    await embedder.dispose();
  });
});
