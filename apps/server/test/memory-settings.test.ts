import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createOnnxCrossEncoder, type OnnxCrossEncoder } from '@tabagent/onnx-loader';
import { writeTinyCrossEncoderModel, writeTinyEmbedderModel, writeTinyTokenClassifierModel } from '@tabagent/onnx-loader/test-support';
import { createStorage } from '@tabagent/storage';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';
import { waitUntilIndexed } from './support/memory-status.js';

// Each memory setting, set over the API, read back, and used by the pipeline that reads it: the
// entity model by the weaver, the rerank model by rag.query, the embedding model by the index.
// Two models of each kind, so the test can tell which one was used.
let root: string;
let server: RunningServer;
let base: string;
const crossEncoders: Record<string, OnnxCrossEncoder> = {};

async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}${url}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function start(): Promise<void> {
  const config = parseServeArguments(['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off'], {});
  server = await startServer(config, { logger: pino({ level: 'silent' }) });
  base = server.httpUrl as string;
}

/** Waits until the weaver has processed everything saved so far. */
const indexed = (): Promise<void> => waitUntilIndexed(base);

/** Entity nodes in the database, read over a second connection (WAL). */
function entities(): string[] {
  const storage = createStorage({ path: path.join(root, 'tabagent.db') });
  try {
    return [...storage.iterateNodes(['entity'])].map((node) => `${node.title ?? ''}:${node.kind === 'entity' ? node.props.entity_type : node.kind}`).sort();
  } finally {
    storage.close();
  }
}

async function rerankScores(): Promise<number[]> {
  const response = await call('POST', '/v1/rag/query', { query: 'paris', k: 3, rerank: true });
  expect(response.status).toBe(200);
  return (response.body['results'] as { score: number }[]).map((result) => result.score);
}

async function expectedScores(model: string): Promise<number[]> {
  const response = await call('POST', '/v1/rag/query', { query: 'paris', k: 3 });
  const texts = (response.body['results'] as { content: string }[]).map((result) => result.content);
  return [...(await (crossEncoders[model] as OnnxCrossEncoder).score('paris', texts)).scores].sort((a, b) => b - a);
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'tabagent-settings-'));
  const models = path.join(root, 'models');
  mkdirSync(models, { recursive: true });
  await writeTinyEmbedderModel(path.join(models, 'emb-a'));
  await writeTinyEmbedderModel(path.join(models, 'emb-b'), { seed: 5 });
  await writeTinyTokenClassifierModel(path.join(models, 'ner-a'), { tokenLabels: { alice: 'B-PER' } });
  await writeTinyTokenClassifierModel(path.join(models, 'ner-b'), { tokenLabels: { paris: 'B-LOC' } });
  for (const [name, seed] of [
    ['rr-a', 1],
    ['rr-b', 2],
  ] as const) {
    await writeTinyCrossEncoderModel(path.join(models, name), { seed });
    crossEncoders[name] = await createOnnxCrossEncoder(path.join(models, name), { modelId: name, threads: 1 });
  }
  await start();
});

afterAll(async () => {
  await server.close();
  for (const encoder of Object.values(crossEncoders)) await encoder.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('memory settings: set, get, use, for each setting and for null', () => {
  it('uses the first registered model of each kind while nothing is set', async () => {
    expect((await call('GET', '/v1/memory/settings')).body).toEqual({ embedding_model: 'emb-a', entity_model: null, rerank_model: null });
    await call('POST', '/v1/sessions/s1/messages', { message: { role: 'user', content: 'alice flew to paris' } });
    await indexed();
    expect(entities()).toEqual(['alice:PER']);
    expect(await rerankScores()).toEqual(await expectedScores('rr-a'));
  });

  it('uses the models named over the API, and keeps them across a restart', async () => {
    const set = await call('POST', '/v1/memory/settings', { entity_model: 'ner-b', rerank_model: 'rr-b' });
    expect(set).toEqual({ status: 200, body: { embedding_model: 'emb-a', entity_model: 'ner-b', rerank_model: 'rr-b' } });
    await server.close();
    await start();
    expect((await call('GET', '/v1/memory/settings')).body).toEqual({ embedding_model: 'emb-a', entity_model: 'ner-b', rerank_model: 'rr-b' });
    await call('POST', '/v1/sessions/s1/messages', { message: { role: 'user', content: 'paris again with alice' } });
    await indexed();
    // ner-b finds places only: the new message adds paris, and no second alice.
    expect(entities()).toEqual(['alice:PER', 'paris:LOC']);
    expect(await rerankScores()).toEqual(await expectedScores('rr-b'));
  });

  it('goes back to the defaults when a setting is set to null', async () => {
    const cleared = await call('POST', '/v1/memory/settings', { entity_model: null, rerank_model: null });
    expect(cleared).toEqual({ status: 200, body: { embedding_model: 'emb-a', entity_model: null, rerank_model: null } });
    expect(await rerankScores()).toEqual(await expectedScores('rr-a'));
  });

  it('switches the embedding model, re-embeds, and goes back to the default with null', async () => {
    expect((await call('POST', '/v1/memory/settings', { embedding_model: 'emb-b' })).body).toMatchObject({ embedding_model: 'emb-b' });
    await indexed();
    const status = (await call('GET', '/v1/memory/status')).body as { embedding_model: string; models: { model: string; indexed_chunks: number }[] };
    expect(status.embedding_model).toBe('emb-b');
    expect(status.models.find((table) => table.model === 'emb-b')?.indexed_chunks).toBe(2);
    expect((await call('POST', '/v1/memory/settings', { embedding_model: null })).body).toEqual({
      embedding_model: 'emb-a',
      entity_model: null,
      rerank_model: null,
    });
    const missing = await call('POST', '/v1/memory/settings', { embedding_model: 'no-such-model' });
    expect([missing.status, missing.body['code']]).toEqual([404, 'model_not_found']);
    expect((await call('GET', '/v1/memory/settings')).body).toEqual({ embedding_model: 'emb-a', entity_model: null, rerank_model: null });
  });
});
