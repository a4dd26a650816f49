import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cosineSimilarity,
  createOnnxCrossEncoder,
  createOnnxTextEmbedder,
  decodeFloat32Base64,
  type OnnxCrossEncoder,
  type OnnxTextEmbedder,
} from '@tabagent/onnx-loader';
import { writeTinyCrossEncoderModel, writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createApiApp } from '@tabagent/api';
import OpenAI from 'openai';
import {
  ModelNotFoundError,
  createAppStateProvider,
  parseRouteRequest,
  type AppStateProvider,
  type CallContext,
  type RouteId,
  type RouteRequestInput,
  type RouteResponse,
} from '@tabagent/values';
import { createEmbeddingHandlers, type EmbeddingHandlerDeps, createNotBuiltHandlers } from '@tabagent/services';

const context: CallContext = { requestId: 'test', signal: new AbortController().signal, transport: 'in-process', caller: {} };

let dir: string;
let embedder: OnnxTextEmbedder;
let crossEncoder: OnnxCrossEncoder;
let provider: AppStateProvider;

function providerWith(deps: Partial<EmbeddingHandlerDeps> = {}): AppStateProvider {
  const handlers = createEmbeddingHandlers({
    resolveEmbedder: async (modelId) => {
      if (modelId === undefined || modelId === 'tiny-embedder') return embedder;
      throw new ModelNotFoundError(`No embedding model ${modelId}`);
    },
    resolveReranker: async (modelId) => (modelId === undefined || modelId === 'tiny-reranker' ? crossEncoder : null),
    listEmbeddingModels: async () => [
      { id: 'tiny-embedder', format: 'onnx', dimensions: 32, max_tokens: 128, pooling: 'mean', loaded: true, is_default: true },
    ],
    ...deps,
  });
  return createAppStateProvider({ ...createNotBuiltHandlers(() => ({ capability: 'other', detail: 'not in this test' })), ...handlers });
}

/** Validates the raw body as a transport would, then calls the provider. */
async function call<K extends RouteId>(id: K, body: RouteRequestInput<K>, on: AppStateProvider = provider): Promise<RouteResponse<K>> {
  return (await on.handle(id, parseRouteRequest(id, body), context)) as RouteResponse<K>;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tabagent-embedding-handlers-'));
  const embedderFixture = await writeTinyEmbedderModel(join(dir, 'tiny-embedder'));
  const rerankerFixture = await writeTinyCrossEncoderModel(join(dir, 'tiny-reranker'));
  embedder = await createOnnxTextEmbedder(embedderFixture.folder, { threads: 1 });
  crossEncoder = await createOnnxCrossEncoder(rerankerFixture.folder, { threads: 1 });
  provider = providerWith();
});
afterAll(async () => {
  await embedder.dispose();
  await crossEncoder.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('embedding handlers', () => {
  it('embeds with the default model in the OpenAI shape, as floats or base64', async () => {
    const floats = await call('embeddings', { input: ['hello world', 'cat'] });
    const { vectors } = await embedder.embed(['hello world', 'cat']);
    expect(floats).toEqual({
      object: 'list',
      model: 'tiny-embedder',
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: Array.from(v) })),
      usage: { prompt_tokens: 7, total_tokens: 7 },
    });
    const base64 = await call('embeddings', { input: 'cat', encoding_format: 'base64', dimensions: 16 });
    const decoded = decodeFloat32Base64(base64.data[0]?.embedding as string);
    expect(decoded).toHaveLength(16);
    expect(Math.hypot(...decoded)).toBeCloseTo(1, 6);
  });

  it('passes an unknown model id through as model_not_found', async () => {
    await expect(call('embeddings', { input: 'cat', model: 'nope' })).rejects.toMatchObject({ code: 'model_not_found' });
  });

  it('reranks with the cross-encoder, and with cosine similarity when the model is an embedding model', async () => {
    const documents = ['the cat', 'blue car', 'fish'];
    const crossEncoded = await call('rerank', { query: 'red cat', documents, top_k: 2 });
    const { scores } = await crossEncoder.score('red cat', documents);
    const order = scores.map((score, index) => ({ score, index })).sort((a, b) => b.score - a.score);
    expect(crossEncoded.method).toBe('cross-encoder');
    expect(crossEncoded.model).toBe('tiny-reranker');
    expect(crossEncoded.results).toEqual(order.slice(0, 2).map((o) => ({ index: o.index, relevance_score: o.score, document: { text: documents[o.index] } })));

    const cosine = await call('rerank', { model: 'tiny-embedder', query: 'red cat', documents, return_documents: false });
    expect(cosine.method).toBe('cosine-similarity');
    expect(cosine.model).toBe('tiny-embedder');
    expect(cosine.results).toHaveLength(3);
  });

  it('answers similarity with the chosen metric', async () => {
    const response = await call('similarity', { text1: 'red car', text2: 'blue car' });
    const { vectors } = await embedder.embed(['red car', 'blue car']);
    expect(response.metric).toBe('cosine');
    expect(response.similarity).toBeCloseTo(cosineSimilarity(vectors[0] as Float32Array, vectors[1] as Float32Array), 10);
  });

  it('searches sent documents, and says the memory capability is missing without them', async () => {
    const response = await call('semantic_search', { query: 'cat', documents: ['red car', 'cat', 'music'], top_k: 1 });
    expect(response.results).toEqual([{ index: 1, id: null, document: 'cat', score: expect.closeTo(1, 6) }]);
    await expect(call('semantic_search', { query: 'cat' })).rejects.toMatchObject({ code: 'not_implemented', details: { capability: 'memory' } });
  });

  it('hands semantic_search without documents to the store when one is wired', async () => {
    const withStore = providerWith({
      searchStore: async (request) => ({
        query: request.query,
        model: 'tiny-embedder',
        metric: request.metric,
        results: [{ index: null, id: 'm1', document: 'stored', score: 0.5 }],
        total_documents: 1,
      }),
    });
    const response = await call('semantic_search', { query: 'cat', k: 3 }, withStore);
    expect(response.results).toEqual([{ index: null, id: 'm1', document: 'stored', score: 0.5 }]);
  });

  it('evaluates, clusters and recommends on the fixture model', async () => {
    const evaluation = await call('embeddings.evaluate', { queries: ['cat', 'music'], documents: ['cat', 'music'] });
    expect([evaluation.mean_reciprocal_rank, evaluation.recall_at_1, evaluation.k]).toEqual([1, 1, 10]);

    const clusters = await call('cluster', { documents: ['cat', 'cat cat', 'red car', 'red car car'], n_clusters: 2 });
    expect(clusters.labels[0]).toBe(clusters.labels[1]);
    expect(clusters.labels[2]).toBe(clusters.labels[3]);
    expect(clusters.labels[0]).not.toBe(clusters.labels[2]);
    expect(clusters.silhouette_score).toBeGreaterThan(0);
    expect(await call('cluster', { texts: ['cat', 'cat cat', 'red car', 'red car car'], n_clusters: 2 })).toEqual(clusters);

    const recommendations = await call('recommend', { query: 'cat', items: ['red car', 'cat', 'music'], top_n: 1 });
    expect(recommendations.recommendations).toEqual([{ index: 1, text: 'cat', score: expect.closeTo(1, 6) }]);
  });

  it('lists embedding models with a total', async () => {
    expect(await call('embedding_models.list', {})).toEqual({
      models: [{ id: 'tiny-embedder', format: 'onnx', dimensions: 32, max_tokens: 128, pooling: 'mean', loaded: true, is_default: true }],
      total: 1,
    });
  });

  it('leaves the other routes to their own groups', async () => {
    await expect(provider.handle('health', {}, context)).rejects.toMatchObject({ code: 'not_implemented' });
  });
});

describe('the openai client against the HTTP transport', () => {
  let server: Server;
  let client: OpenAI;
  beforeAll(async () => {
    server = createApiApp(provider, { allowedOrigins: [] }).listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    client = new OpenAI({ baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('embeddings.create returns the same vectors as the embedder (the client asks for base64 and decodes it)', async () => {
    const response = await client.embeddings.create({ model: 'tiny-embedder', input: ['hello world', 'cat'] });
    const { vectors } = await embedder.embed(['hello world', 'cat']);
    expect(response.model).toBe('tiny-embedder');
    expect(response.usage).toEqual({ prompt_tokens: 7, total_tokens: 7 });
    expect(response.data.map((d) => d.index)).toEqual([0, 1]);
    response.data.forEach((d, i) => expect(d.embedding).toEqual(Array.from(vectors[i] as Float32Array)));
  });

  it('embeddings.create with dimensions and float encoding', async () => {
    const response = await client.embeddings.create({ model: 'tiny-embedder', input: 'cat', dimensions: 8, encoding_format: 'float' });
    expect(response.data[0]?.embedding).toHaveLength(8);
    expect(Math.hypot(...(response.data[0]?.embedding ?? []))).toBeCloseTo(1, 6);
  });
});
