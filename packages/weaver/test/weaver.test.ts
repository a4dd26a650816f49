import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createMemoryIndex } from '@tabagent/indexing';
import { ModelNotFoundError, type TextEmbedder, type TextEmbedderResolver, type TextEmbeddingResult } from '@tabagent/values';
import { entityIdFor } from '../src/memory-weaver.js';
import type { WeaverEvents } from '../src/weaver-types.js';
import { createHarness, indexItems, waitFor, type Harness } from './weaver-harness.js';

let h: Harness;
afterEach(async () => {
  await h.close();
});

function saveMessage(id: string, text: string, chatId = 'c1'): void {
  if (h.storage.getNode(chatId) === undefined) h.storage.createNode({ kind: 'chat', id: chatId, title: 'Chat', props: {} });
  h.storage.createNode({ kind: 'message', id, chat_id: chatId, text, props: { role: 'user' } });
  h.weaver.notifySaved(id, chatId);
}

/** A resolver whose embedders run `embed` in place of the real one's (which it may call). */
function withEmbed(
  embed: (real: TextEmbedder, texts: readonly string[], options?: { signal?: AbortSignal }) => Promise<TextEmbeddingResult>,
): (resolver: TextEmbedderResolver) => TextEmbedderResolver {
  return (resolver) => async (modelId) => {
    const real = await resolver(modelId);
    return { modelId: real.modelId, dimensions: real.dimensions, maxTokens: real.maxTokens, embed: (texts, options) => embed(real, texts, options) };
  };
}

describe('weaver', () => {
  it('makes a saved message searchable by meaning and by words, emitting events in order', async () => {
    h = await createHarness();
    const events: string[] = [];
    for (const name of ['message-saved', 'index-start', 'index-end'] as const) h.weaver.on(name, () => events.push(name));
    h.weaver.start();
    saveMessage('m1', 'The quick brown fox jumps over the lazy dog.');
    saveMessage('m2', 'Paris is the capital of France.');
    await waitFor(() => indexItems(h.storage, 'done') === 2);
    const byVector = await h.index.search({ query: 'Paris is the capital of France.', k: 1, mode: 'vector' });
    expect(byVector.map((hit) => [hit.node_id, hit.kind, hit.chat_id])).toEqual([['m2', 'message', 'c1']]);
    expect(byVector[0]?.score).toBeCloseTo(1, 4);
    const byWords = await h.index.search({ query: 'fox', k: 5, mode: 'text' });
    expect(byWords.map((hit) => hit.node_id)).toEqual(['m1']);
    expect(events.slice(0, 2)).toEqual(['message-saved', 'message-saved']);
    expect(events.filter((name) => name === 'index-end')).toHaveLength(2);
    expect(
      h.storage
        .neighbours('c1', { types: ['CONTAINS'], direction: 'out' })
        .map((n) => n.node.id)
        .sort(),
    ).toEqual(['m1', 'm2']);
    // Searchable first; the follow-up enrichment item may still be queued until the drain ends.
    await h.weaver.drain();
    const status = await h.weaver.status();
    expect(status).toEqual({
      queue_depth: 0,
      in_progress: 0,
      failed: 0,
      last_error: null,
      embedding_model: 'tiny-a',
      models: [{ model: 'tiny-a', indexed_chunks: 2 }],
      counts: { chat: 1, message: 2 },
      // Two items in the last minute, over at least a second.
      unindexed: 0,
      items_per_second: 2,
      oldest_pending_age_ms: null,
    });
  });

  it('indexes a burst as batches: one embedding pass and one index write per batch, and waits while interactive work runs', async () => {
    let busy = true;
    let busyChecks = 0;
    const isBusy = (): boolean => {
      busyChecks += 1;
      return busy;
    };
    h = await createHarness({ batchSize: 64, minBatchSize: 16, isBusy, busyPollMs: 10 });
    const calls: number[] = [];
    const embedder = await h.weaver.embedder();
    const original = embedder.embed.bind(embedder);
    embedder.embed = async (texts) => {
      calls.push(texts.length);
      return original(texts);
    };
    h.weaver.start();
    for (let index = 0; index < 100; index++) saveMessage(`b${index}`, `note number ${index} about apples`, 'burst');
    // The weaver has looked and found the server busy several times, not just had little time to run.
    await waitFor(() => busyChecks >= 5);
    // Busy: nothing was taken from the outbox.
    expect(h.storage.outboxStats().pending).toBe(100);
    expect(calls).toEqual([]);
    busy = false;
    await waitFor(() => indexItems(h.storage, 'done') === 100);
    // Adaptive: the drain starts at the smallest batch and doubles per full batch, up to the largest.
    expect(calls).toEqual([16, 32, 52]);
    expect((await h.index.stats())[0]?.rows).toBe(100);
  });

  it('links de-duplicated entities, similar messages and writes a summary every N messages', async () => {
    const summarized: string[][] = [];
    h = await createHarness({
      extractEntities: (text) => Promise.resolve((text.match(/\b[A-Z][a-z]+\b/g) ?? []).map((word) => ({ text: word, label: 'misc' }))),
      summarize: (texts) => {
        summarized.push([...texts]);
        return Promise.resolve(`summary of ${texts.length}`);
      },
      summaryEvery: 3,
      similarityThreshold: 0.99,
    });
    saveMessage('m1', 'Alice met Bob.');
    saveMessage('m2', 'Alice met Bob.');
    saveMessage('m3', 'bob likes tea');
    await h.weaver.drain();
    await h.weaver.drain();
    const alice = entityIdFor('misc', 'Alice');
    expect(h.storage.getNode(alice)).toMatchObject({ kind: 'entity', title: 'Alice', props: { entity_type: 'MISC', normalized: 'alice' } });
    expect(
      h.storage
        .neighbours(alice, { types: ['MENTIONS'], direction: 'in' })
        .map((n) => n.node.id)
        .sort(),
    ).toEqual(['m1', 'm2']);
    expect(h.storage.countByKind().entity).toBe(2);
    expect(h.storage.neighbours('m2', { types: ['SIMILAR_TO'], direction: 'out' }).map((n) => n.node.id)).toEqual(['m1']);
    expect(summarized).toEqual([['Alice met Bob.', 'Alice met Bob.', 'bob likes tea']]);
    const summary = h.storage.getNode('summary_c1_1');
    expect(summary).toMatchObject({ kind: 'summary', chat_id: 'c1', text: 'summary of 3', props: { message_ids: ['m1', 'm2', 'm3'] } });
    expect(h.storage.neighbours('summary_c1_1', { types: ['SUMMARIZES'] }).map((n) => n.node.id)).toEqual(['c1']);
    expect((await h.index.search({ query: 'summary', k: 5, mode: 'text' })).map((hit) => hit.kind)).toEqual(['summary']);
  });

  it('takes one batch every maxWaitMs while interactive work never stops, so indexing keeps up', async () => {
    const batches: number[] = [];
    h = await createHarness({ isBusy: () => true, busyPollMs: 10, maxWaitMs: 300, maxSimilarLinks: 0 });
    const embedder = await h.weaver.embedder();
    const original = embedder.embed.bind(embedder);
    embedder.embed = async (texts) => {
      batches.push(performance.now());
      return original(texts);
    };
    const started = performance.now();
    h.weaver.start();
    for (let index = 0; index < 40; index++) saveMessage(`s${index}`, `steady note ${index}`);
    await waitFor(() => indexItems(h.storage, 'done') === 40, 5000);
    // Under load the batches are spaced by the guaranteed share, the first one a share after the start.
    expect(batches.length).toBeGreaterThanOrEqual(1);
    expect((batches[0] as number) - started).toBeGreaterThanOrEqual(290);
    for (let index = 1; index < batches.length; index++) expect((batches[index] as number) - (batches[index - 1] as number)).toBeGreaterThanOrEqual(290);
  });

  it('enriches in units that commit as they go: a failing node is split off and dead-lettered alone, its neighbours get their entities', async () => {
    const calls = new Map<string, number>();
    h = await createHarness({
      enrichUnit: 3,
      maxAttempts: 2,
      extractEntities: (text) => {
        calls.set(text, (calls.get(text) ?? 0) + 1);
        if (text.includes('Broken')) return Promise.reject(new Error('tokenizer choked'));
        return Promise.resolve((text.match(/\b[A-Z][a-z]+\b/g) ?? []).map((word) => ({ text: word, label: 'misc' })));
      },
    });
    const texts = ['Alice one', 'Bob two', 'Broken three', 'Carol four', 'Dave five', 'Erin six', 'Frank seven'];
    texts.forEach((text, index) => saveMessage(`u${index}`, text));
    await h.weaver.drain();
    await waitFor(async () => {
      await h.weaver.drain();
      return h.storage.outboxStats().pending + h.storage.outboxStats().in_progress === 0;
    });
    // Every other node has its entity, extracted once: no unit was redone.
    for (const name of ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank']) {
      expect(h.storage.neighbours(entityIdFor('misc', name), { types: ['MENTIONS'], direction: 'in' })).toHaveLength(1);
    }
    expect([...calls.entries()].filter(([text]) => !text.includes('Broken')).every(([, count]) => count === 1)).toBe(true);
    // The failing node: once in its unit, then alone until dead.
    expect(calls.get('Broken three')).toBe(3);
    const dead = h.storage.listOutbox('dead');
    expect(dead.map((item) => item.payload)).toEqual([{ kind: 'enrich', node_ids: ['u2'] }]);
    expect(dead[0]?.last_error).toBe('tokenizer choked');
    // Units of three: the first item (all seven) and the two it left, plus the split-off node's own.
    const done = h.storage.listOutbox('done').filter((item) => item.payload.kind === 'enrich');
    expect(done.map((item) => (item.payload as { node_ids: string[] }).node_ids.length)).toEqual([7, 4, 1]);
  });

  it('a summary gives way to interactive work: its LLM call is aborted, the item goes back to pending uncounted, and it runs once idle', async () => {
    let busy = false;
    const calls: AbortSignal[] = [];
    let finish: ((text: string) => void) | undefined;
    h = await createHarness({
      isBusy: () => busy,
      busyPollMs: 10,
      summaryEvery: 3,
      summarize: (_texts, { signal }) => {
        calls.push(signal);
        return new Promise<string>((resolve, reject) => {
          finish = resolve;
          signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        });
      },
    });
    h.weaver.start();
    for (const id of ['m1', 'm2', 'm3']) saveMessage(id, `message ${id}`);
    await waitFor(() => calls.length === 1);
    busy = true;
    await waitFor(() => calls[0]?.aborted === true);
    await waitFor(() => h.storage.listOutbox('pending').some((item) => item.payload.kind === 'summarize'));
    const released = h.storage.listOutbox('pending').find((item) => item.payload.kind === 'summarize');
    expect(released).toMatchObject({ attempts: 0, last_error: null });
    expect(h.storage.getNode('summary_c1_1')).toBeUndefined();
    busy = false;
    await waitFor(() => calls.length === 2);
    finish?.('summary of three');
    await waitFor(() => h.storage.getNode('summary_c1_1') !== undefined);
    expect(h.storage.getNode('summary_c1_1')).toMatchObject({ kind: 'summary', text: 'summary of three', props: { message_ids: ['m1', 'm2', 'm3'] } });
    expect(h.storage.outboxStats().dead).toBe(0);
  });

  it('stop() during a summary stores nothing: the stopped generation resolves with its partial text, which is not a summary', async () => {
    let started = false;
    h = await createHarness({
      summaryEvery: 3,
      // node-llama-cpp resolves a stopped generation with what it had written so far.
      summarize: (_texts, { signal }) =>
        new Promise<string>((resolve) => {
          started = true;
          signal.addEventListener('abort', () => resolve('a half-writ'), { once: true });
        }),
    });
    h.weaver.start();
    for (const id of ['m1', 'm2', 'm3']) saveMessage(id, `message ${id}`);
    await waitFor(() => started);
    await h.weaver.stop();
    expect(h.storage.getNode('summary_c1_1')).toBeUndefined();
    expect(h.storage.listOutbox('pending').filter((item) => item.payload.kind === 'summarize')).toEqual([
      expect.objectContaining({ attempts: 0, last_error: null }),
    ]);
  });

  it('a node deleted while its batch is embedded is skipped: the rest of the batch completes at once and nothing fails', async () => {
    let release: (() => void) | undefined;
    let embedding = false;
    h = await createHarness({
      maxSimilarLinks: 0,
      wrapResolver: withEmbed(async (real, texts, options) => {
        embedding = true;
        await new Promise<void>((resolve) => (release = resolve));
        return real.embed(texts, options);
      }),
    });
    saveMessage('keep-1', 'a message that stays');
    saveMessage('gone', 'a message deleted mid-batch', 'c2');
    saveMessage('keep-2', 'another message that stays');
    const failed: WeaverEvents['item-failed'][] = [];
    h.weaver.on('item-failed', (event) => failed.push(event));
    h.weaver.start();
    await waitFor(() => embedding);
    // The chat goes with its message: neither the message nor its CONTAINS edge can be written.
    h.storage.deleteNode('c2');
    release?.();
    await waitFor(() => indexItems(h.storage, 'done') === 3);
    expect(failed).toEqual([]);
    // Nothing left claimed (the chat's delete-index item may be in hand for a moment; a batch
    // that had failed would hold its claim for the 60 s lease).
    await waitFor(() => h.storage.outboxStats().in_progress === 0);
    expect((await h.index.search({ query: 'stays', k: 5, mode: 'text' })).map((hit) => hit.node_id).sort()).toEqual(['keep-1', 'keep-2']);
  });

  it('one item whose embedding fails does not fail its batch: the others are indexed, it alone is retried', async () => {
    h = await createHarness({
      maxAttempts: 2,
      wrapResolver: withEmbed((real, texts, options) =>
        texts.some((text) => text.includes('poison')) ? Promise.reject(new Error('cannot embed poison')) : real.embed(texts, options),
      ),
    });
    saveMessage('good-1', 'first good message');
    saveMessage('bad', 'a poison message');
    saveMessage('good-2', 'second good message');
    h.weaver.start();
    await waitFor(() => h.storage.outboxStats().dead === 1);
    expect(h.storage.listOutbox('dead')).toEqual([
      expect.objectContaining({ attempts: 2, last_error: 'cannot embed poison', payload: { kind: 'index-message', node_id: 'bad' } }),
    ]);
    expect(
      h.storage
        .listOutbox('done')
        .flatMap((item) => (item.payload.kind === 'index-message' ? [item.payload.node_id] : []))
        .sort(),
    ).toEqual(['good-1', 'good-2']);
  });

  it('stop() with a backlog returns after the item in hand, puts claimed items back to pending, and start() resumes', async () => {
    h = await createHarness({ batchSize: 8 });
    h.storage.createNode({ kind: 'chat', id: 'c1', title: 'Chat', props: {} });
    h.storage.transaction(() => {
      for (let i = 0; i < 60; i += 1)
        h.storage.createNode({ kind: 'message', id: `m${i}`, chat_id: 'c1', text: `backlog message ${i}`, props: { role: 'user' } });
    });
    let started = 0;
    h.weaver.on('index-start', () => (started += 1));
    h.weaver.start();
    await waitFor(() => started >= 3);
    await h.weaver.stop();
    const stopped = h.storage.outboxStats();
    expect(stopped.in_progress).toBe(0);
    expect(indexItems(h.storage, 'pending')).toBeGreaterThan(0);
    expect(indexItems(h.storage, 'done') + indexItems(h.storage, 'pending')).toBe(60);
    expect(stopped.dead).toBe(0);
    // Nothing was counted as a failed attempt.
    expect(h.storage.listOutbox('pending').every((item) => item.attempts === 0)).toBe(true);
    h.weaver.start();
    await waitFor(() => indexItems(h.storage, 'done') === 60, 60_000);
  }, 90_000);

  it('retries with backoff and succeeds', async () => {
    let failures = 2;
    h = await createHarness({
      wrapResolver: (resolver: TextEmbedderResolver) => (modelId) => (failures-- > 0 ? Promise.reject(new Error('embedder warming up')) : resolver(modelId)),
    });
    const failed: WeaverEvents['item-failed'][] = [];
    h.weaver.on('item-failed', (event) => failed.push(event));
    h.weaver.start();
    saveMessage('m1', 'retry me');
    await waitFor(() => indexItems(h.storage, 'done') === 1);
    expect(failed.map((event) => [event.item.attempts, event.error, event.dead])).toEqual([
      [1, 'embedder warming up', false],
      [2, 'embedder warming up', false],
    ]);
    expect((await h.index.search({ query: 'retry', k: 1, mode: 'text' }))[0]?.node_id).toBe('m1');
  });

  it('dead-letters an item after maxAttempts with its error', async () => {
    h = await createHarness({ maxAttempts: 3, wrapResolver: () => () => Promise.reject(new Error('no embedding model')) });
    h.weaver.start();
    saveMessage('m1', 'never indexed');
    await waitFor(() => h.storage.outboxStats().dead === 1);
    expect(h.storage.listOutbox('dead')).toEqual([
      expect.objectContaining({ attempts: 3, last_error: 'no embedding model', payload: { kind: 'index-message', node_id: 'm1' } }),
    ]);
    const status = await h.weaver.status();
    expect(status).toMatchObject({ failed: 1, last_error: 'no embedding model', queue_depth: 0 });
  });

  it('keeps items waiting, never dead, while no embedding model is registered', async () => {
    h = await createHarness({ maxAttempts: 1, wrapResolver: () => () => Promise.reject(new ModelNotFoundError('No embedding model is registered')) });
    saveMessage('m1', 'waits for a model');
    await h.weaver.drain();
    expect(h.storage.outboxStats().dead).toBe(0);
    expect(h.storage.listOutbox('dead')).toEqual([]);
    expect((await h.weaver.status()).last_error).toBe('No embedding model is registered');
  });

  it('removes index entries when a chat is deleted', async () => {
    h = await createHarness();
    saveMessage('m1', 'delete me soon');
    saveMessage('k1', 'keep me around', 'c2');
    await h.weaver.drain();
    expect((await h.index.stats())[0]?.rows).toBe(2);
    h.storage.deleteNode('c1');
    await h.weaver.drain();
    expect((await h.index.search({ query: 'delete me soon', k: 5, mode: 'hybrid' })).map((hit) => hit.node_id)).toEqual(['k1']);
  });

  it('re-embeds everything in the background when the embedding model changes', async () => {
    h = await createHarness();
    saveMessage('m1', 'first message');
    saveMessage('m2', 'second message');
    await h.weaver.drain();
    await h.weaver.setEmbeddingModel('tiny-b');
    expect(await h.weaver.embeddingModelId()).toBe('tiny-b');
    await h.weaver.drain();
    const stats = await h.index.stats();
    expect(stats.map((table) => [table.model, table.rows]).sort()).toEqual([
      ['tiny-a', 2],
      ['tiny-b', 2],
    ]);
    const hits = await h.index.search({ query: 'second message', k: 1, mode: 'vector' });
    expect(hits[0]?.node_id).toBe('m2');
    await expect(h.weaver.setEmbeddingModel('missing')).rejects.toThrow('unknown model missing');
  });

  it('rebuild() from storage after deleting index/ gives identical search results', async () => {
    h = await createHarness();
    const texts = [
      'Gardening in spring needs patience.',
      'Tomatoes want sun and water.',
      'The stock market fell today.',
      'Bread rises with yeast and time.',
      'Roses bloom in June.',
    ];
    texts.forEach((text, i) => saveMessage(`m${i}`, text, i % 2 === 0 ? 'c1' : 'c2'));
    h.storage.createNode({
      kind: 'webpage',
      id: 'p1',
      url: 'https://garden.test/',
      title: 'Garden guide',
      text: 'Water tomatoes in the morning. Prune roses in March.',
      props: { captured_at: 1 },
    });
    await h.weaver.drain();
    const queries = [
      { query: 'tomatoes sun', mode: 'hybrid' as const, k: 4 },
      { query: 'roses', mode: 'text' as const, k: 3 },
      { query: 'Bread rises with yeast and time.', mode: 'vector' as const, k: 3 },
      { query: 'water', mode: 'hybrid' as const, k: 5, filters: { chat_id: 'c2' } },
    ];
    const before = await Promise.all(queries.map((query) => h.index.search(query)));
    await h.index.close();
    rmSync(join(h.dir, 'index'), { recursive: true, force: true });
    const fresh = createMemoryIndex({ dir: join(h.dir, 'index'), storage: h.storage, embedder: () => h.weaver.embedder() });
    expect(await fresh.search({ query: 'tomatoes', k: 3 })).toEqual([]);
    expect(await fresh.rebuild()).toEqual({ nodes: 6, chunks: 6 });
    const after = await Promise.all(queries.map((query) => fresh.search(query)));
    expect(after).toEqual(before);
    expect(before[0]?.length).toBeGreaterThan(0);
    await fresh.close();
  });
});

describe('weaver maintenance', () => {
  it('re-tiers aged nodes into the index and prunes old done items', async () => {
    let clock = 1_700_000_000_000;
    h = await createHarness({ now: () => clock, keepDoneMs: 1000 });
    saveMessage('m1', 'an old memory');
    await h.weaver.drain();
    expect((await h.index.search({ query: 'old', k: 1, mode: 'text' }))[0]?.tier).toBe('active');
    clock += 8 * 86_400_000;
    // Pruned: the message's index item and the enrichment item it queued.
    expect(h.weaver.maintain()).toEqual({ retiered: 2, pruned: 2 });
    await h.weaver.drain();
    const hit = (await h.index.search({ query: 'old', k: 1, mode: 'text', filters: { tiers: ['recent'] } }))[0];
    expect(hit?.node_id).toBe('m1');
    expect(h.storage.getNode('m1')?.tier).toBe('recent');
  });
});

describe('openMemoryStore', () => {
  it('opens storage, index and weaver in one data directory and honours the configured model', async () => {
    h = await createHarness();
    const { openMemoryStore } = await import('../src/open-memory-store.js');
    const dataDir = join(h.dir, 'store');
    const store = await openMemoryStore({ dataDir, embedders: h.resolver, embeddingModel: 'tiny-b', pollIntervalMs: 10 });
    store.storage.createNode({ kind: 'webpage', id: 'p1', url: 'https://a.test/', text: 'Quiet lakes at dawn.', props: {} });
    await store.weaver.drain();
    expect(await store.weaver.embeddingModelId()).toBe('tiny-b');
    expect((await store.index.stats()).map((table) => [table.model, table.rows])).toEqual([['tiny-b', 1]]);
    expect((await store.index.search({ query: 'Quiet lakes at dawn.', k: 1, mode: 'vector' }))[0]?.node_id).toBe('p1');
    await store.close();
  });
});
