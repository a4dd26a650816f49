import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOnnxCrossEncoder, createOnnxTextEmbedder, type OnnxTextEmbedder } from '@tabagent/onnx-loader';
import { writeTinyCrossEncoderModel, writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createMemoryIndex, type MemoryIndex } from '@tabagent/indexing';
import { createStorage, type Storage } from '@tabagent/storage';
import {
  createAppStateProvider,
  isChunkStream,
  parseRouteRequest,
  routeIds,
  type AppStateProvider,
  type CallContext,
  type RouteId,
  type RouteResponse,
} from '@tabagent/values';
import { createWeaver, type Weaver } from '@tabagent/weaver';
import { createMemoryHandlers, createMemoryRetrieval, type MemoryRetrieval, createNotBuiltHandlers } from '@tabagent/services';

const context: CallContext = { requestId: 't', signal: new AbortController().signal, transport: 'in-process', caller: {} };

let dir: string;
let embedder: OnnxTextEmbedder;
let storage: Storage;
let index: MemoryIndex;
let weaver: Weaver;
let provider: AppStateProvider;
let retrieval: MemoryRetrieval;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'memory-handlers-'));
  await writeTinyEmbedderModel(join(dir, 'model'));
  embedder = await createOnnxTextEmbedder(join(dir, 'model'), { modelId: 'tiny-embedder', threads: 1 });
});
afterAll(async () => {
  await embedder.dispose();
  rmSync(dir, { recursive: true, force: true });
});

let caseNumber = 0;
beforeEach(() => {
  caseNumber += 1;
  const dataDir = join(dir, `data-${caseNumber}`);
  storage = createStorage({ path: join(dataDir, 'tabagent.db') });
  const resolver = (modelId?: string) =>
    modelId === undefined || modelId === 'tiny-embedder' ? Promise.resolve(embedder) : Promise.reject(new Error(`no model ${modelId}`));
  index = createMemoryIndex({ dir: join(dataDir, 'index'), storage, embedder: () => weaver.embedder() });
  weaver = createWeaver({ storage, index, embedders: resolver, pollIntervalMs: 20 });
  const notBuilt = createNotBuiltHandlers((id) => ({ capability: id, detail: 'not in this test' }));
  provider = createAppStateProvider({ ...notBuilt, ...createMemoryHandlers({ storage, index, weaver, limits: { messageChars: 200, documentChars: 500 } }) });
  retrieval = createMemoryRetrieval({ index, weaver });
});
afterEach(async () => {
  await weaver.stop();
  await index.close();
  storage.close();
});

/** Validates like a transport (defaults, aliases), then dispatches. */
async function call<K extends RouteId>(id: K, raw: unknown): Promise<RouteResponse<K>> {
  return (await provider.handle(id, parseRouteRequest(id, raw), context)) as RouteResponse<K>;
}

describe('memory handlers', () => {
  it('serves every memory route (nothing left answering 501)', async () => {
    const served = Object.keys(createMemoryHandlers({ storage, index, weaver })).sort();
    expect(served).toEqual(routeIds.filter((id) => /^(sessions|conversations|sync|documents|memory)\./.test(id) || id === 'rag.query').sort());
    expect(served).toHaveLength(17);
    await expect(call('memory.status', {})).resolves.toMatchObject({ queue_depth: 0 });
  });

  it('lists saved documents newest first without their text, pages them, and gives one whole; a message id is no document', async () => {
    const first = await call('documents.ingest', { kind: 'document', title: 'first', text: 'one' });
    const second = await call('documents.ingest', { kind: 'webpage', url: 'https://example.org/two', title: 'second', text: 'two' });
    const page = await call('documents.list', { limit: '1' });
    expect(page.documents.map((document) => [document.id, document.kind, document.title])).toEqual([[second.document_id, 'webpage', 'second']]);
    expect(page.documents[0]).not.toHaveProperty('text');
    const rest = await call('documents.list', { limit: '5', cursor: page.next_cursor ?? '' });
    expect(rest.documents.map((document) => document.id)).toContain(first.document_id);
    expect(await call('documents.get', { document_id: first.document_id })).toMatchObject({
      document: { id: first.document_id, kind: 'document', title: 'first', text: 'one', url: null },
    });
    const saved = await call('sessions.save_message', { session_id: 'docs-s', message: { id: 'docs-m', role: 'user', content: 'hi' } });
    await expect(call('documents.get', { document_id: saved.message_id })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('saves messages to a session and pages its history', async () => {
    for (let i = 0; i < 5; i += 1) {
      const saved = await call('sessions.save_message', {
        session_id: 's1',
        message: { id: `m${i}`, role: i % 2 === 0 ? 'user' : 'assistant', content: `hello ${i}`, created_at: `2026-01-01T00:00:0${i}Z` },
      });
      expect(saved).toEqual({ status: 'saved', session_id: 's1', message_id: `m${i}` });
    }
    const first = await call('sessions.history', { session_id: 's1', limit: '2' });
    expect(first.messages.map((message) => [message.id, message.role, message.content])).toEqual([
      ['m0', 'user', 'hello 0'],
      ['m1', 'assistant', 'hello 1'],
    ]);
    expect(first.messages[0]?.created_at).toBe('2026-01-01T00:00:00.000Z');
    const rest = await call('sessions.history', { session_id: 's1', limit: 10, cursor: first.next_cursor });
    expect(rest.messages.map((message) => message.id)).toEqual(['m2', 'm3', 'm4']);
    expect(rest.next_cursor).toBeNull();
    await call('sessions.save_message', { session_id: 's1', message: { id: 'm0', role: 'user', content: 'edited' } });
    expect((await call('sessions.history', { session_id: 's1' })).messages[0]?.content).toBe('edited');
    expect(await call('sessions.history', { session_id: 'unknown' })).toEqual({ session_id: 'unknown', messages: [], count: 0, next_cursor: null });
  });

  it('creates, lists, gets, adds to, searches and deletes conversations', async () => {
    const created = await call('conversations.create', { conversation_id: 'c1', title: 'Cooking pasta', topic: 'italian food' });
    expect(created.conversation).toMatchObject({
      id: 'c1',
      title: 'Cooking pasta',
      topic: 'italian food',
      user_id: 'default',
      message_count: 0,
      tier: 'active',
    });
    await call('conversations.create', { id: 'c2', title: 'Travel', user_id: 'u2' });
    const added = await call('conversations.add_messages', {
      conversation_id: 'c2',
      messages: [
        { role: 'user', content: 'Flights to Rome' },
        { role: 'assistant', content: 'Try the morning train' },
      ],
    });
    expect(added.count).toBe(2);
    const listed = await call('conversations.list', { limit: 1 });
    expect(listed.conversations.map((c) => [c.id, c.message_count])).toEqual([['c2', 2]]);
    expect((await call('conversations.list', { cursor: listed.next_cursor })).conversations.map((c) => c.id)).toEqual(['c1']);
    expect((await call('conversations.list', { user_id: 'u2' })).conversations.map((c) => c.id)).toEqual(['c2']);
    const got = await call('conversations.get', { conversation_id: 'c2' });
    expect(got.messages.map((m) => m.content)).toEqual(['Flights to Rome', 'Try the morning train']);
    expect((await call('conversations.search', { query: 'rome' })).conversations.map((c) => c.id)).toEqual(['c2']);
    expect((await call('conversations.search', { query: 'italian' })).conversations.map((c) => c.id)).toEqual(['c1']);
    expect(await call('conversations.delete', { conversation_id: 'c2' })).toEqual({ status: 'deleted', conversation_id: 'c2', deleted_messages: 2 });
    await expect(call('conversations.get', { conversation_id: 'c2' })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('keeps messages in the order they were saved: 200 in one call, 200 in 200 concurrent calls, and after a sync round trip', async () => {
    await call('conversations.create', { id: 'order', title: 'Order' });
    const batch = Array.from({ length: 200 }, (_, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `batch ${i}` }));
    await call('conversations.add_messages', { conversation_id: 'order', messages: batch });
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        call('conversations.add_messages', { conversation_id: 'order', messages: [{ role: 'user', content: `concurrent ${i}` }] }),
      ),
    );
    const expected = [...batch.map((message) => message.content), ...Array.from({ length: 200 }, (_, i) => `concurrent ${i}`)];
    const got = await call('conversations.get', { conversation_id: 'order' });
    expect(got.messages.map((message) => message.content)).toEqual(expected);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: RouteResponse<'sessions.history'> = await call('sessions.history', {
        session_id: 'order',
        limit: 64,
        ...(cursor === null ? {} : { cursor }),
      });
      paged.push(...page.messages.map((message) => message.content));
      cursor = page.next_cursor;
    } while (cursor !== null);
    expect(paged).toEqual(expected);

    // Pull everything, push it into a fresh store: the same order there.
    const pulled = await call('sync.pull', {});
    const otherDir = join(dir, `sync-target-${caseNumber}`);
    const otherStorage = createStorage({ path: join(otherDir, 'tabagent.db') });
    const otherIndex = createMemoryIndex({ dir: join(otherDir, 'index'), storage: otherStorage, embedder: () => Promise.resolve(embedder) });
    const otherWeaver = createWeaver({ storage: otherStorage, index: otherIndex, embedders: () => Promise.resolve(embedder) });
    const other = createAppStateProvider({
      ...createNotBuiltHandlers((id) => ({ capability: id, detail: 'x' })),
      ...createMemoryHandlers({ storage: otherStorage, index: otherIndex, weaver: otherWeaver }),
    });
    const callOther = async <K extends RouteId>(id: K, raw: unknown) => (await other.handle(id, parseRouteRequest(id, raw), context)) as RouteResponse<K>;
    await callOther('sync.push', {
      conversations: pulled.conversations.map((conversation) => ({
        id: conversation.id,
        title: conversation.title,
        created_at: conversation.created_at,
        updated_at: conversation.updated_at,
      })),
      messages: pulled.messages.map((message) => ({
        id: message.id,
        chat_id: message.chat_id,
        role: message.role,
        content: message.content,
        created_at: message.created_at,
        updated_at: message.updated_at,
      })),
    });
    expect((await callOther('conversations.get', { conversation_id: 'order' })).messages.map((message) => message.content)).toEqual(expected);
    await otherIndex.close();
    otherStorage.close();
  });

  it('answers bad input with clear errors', async () => {
    await expect(call('conversations.add_messages', { conversation_id: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      code: 'not_found',
      message: 'Conversation nope not found',
    });
    await expect(call('conversations.delete', { conversation_id: 'nope' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(call('sessions.save_message', { session_id: 's', message: { role: 'user', content: 'x'.repeat(201) } })).rejects.toMatchObject({
      code: 'payload_too_large',
    });
    await expect(call('documents.ingest', { url: 'https://x/', text: 'y'.repeat(501) })).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(call('documents.ingest', { text: 'no url' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(call('rag.query', { query: 'x', filters: { since: 'last tuesday' } })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(call('rag.query', { query: 'x', filters: { kinds: ['robot'] } })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(
      call('conversations.create', { id: 'dup', title: 't' }).then(() => call('conversations.create', { id: 'dup', title: 't' })),
    ).rejects.toMatchObject({ code: 'conflict' });
    await expect(call('sync.pull', { since: 'not a time' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(call('conversations.list', { cursor: 'bogus' })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(call('memory.settings.set', { embedding_model: 'missing-model' })).rejects.toMatchObject({ code: 'model_not_found' });
  });

  it('syncs with last write wins and pulls changes since a time', async () => {
    const pushed = await call('sync.push', {
      conversations: [{ id: 'c1', title: 'From extension', updated_at: '2026-01-01T00:00:00Z' }],
      messages: [{ id: 'm1', chat_id: 'c1', role: 'user', content: 'synced', updated_at: '2026-01-01T00:00:01Z' }],
    });
    expect(pushed).toMatchObject({ status: 'success', conversations: { synced: 1, skipped: 0 }, messages: { synced: 1, skipped: 0 }, total_synced: 2 });
    const stale = await call('sync.push', { conversations: [{ id: 'c1', title: 'Stale', updated_at: '2025-01-01T00:00:00Z' }] });
    expect(stale.conversations).toEqual({ synced: 0, skipped: 1 });
    await expect(call('sync.push', { messages: [{ id: 'm9', chat_id: 'ghost', role: 'user', content: 'x', updated_at: '1' }] })).rejects.toMatchObject({
      code: 'not_found',
    });
    const pulled = await call('sync.pull', { since: '2025-12-31T00:00:00Z' });
    expect(pulled.conversations.map((c) => [c.id, c.title])).toEqual([['c1', 'From extension']]);
    expect(pulled.messages.map((m) => [m.id, m.content, m.updated_at])).toEqual([['m1', 'synced', '2026-01-01T00:00:01.000Z']]);
    expect((await call('sync.pull', { since: String(Date.parse('2026-06-01T00:00:00Z')) })).counts).toEqual({ conversations: 0, messages: 0 });
  });

  it('ingests a page, indexes it in the background and answers rag.query, semantic search and memory context', async () => {
    weaver.start();
    const queued = await call('documents.ingest', {
      url: 'https://garden.test/tomatoes',
      title: 'Tomato guide',
      text: 'Water tomatoes every morning. Tomatoes love sun.',
    });
    expect(queued).toMatchObject({ status: 'queued', kind: 'webpage' });
    await call('sessions.save_message', { session_id: 's1', message: { role: 'user', content: 'What should I cook tonight?' } });
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 10_000;
      const check = (): void => {
        if (storage.listOutbox('done').filter((item) => item.payload.kind.startsWith('index-')).length >= 2) resolve();
        else if (Date.now() > deadline) reject(new Error('weaver did not finish'));
        else setTimeout(check, 20);
      };
      check();
    });
    const rag = await call('rag.query', { query: 'tomatoes sun', top_k: 2 });
    expect(rag.results[0]).toMatchObject({
      source: { kind: 'webpage', id: queued.document_id, title: 'Tomato guide', url: 'https://garden.test/tomatoes', chat_id: null },
    });
    expect(rag.query_time_ms).toBeGreaterThanOrEqual(0);
    const onlyChat = await call('rag.query', { query: 'cook tonight', filters: { chat_id: 's1' } });
    expect(onlyChat.results.map((r) => r.source.kind)).toEqual(['message']);
    const semantic = await retrieval.searchStoreForSemanticSearch(parseRouteRequest('semantic_search', { query: 'What should I cook tonight?', k: 1 }));
    expect(semantic).toMatchObject({
      model: 'tiny-embedder',
      metric: 'cosine',
      total_documents: 2,
      results: [{ index: null, document: 'What should I cook tonight?' }],
    });
    expect(semantic.results[0]?.score).toBeCloseTo(1, 4);
    const memory = await retrieval.retrieveMemoryContext('tomatoes', { k: 1 });
    expect(memory.sources).toEqual([
      { id: queued.document_id, kind: 'webpage', title: 'Tomato guide', url: 'https://garden.test/tomatoes', score: expect.any(Number) },
    ]);
    expect(memory.context).toContain('[1] (webpage · Tomato guide · https://garden.test/tomatoes) Tomato guide');
    expect(await retrieval.retrieveMemoryContext('tomatoes', false)).toEqual({ context: '', sources: [] });
    // Searchable came first; the follow-up enrichment may still be queued until the drain ends.
    await weaver.drain();
    const status = await call('memory.status', {});
    expect(status).toMatchObject({
      queue_depth: 0,
      failed: 0,
      embedding_model: 'tiny-embedder',
      models: [{ model: 'tiny-embedder', indexed_chunks: 2 }],
      counts: { chat: 1, message: 1, webpage: 1 },
    });
  });

  it('reads and writes memory settings', async () => {
    expect(await call('memory.settings.get', {})).toEqual({ embedding_model: 'tiny-embedder', entity_model: null, rerank_model: null });
    expect(await call('memory.settings.set', { rerank_model: 'tiny-reranker' })).toEqual({
      embedding_model: 'tiny-embedder',
      entity_model: null,
      rerank_model: 'tiny-reranker',
    });
    expect(await call('memory.settings.get', {})).toMatchObject({ rerank_model: 'tiny-reranker' });
  });

  it('reranks rag.query results with the ONNX cross-encoder', async () => {
    await writeTinyCrossEncoderModel(join(dir, 'reranker'));
    const crossEncoder = await createOnnxCrossEncoder(join(dir, 'reranker'), { modelId: 'tiny-reranker', threads: 1 });
    const reranked = createMemoryIndex({
      dir: index.dir,
      storage,
      embedder: () => weaver.embedder(),
      rerank: async (query, documents) => (await crossEncoder.score(query, documents)).scores,
    });
    const rerankProvider = createAppStateProvider({
      ...createNotBuiltHandlers((id) => ({ capability: id, detail: 'x' })),
      ...createMemoryHandlers({ storage, index: reranked, weaver }),
    });
    await expect(call('rag.query', { query: 'x', rerank: true })).rejects.toMatchObject({ code: 'invalid_request' });
    for (const text of ['the cat sat on the mat', 'dogs run in the park', 'a cat and a dog', 'fish swim'])
      await call('documents.ingest', { kind: 'document', text });
    await weaver.drain();
    const response = await rerankProvider.handle('rag.query', parseRouteRequest('rag.query', { query: 'cat', k: 3, rerank: true }), context);
    if (isChunkStream(response)) throw new Error('rag.query streamed');
    const expected = (
      await crossEncoder.score(
        'cat',
        response.results.map((result) => result.content),
      )
    ).scores;
    expect(response.results.map((result) => result.score)).toEqual(expected);
    expect([...expected].sort((a, b) => b - a)).toEqual(expected);
    expect(response.count).toBe(3);
    await reranked.close();
    await crossEncoder.dispose();
  });

  it('finds what was saved but not indexed yet by its words, says so, and the same item once indexed', async () => {
    await weaver.stop();
    const content = 'The zeppelin tickets are in the blue drawer.';
    const saved = await call('sessions.save_message', { session_id: 'tail', message: { role: 'user', content } });
    expect(storage.outboxStats().pending).toBeGreaterThan(0);
    const byWords = await call('rag.query', { query: 'zeppelin drawer', k: 5, mode: 'text' });
    expect(byWords.results.map((result) => [result.source.id, result.content, result.indexed])).toEqual([[saved.message_id, content, false]]);
    // Hybrid: the index's results and the tail fused; the unindexed item is among them.
    const hybrid = await call('rag.query', { query: 'zeppelin drawer', k: 10 });
    expect(hybrid.results.filter((result) => !result.indexed).map((result) => result.source.id)).toEqual([saved.message_id]);
    // Filters apply to the tail too.
    expect((await call('rag.query', { query: 'zeppelin', mode: 'text', filters: { chat_id: 's1' } })).results).toEqual([]);
    expect((await call('rag.query', { query: 'zeppelin', mode: 'text', filters: { kinds: ['webpage'] } })).results).toEqual([]);
    weaver.start();
    await weaver.drain();
    const indexed = await call('rag.query', { query: 'zeppelin drawer', k: 5, mode: 'text' });
    expect(indexed.results.map((result) => [result.source.id, result.content, result.indexed])).toEqual([[saved.message_id, content, true]]);
  });
});
