import { CancelledError, RateLimitedError } from '@tabagent/values';

/** Options of the micro-batcher. */
export interface MicroBatcherOptions {
  /** Most items in one run. Default 32. */
  maxBatchSize?: number;
  /** How long the first queued item waits for company before a run starts, in ms. Default 2. */
  batchWindowMs?: number;
  /**
   * Most requests waiting (not yet finished) at once; more are refused with 429 and
   * `retry_after_seconds`, as a GGUF model's queue is. Default 64.
   */
  maxQueuedRequests?: number;
}

interface PendingRequest<O> {
  results: O[];
  remaining: number;
  settled: boolean;
  resolve(results: O[]): void;
  reject(error: unknown): void;
}

interface PendingItem<I, O> {
  item: I;
  index: number;
  request: PendingRequest<O>;
}

/**
 * Merges items from concurrent requests into batches: requests arriving within the window (or
 * while a batch runs) are run together, sorted by length so that padding is wasted less, at most
 * `maxBatchSize` per run. Runs are serial: one session run at a time gives the runtime all threads.
 */
export class MicroBatcher<I, O> {
  private readonly maxBatchSize: number;
  private readonly batchWindowMs: number;
  private pending: PendingItem<I, O>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly maxQueuedRequests: number;
  /** Requests submitted and not yet settled. */
  private queuedRequests = 0;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly lengthOf: (item: I) => number,
    options: MicroBatcherOptions = {},
  ) {
    this.maxBatchSize = options.maxBatchSize ?? 32;
    this.batchWindowMs = options.batchWindowMs ?? 2;
    this.maxQueuedRequests = options.maxQueuedRequests ?? 64;
  }

  /** Queues the items of one request; resolves with their outputs in order. */
  submit(items: readonly I[], signal?: AbortSignal): Promise<O[]> {
    if (signal?.aborted) return Promise.reject(new CancelledError('The request was cancelled before it ran'));
    if (items.length === 0) return Promise.resolve([]);
    if (this.queuedRequests >= this.maxQueuedRequests) {
      return Promise.reject(
        new RateLimitedError(`${this.queuedRequests} requests are already waiting for this model; try again shortly`, {
          details: { queued: this.queuedRequests, max_queued: this.maxQueuedRequests, retry_after_seconds: 1 },
        }),
      );
    }
    this.queuedRequests += 1;
    return new Promise<O[]>((resolve, reject) => {
      const onAbort = () => request.reject(new CancelledError('The request was cancelled'));
      const request: PendingRequest<O> = {
        results: new Array<O>(items.length),
        remaining: items.length,
        settled: false,
        resolve: (results) => {
          if (request.settled) return;
          request.settled = true;
          this.queuedRequests -= 1;
          signal?.removeEventListener('abort', onAbort);
          resolve(results);
        },
        reject: (error) => {
          if (request.settled) return;
          request.settled = true;
          this.queuedRequests -= 1;
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      items.forEach((item, index) => this.pending.push({ item, index, request }));
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running) return;
    if (this.pending.length >= this.maxBatchSize) {
      this.clearTimer();
      void this.drain();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.drain();
      }, this.batchWindowMs);
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const taken = this.pending.filter((entry) => !entry.request.settled);
        this.pending = [];
        taken.sort((a, b) => this.lengthOf(a.item) - this.lengthOf(b.item));
        for (let start = 0; start < taken.length; start += this.maxBatchSize) {
          const chunk = taken.slice(start, start + this.maxBatchSize).filter((entry) => !entry.request.settled);
          if (chunk.length === 0) continue;
          await this.runChunk(chunk);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async runChunk(chunk: PendingItem<I, O>[]): Promise<void> {
    let outputs: O[];
    try {
      outputs = await this.runBatch(chunk.map((entry) => entry.item));
    } catch (error) {
      for (const entry of chunk) entry.request.reject(error);
      return;
    }
    chunk.forEach((entry, i) => {
      const { request } = entry;
      if (request.settled) return;
      request.results[entry.index] = outputs[i] as O;
      request.remaining -= 1;
      if (request.remaining === 0) request.resolve(request.results);
    });
  }
}
