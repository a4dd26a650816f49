import { createHash } from 'node:crypto';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import type { MemoryIndex } from '@tabagent/indexing';
import type { OutboxItem, OutboxKind, OutboxPayload, Storage } from '@tabagent/storage';
import { CancelledError, indexableNodeKinds, ModelNotFoundError, TabAgentError, type MemoryNode, type TextEmbedder } from '@tabagent/values';
import { TypedEventEmitter } from './typed-event-emitter.js';
import type { Weaver, WeaverEvents, WeaverOptions, WeaverStatus } from './weaver-types.js';

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads `signal.aborted` afresh (TypeScript keeps a property narrowed across awaits in a loop). */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

type ExtractedEntityLike = Awaited<ReturnType<NonNullable<WeaverOptions['extractEntities']>>>[number];

/** A background step gave way to interactive work; its item is released, not failed. */
class YieldedError extends Error {
  constructor() {
    super('Gave way to interactive work');
    this.name = 'YieldedError';
  }
}

/** Outbox kinds that keep queue order with indexing; enrichment and summaries come after them. */
const primaryKinds: readonly OutboxKind[] = ['index-message', 'index-document', 'delete-index', 'update-tier', 'reembed-all'];

function isIndexItem(item: OutboxItem): boolean {
  return item.payload.kind === 'index-message' || item.payload.kind === 'index-document';
}

/** Deterministic entity id so the same entity found twice (or by a retried step) is one node. */
export function entityIdFor(label: string, text: string): string {
  const normalized = `${label.toUpperCase()}:${text.trim().toLowerCase().replace(/\s+/g, ' ')}`;
  return `entity_${createHash('sha256').update(normalized).digest('hex').slice(0, 24)}`;
}

/** `createWeaver` implementation. */
export class MemoryWeaver implements Weaver {
  private readonly storage: Storage;
  private readonly index: MemoryIndex;
  private readonly options: WeaverOptions;
  private readonly events = new TypedEventEmitter<WeaverEvents>();
  private readonly now: () => number;
  private running = false;
  /** Aborted by stop(): the drain releases what it claimed but did not process, and returns. */
  private stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: AbortController = new AbortController();
  private indexedSinceOptimize = false;
  private draining: Promise<number> | undefined;
  private lastMaintenance = Number.NEGATIVE_INFINITY;
  /** When the drain's last batch ended: the guaranteed share is counted from it. */
  private lastBatchEndedAt = 0;

  constructor(options: WeaverOptions) {
    this.options = options;
    this.storage = options.storage;
    this.index = options.index;
    this.now = options.now ?? Date.now;
  }

  on<K extends keyof WeaverEvents>(event: K, listener: (payload: WeaverEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  once<K extends keyof WeaverEvents>(event: K): Promise<WeaverEvents[K]> {
    return this.events.once(event);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.stopping.signal.aborted) this.stopping = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    this.wake.abort();
    await this.loop;
    await this.draining;
    this.loop = undefined;
  }

  /** True once stop() was called (a method: TypeScript would keep a property narrowed across awaits). */
  private isStopped(): boolean {
    return this.stopping.signal.aborted;
  }

  notify(): void {
    this.wake.abort();
  }

  notifySaved(nodeId: string, chatId: string | null): void {
    this.events.emit('message-saved', { node_id: nodeId, chat_id: chatId });
    this.notify();
  }

  drain(): Promise<number> {
    if (this.isStopped()) return Promise.resolve(0);
    this.draining ??= this.drainOnce(this.stopping.signal).finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  /** Re-tiers nodes by age (which queues index tier updates) and prunes old done outbox items. */
  maintain(): { retiered: number; pruned: number } {
    this.lastMaintenance = this.now();
    return { retiered: this.storage.updateTiers(), pruned: this.storage.pruneOutbox(this.options.keepDoneMs ?? 7 * 86_400_000) };
  }

  /** The maintenance of `maintain()` between batches: outbox rows pruned a thousand at a time, the event loop free between them. */
  private async maintainInSteps(signal: AbortSignal): Promise<void> {
    this.lastMaintenance = this.now();
    this.storage.updateTiers();
    const keep = this.options.keepDoneMs ?? 7 * 86_400_000;
    while (this.storage.pruneOutbox(keep, 1000) === 1000 && !isAborted(signal)) await setImmediate();
  }

  private async drainOnce(signal: AbortSignal): Promise<number> {
    if (this.now() - this.lastMaintenance >= (this.options.maintenanceIntervalMs ?? 3_600_000)) await this.maintainInSteps(signal);
    this.storage.releaseExpiredLeases(this.options.leaseMs ?? 60_000);
    let processed = 0;
    // Saved items made searchable: what `items_per_second` reports (enrichment is extra work).
    let searchable = 0;
    this.lastProcessedTotal = 0;
    this.optimizedAt = 0;
    // Adaptive batch: a drain starts small, so the first items are searchable soon and a request
    // that arrives waits for one small batch at most; it doubles while the backlog lasts and the
    // server stays idle, up to `batchSize`, and drops back after interactive work was seen.
    const largest = Math.max(1, this.options.batchSize ?? 256);
    const smallest = Math.min(largest, this.options.minBatchSize ?? 32);
    let size = smallest;
    this.lastBatchEndedAt = this.now();
    while (!isAborted(signal)) {
      // Interactive work first: while a generation runs or waits, the weaver waits between batches,
      // but never longer than `maxWaitMs`: then one batch goes ahead, so indexing cannot starve.
      const waited = await this.waitWhileBusy(signal);
      if (waited === 'waited') size = smallest;
      // The guaranteed share takes what waits, up to the largest batch: a steady stream of saves
      // arrives faster than one small batch per share would clear.
      const claimSize = waited === 'due' ? largest : size;
      if (isAborted(signal)) break;
      // Stages by priority: what makes saved items searchable (and deletes and tiers, which keep
      // queue order with it), then enrichment (similar links, entities), then summaries.
      let items = this.storage.claimOutbox(claimSize, primaryKinds);
      if (items.length === 0 && this.indexedSinceOptimize && !isAborted(signal)) {
        // The searchable stage is empty: compact (and build the ANN index once the table is large
        // enough) now, before enrichment searches the table; not in the middle of a backlog.
        await this.optimizeIndex();
        this.optimizedAt = processed;
      }
      if (items.length === 0) items = this.claimFollowUp();
      if (items.length === 0) break;
      const started = this.now();
      let position = 0;
      while (position < items.length) {
        if (isAborted(signal)) {
          // Stopping: what was claimed and not started goes back to pending for the next start.
          this.storage.releaseOutbox(items.slice(position).map((claimed) => claimed.id));
          break;
        }
        const item = items[position] as OutboxItem;
        if (isIndexItem(item)) {
          // A run of index items is one batch: one embedding pass and one index write.
          let end = position;
          while (end < items.length && isIndexItem(items[end] as OutboxItem)) end++;
          await this.processIndexBatch(items.slice(position, end), signal);
          processed += end - position;
          searchable += end - position;
          position = end;
          continue;
        }
        if (item.payload.kind === 'enrich') await this.processEnrich(item, item.payload.node_ids, signal);
        else await this.process(item, signal);
        processed += 1;
        position += 1;
      }
      // A batch taken under interactive load does not grow the next one.
      if (items.length >= size && waited !== 'due') size = Math.min(largest, size * 2);
      this.lastBatchEndedAt = this.now();
      this.recordDrained(searchable);
      // Each batch adds a fragment to the table, and searches (the similar-neighbour links) slow
      // down as fragments pile up: compact every `optimizeEvery` items during a long drain.
      if (this.indexedSinceOptimize && processed - this.optimizedAt >= (this.options.optimizeEvery ?? 16_384) && !isAborted(signal)) {
        this.optimizedAt = processed;
        await this.optimizeIndex();
      }
      await this.restFor(this.now() - started, signal);
    }
    // An optimize can take minutes on a large index; after a stop, the next start does it instead.
    if (this.indexedSinceOptimize && !signal.aborted) await this.optimizeIndex();
    this.events.emit('idle', { processed });
    return processed;
  }

  /**
   * Waits while interactive work runs: `free` when there was none, `waited` when it ended, `due`
   * when it still runs but the last batch ended `maxWaitMs` ago (the weaver's guaranteed share).
   */
  private async waitWhileBusy(signal: AbortSignal): Promise<'free' | 'waited' | 'due'> {
    let waited = false;
    const maxWaitMs = this.options.maxWaitMs ?? 5000;
    while (this.options.isBusy?.() === true && !isAborted(signal)) {
      if (this.now() - this.lastBatchEndedAt >= maxWaitMs) return 'due';
      waited = true;
      await sleep(this.options.busyPollMs ?? 100);
    }
    return waited ? 'waited' : 'free';
  }

  /** Duty cycle: after a batch that took `busyMs`, rests so the weaver uses at most that share of its time. */
  private async restFor(busyMs: number, signal: AbortSignal): Promise<void> {
    const duty = this.options.dutyCycle ?? 1;
    if (duty >= 1 || busyMs <= 0 || isAborted(signal)) return;
    await sleep(Math.min(60_000, (busyMs * (1 - duty)) / duty), undefined, { signal }).catch(() => undefined);
  }

  private async optimizeIndex(): Promise<void> {
    this.indexedSinceOptimize = false;
    await this.index.optimize().catch((error: unknown) => this.options.logger?.warn({ err: error }, 'index optimize failed'));
  }

  /** Enrichment, then summaries: claimed only when nothing waits to be made searchable. */
  private claimFollowUp(): OutboxItem[] {
    // One enrichment item holds a whole index batch's nodes.
    const enrich = this.storage.claimOutbox(1, ['enrich']);
    if (enrich.length > 0) return enrich;
    return this.storage.claimOutbox(1, ['summarize']);
  }

  private async run(): Promise<void> {
    while (!this.isStopped()) {
      let processed = 0;
      try {
        processed = await this.drain();
      } catch (error) {
        this.options.logger?.error({ err: error }, 'weaver loop failed');
      }
      if (this.isStopped()) break;
      if (processed > 0) continue;
      this.wake = new AbortController();
      await sleep(this.options.pollIntervalMs ?? 2000, undefined, { signal: this.wake.signal }).catch(() => undefined);
    }
  }

  private async process(item: OutboxItem, signal: AbortSignal): Promise<void> {
    // index-* events are about what search sees; enrichment and summaries are quiet.
    const indexing = primaryKinds.includes(item.payload.kind);
    if (indexing) this.events.emit('index-start', { item });
    try {
      const result = await this.step(item.payload, signal);
      this.storage.completeOutbox(item.id);
      if (indexing) this.events.emit('index-end', { item, node_id: result.nodeId, chunks: result.chunks });
    } catch (error) {
      this.fail(item, error, signal);
    }
  }

  /**
   * Indexes a run of index-message / index-document items together: every node chunked and
   * embedded in one pass and written with one index write, then each node's edges, entities and
   * links. An item that fails is retried alone; the others complete (indexing is idempotent, so a
   * batch cut short by a crash is simply redone).
   */
  private async processIndexBatch(items: readonly OutboxItem[], signal: AbortSignal): Promise<void> {
    for (const item of items) this.events.emit('index-start', { item });
    const nodes = this.storage.getNodes(items.map((item) => (item.payload as { node_id: string }).node_id));
    const entries = items.map((item) => ({ item, node: nodes.get((item.payload as { node_id: string }).node_id) }));
    const present = entries.flatMap((entry) => (entry.node === undefined ? [] : [{ item: entry.item, node: entry.node }]));
    let chunksByNode: Map<string, { vector: Float32Array }[]>;
    try {
      const embedder = await this.embedder();
      chunksByNode =
        present.length === 0
          ? new Map<string, { vector: Float32Array }[]>()
          : await this.index.indexNodes(
              present.map((entry) => entry.node),
              embedder,
            );
    } catch (error) {
      // One bad item must not hold back the others: a failed batch is redone one item at a time,
      // so only the item that fails alone is counted as failed (and retried with backoff).
      // (Not when no embedding model exists yet: every item would wait for it alike.)
      const waitingForModel = TabAgentError.isInstance(error) && error.code === 'model_not_found';
      if (items.length > 1 && !isAborted(signal) && !(error instanceof YieldedError) && !waitingForModel) {
        for (const item of items) await this.processIndexBatch([item], signal);
        return;
      }
      for (const item of items) this.fail(item, error, signal);
      return;
    }
    if (present.length > 0) this.indexedSinceOptimize = true;
    const done: { item: OutboxItem; nodeId: string; chunks: number }[] = [];
    const enrich = present.filter(({ node }) => this.enrichesLinks() || this.extractsEntitiesFrom(node)).map(({ node }) => node.id);
    const chats = new Set(present.flatMap(({ node }) => (node.kind === 'message' && node.chat_id !== null ? [node.chat_id] : [])));
    // The items are searchable now. Their containment edges and outbox changes are one
    // transaction (one commit per batch), and the slower enrichment and summaries are queued in
    // it, so a crash either redoes the batch or finds its follow-up work queued.
    this.storage.transaction(() => {
      // Read again inside the transaction: a node (or its chat) deleted while the batch was being
      // embedded gets no edge; its delete-index item removes what was just indexed.
      const alive = this.storage.getNodes([...entries.map(({ item }) => (item.payload as { node_id: string }).node_id), ...chats]);
      for (const { item, node } of entries) {
        if (node === undefined || !alive.has(node.id)) {
          done.push({ item, nodeId: (item.payload as { node_id: string }).node_id, chunks: 0 });
          continue;
        }
        if (node.kind === 'message' && node.chat_id !== null && alive.has(node.chat_id)) {
          this.storage.createEdge({ type: 'CONTAINS', from_id: node.chat_id, to_id: node.id });
        }
        done.push({ item, nodeId: node.id, chunks: chunksByNode.get(node.id)?.length ?? 0 });
      }
      this.storage.completeOutbox(done.map((entry) => entry.item.id));
      if (enrich.length > 0) this.storage.enqueue({ kind: 'enrich', node_ids: enrich });
      if (this.options.summarize !== undefined) for (const chat of chats) if (alive.has(chat)) this.storage.enqueueOnce({ kind: 'summarize', chat_id: chat });
    });
    for (const entry of done) this.events.emit('index-end', { item: entry.item, node_id: entry.nodeId, chunks: entry.chunks });
  }

  private enrichesLinks(): boolean {
    return (this.options.maxSimilarLinks ?? 3) > 0;
  }

  /**
   * Enrichment in small units that commit as they go: the item's first `enrichUnit` nodes get
   * their links and entities, and in the same transaction the item is completed and the rest of
   * its nodes queued again as a new item, behind anything waiting to be made searchable. A stop,
   * a crash or interactive work between units loses nothing done; a node whose entity extraction
   * fails is split off into an item of its own (retried with backoff, dead-lettered alone), so its
   * neighbours are not held back.
   */
  private async processEnrich(item: OutboxItem, nodeIds: readonly string[], signal: AbortSignal): Promise<void> {
    const unitSize = Math.max(1, this.options.enrichUnit ?? 64);
    const unit = nodeIds.slice(0, unitSize);
    const rest = nodeIds.slice(unitSize);
    try {
      const nodes = [...this.storage.getNodes(unit).values()];
      const neighbours = await this.neighboursOf(nodes);
      if (isAborted(signal)) throw new CancelledError('Enrichment stopped; it goes on at the next start');
      // Entities of the unit at once: the extractor batches concurrent texts into one model run.
      const extracting = nodes.filter((node) => this.extractsEntitiesFrom(node));
      const outcomes = await Promise.allSettled(extracting.map(async (node) => (await this.options.extractEntities?.(node.text)) ?? []));
      const entitiesOf = new Map<string, ExtractedEntityLike[]>();
      const failed: { id: string; error: unknown }[] = [];
      outcomes.forEach((outcome, position) => {
        const node = extracting[position] as MemoryNode;
        if (outcome.status === 'fulfilled') entitiesOf.set(node.id, outcome.value);
        else failed.push({ id: node.id, error: outcome.reason });
      });
      // A unit of one node that fails is that node's failure: retried with backoff, then dead.
      if (nodeIds.length === 1 && failed.length === 1) throw failed[0]?.error;
      this.storage.transaction(() => {
        // Read inside the transaction: a node deleted meanwhile gets no edges.
        const alive = this.storage.getNodes([...new Set([...nodes.map((node) => node.id), ...[...neighbours.values()].flat().map((hit) => hit.node_id)])]);
        const failedIds = new Set(failed.map((entry) => entry.id));
        for (const node of nodes) {
          if (!alive.has(node.id)) continue;
          this.linkSimilarFrom(node, neighbours.get(node.id) ?? [], alive);
          if (!failedIds.has(node.id)) this.writeEntities(node, entitiesOf.get(node.id) ?? []);
        }
        this.storage.completeOutbox(item.id);
        if (rest.length > 0) this.storage.enqueue({ kind: 'enrich', node_ids: rest });
        // Entities only: its links are written.
        for (const entry of failed) this.storage.enqueue({ kind: 'enrich', node_ids: [entry.id] });
      });
      for (const entry of failed) {
        this.options.logger?.warn({ node: entry.id, err: entry.error }, 'entity extraction failed for one node; it is retried on its own');
      }
    } catch (error) {
      this.fail(item, error, signal);
    }
  }

  /** The nearest indexed nodes of each node (its first chunk's vector), from one multi-vector query. */
  private async neighboursOf(nodes: readonly MemoryNode[]): Promise<Map<string, { node_id: string; score: number }[]>> {
    const neighbours = new Map<string, { node_id: string; score: number }[]>();
    const max = this.options.maxSimilarLinks ?? 3;
    if (max <= 0 || nodes.length === 0) return neighbours;
    const embedder = await this.embedder();
    const vectors = await this.index.nodeVectors(
      embedder.modelId,
      embedder.dimensions,
      nodes.map((node) => node.id),
    );
    const withVectors = nodes.flatMap((node) => {
      const vector = vectors.get(node.id);
      return vector === undefined ? [] : [{ node, vector }];
    });
    if (withVectors.length === 0) return neighbours;
    const found = await this.index.nearestNodes(
      embedder.modelId,
      embedder.dimensions,
      withVectors.map((entry) => entry.vector),
      max * 3 + 1,
    );
    withVectors.forEach((entry, position) => neighbours.set(entry.node.id, found[position] ?? []));
    return neighbours;
  }

  private fail(item: OutboxItem, error: unknown, signal: AbortSignal): void {
    if (signal.aborted || error instanceof YieldedError) {
      // Stopped, or gave way to interactive work: not a failure; redone (idempotently) later.
      this.storage.releaseOutbox([item.id]);
      return;
    }
    const attempts = item.attempts + 1;
    // No embedding model registered yet is a wait, not a failure: the item is kept until one is.
    const waitingForModel = TabAgentError.isInstance(error) && error.code === 'model_not_found';
    const dead = !waitingForModel && attempts >= (this.options.maxAttempts ?? 5);
    const delay = waitingForModel
      ? Math.min(30_000, this.options.maxBackoffMs ?? 300_000)
      : Math.min((this.options.backoffMs ?? 1000) * 2 ** (attempts - 1), this.options.maxBackoffMs ?? 300_000);
    const message = errorMessage(error);
    this.storage.failOutbox(item.id, message, { dead, retryAt: this.now() + delay });
    this.options.logger?.warn({ item: item.id, kind: item.payload.kind, attempts, dead, err: error }, 'weaver item failed');
    this.events.emit('item-failed', { item: { ...item, attempts }, error: message, dead });
  }

  /** Items per second over the last minute of draining, for `status()`. */
  private readonly drainLog: { at: number; count: number }[] = [];
  private lastProcessedTotal = 0;
  private optimizedAt = 0;

  private recordDrained(processedSoFar: number): void {
    const now = this.now();
    const added = processedSoFar - this.lastProcessedTotal;
    this.lastProcessedTotal = processedSoFar;
    if (added > 0) this.drainLog.push({ at: now, count: added });
    while (this.drainLog.length > 0 && now - (this.drainLog[0]?.at ?? now) > 60_000) this.drainLog.shift();
  }

  private itemsPerSecond(): number {
    const now = this.now();
    const recent = this.drainLog.filter((entry) => now - entry.at <= 60_000);
    if (recent.length === 0) return 0;
    const span = Math.max(1, now - (recent[0]?.at ?? now)) / 1000;
    return Math.round((recent.reduce((sum, entry) => sum + entry.count, 0) / Math.max(span, 1)) * 10) / 10;
  }

  private async step(payload: OutboxPayload, signal: AbortSignal): Promise<{ nodeId: string | null; chunks: number }> {
    switch (payload.kind) {
      case 'index-message':
      case 'index-document':
        // drainOnce sends every index item through processIndexBatch.
        throw new Error(`${payload.kind} items are indexed in batches`);
      case 'delete-index':
        await this.index.deleteNodes(payload.node_ids);
        return { nodeId: null, chunks: 0 };
      case 'update-tier':
        await this.index.setTier(payload.node_ids, payload.tier);
        return { nodeId: null, chunks: 0 };
      case 'enrich':
        // drainOnce sends every enrichment item through processEnrich.
        throw new Error('enrich items are processed in units');
      case 'summarize':
        await this.summarizeChat(payload.chat_id, signal);
        return { nodeId: payload.chat_id, chunks: 0 };
      case 'reembed-all': {
        const embedder = await this.options.embedders(payload.model);
        let chunks = 0;
        for (const node of this.storage.iterateNodes(indexableNodeKinds)) {
          if (signal.aborted) throw new CancelledError('Re-embedding stopped; it starts again on the next start');
          chunks += (await this.index.indexNode(node, embedder)).length;
        }
        this.indexedSinceOptimize = true;
        return { nodeId: null, chunks };
      }
    }
  }

  private extractsEntitiesFrom(node: MemoryNode): boolean {
    return this.options.extractEntities !== undefined && (node.kind === 'message' || node.kind === 'webpage' || node.kind === 'document');
  }

  /** Entity nodes (one per normalised text and label) and MENTIONS edges; synchronous, for a transaction. */
  private writeEntities(node: MemoryNode, entities: readonly ExtractedEntityLike[]): void {
    for (const entity of entities) {
      const text = entity.text.trim();
      if (text === '') continue;
      const id = entityIdFor(entity.label, text);
      if (this.storage.getNode(id) === undefined) {
        this.storage.upsertNode({
          kind: 'entity',
          id,
          title: text,
          props: { entity_type: entity.label.toUpperCase(), normalized: text.toLowerCase().replace(/\s+/g, ' ') },
        });
      }
      this.storage.createEdge({ type: 'MENTIONS', from_id: node.id, to_id: id, weight: entity.score ?? null });
    }
  }

  /** SIMILAR_TO edges from already found neighbours (the batch's one query). */
  private linkSimilarFrom(node: MemoryNode, hits: readonly { node_id: string; score: number }[], alive: ReadonlyMap<string, MemoryNode>): void {
    const threshold = this.options.similarityThreshold ?? 0.85;
    const max = this.options.maxSimilarLinks ?? 3;
    let linked = 0;
    const seen = new Set<string>();
    for (const hit of [...hits].sort((a, b) => b.score - a.score)) {
      if (linked >= max) break;
      if (hit.node_id === node.id || hit.score < threshold || seen.has(hit.node_id)) continue;
      seen.add(hit.node_id);
      if (!alive.has(hit.node_id)) continue;
      this.storage.createEdge({ type: 'SIMILAR_TO', from_id: node.id, to_id: hit.node_id, weight: hit.score, metadata: { similarity_score: hit.score } });
      linked += 1;
    }
  }

  /**
   * Writes the chat's due summaries, one window of `summaryEvery` messages each. The input is
   * bounded: only the next window is read (by offset in the chat index), never the whole chat.
   */
  private async summarizeChat(chatId: string, signal: AbortSignal): Promise<void> {
    const summarize = this.options.summarize;
    if (summarize === undefined) return;
    const every = this.options.summaryEvery ?? 20;
    while (!isAborted(signal)) {
      const summaries = this.storage.countChatMessages(chatId, 'summary');
      if (this.storage.countChatMessages(chatId) < (summaries + 1) * every) return;
      const id = `summary_${chatId}_${summaries + 1}`;
      if (this.storage.getNode(id) !== undefined) return;
      const messages = this.storage.chatMessagesAt(chatId, summaries * every, every);
      const text = await this.yieldingToInteractiveWork(signal, (yielding) =>
        summarize(
          messages.map((item) => item.text),
          { signal: yielding },
        ),
      );
      // null: no LLM is available now; the chat's next indexed message queues it again.
      if (text === null) return;
      this.storage.transaction(() => {
        this.storage.upsertNode({
          kind: 'summary',
          id,
          chat_id: chatId,
          text,
          props: { message_ids: messages.map((item) => item.id) },
          metadata: { message_count: messages.length },
        });
        this.storage.createEdge({ type: 'SUMMARIZES', from_id: id, to_id: chatId });
      });
      // One summary per item; a backlog of windows is queued again behind other work.
      if (this.storage.countChatMessages(chatId) >= (summaries + 2) * every) this.storage.enqueueOnce({ kind: 'summarize', chat_id: chatId });
      return;
    }
  }

  /**
   * Runs `work` with a signal that is aborted when the weaver stops or interactive work starts
   * (a summary must not hold the model a chat waits for). Yielding throws `YieldedError`: the item
   * goes back to pending, not counted as a failure.
   */
  private async yieldingToInteractiveWork<T>(signal: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const onStop = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    const watch = setInterval(() => {
      if (this.options.isBusy?.() === true) controller.abort(new YieldedError());
    }, this.options.busyPollMs ?? 100);
    try {
      if (this.options.isBusy?.() === true) throw new YieldedError();
      const result = await work(controller.signal);
      // A generation that was stopped resolves with what it had written so far: that is not a
      // summary, whether the weaver stopped or gave way.
      if (controller.signal.aborted) {
        throw controller.signal.reason instanceof YieldedError ? controller.signal.reason : new CancelledError('Stopped before the summary was finished');
      }
      return result;
    } catch (error) {
      throw controller.signal.reason instanceof YieldedError ? controller.signal.reason : error;
    } finally {
      clearInterval(watch);
      signal.removeEventListener('abort', onStop);
    }
  }

  async embeddingModelId(): Promise<string> {
    const configured = this.storage.getMemorySettings().embedding_model;
    if (configured) return configured;
    if (this.options.defaultEmbeddingModelId) {
      const id = await this.options.defaultEmbeddingModelId();
      if (id === null) throw new ModelNotFoundError('No embedding model is registered');
      return id;
    }
    return (await this.options.embedders()).modelId;
  }

  async embedder(): Promise<TextEmbedder> {
    return this.options.embedders(this.storage.getMemorySettings().embedding_model ?? undefined);
  }

  async setEmbeddingModel(modelId: string | null): Promise<void> {
    // null goes back to the resolver's default; either way the model must be available now.
    const embedder = await this.options.embedders(modelId ?? undefined);
    const current = await this.embeddingModelId().catch(() => null);
    this.storage.transaction(() => {
      this.storage.updateMemorySettings({ embedding_model: modelId === null ? null : embedder.modelId });
      if (current !== embedder.modelId) this.storage.enqueue({ kind: 'reembed-all', model: embedder.modelId });
    });
    this.notify();
  }

  /** The last snapshot and the storage's content version it was read at. */
  private snapshotRead: { version: string; snapshot: Promise<StatusSnapshot> } | undefined;

  /**
   * Status without counting on the event loop: the counts come from one read transaction on the
   * storage's read worker, and are read again only after something was written (the storage's
   * write count moved), so polling an idle server, or many polls at once, reads once.
   */
  async status(): Promise<WeaverStatus> {
    const version = this.storage.contentVersion();
    if (this.snapshotRead?.version !== version) {
      const snapshot = this.readSnapshot();
      const read = { version, snapshot };
      this.snapshotRead = read;
      // A failed read is not kept: the next call reads again.
      snapshot.catch(() => {
        if (this.snapshotRead === read) this.snapshotRead = undefined;
      });
    }
    const { outbox, counts, tables } = await this.snapshotRead.snapshot;
    return {
      queue_depth: outbox.pending,
      in_progress: outbox.in_progress,
      failed: outbox.dead,
      last_error: outbox.last_error,
      embedding_model: await this.embeddingModelId().catch(() => null),
      models: tables.map((table) => ({ model: table.model, indexed_chunks: table.rows })),
      counts,
      unindexed: outbox.unindexed,
      items_per_second: this.itemsPerSecond(),
      oldest_pending_age_ms: outbox.oldest_open_at === null ? null : Math.max(0, this.now() - outbox.oldest_open_at),
    };
  }

  private async readSnapshot(): Promise<StatusSnapshot> {
    // The index first, then the storage: a save landing between them counts as not yet indexed,
    // never as indexed.
    const tables = await this.index.stats();
    return { ...(await this.storage.memorySnapshot()), tables };
  }
}

type StatusSnapshot = Awaited<ReturnType<Storage['memorySnapshot']>> & { tables: Awaited<ReturnType<MemoryIndex['stats']>> };

/** Creates the weaver; call `start()` to run it in the background. */
export function createWeaver(options: WeaverOptions): Weaver {
  return new MemoryWeaver(options);
}
