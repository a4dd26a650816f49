import { CancelledError, RateLimitedError } from '@tabagent/values';

/** How well a free resource suits a caller: higher is better; 0 or less means "nothing to reuse". */
export type ResourceScore<T> = (resource: T) => number;

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * Hands out a fixed number of resources (context sequences) and queues callers when all are in
 * use, first come first served. A waiting caller can give up through its AbortSignal.
 *
 * A caller may pass a score: among the free resources it gets the one that scores highest (the
 * sequence whose cached tokens share the longest prefix with its prompt, as llama-server picks a
 * slot by prompt similarity). When none scores above 0 it gets a resource never used yet while the
 * capacity allows, else the least recently used free one, so the caches of other conversations
 * are evicted oldest first. A queued caller takes the next resource released.
 */
export class SequencePool<T> {
  /** Free resources, least recently released first. */
  private readonly free: T[] = [];
  private created = 0;
  private readonly waiting: Waiter<T>[] = [];

  /**
   * @param maxQueued Callers that may wait at once; the next one is refused with `rate_limited`
   *   (429, retryable) rather than queued without bound.
   */
  constructor(
    private readonly capacity: number,
    private readonly create: () => T,
    private readonly maxQueued = Number.POSITIVE_INFINITY,
  ) {}

  /** Number of callers waiting for a resource. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Number of resources handed out now. */
  get inUse(): number {
    return this.created - this.free.length;
  }

  acquire(signal?: AbortSignal, score?: ResourceScore<T>): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(new CancelledError('Cancelled while waiting for a free sequence'));
    const chosen = this.choose(score);
    if (chosen !== undefined) return Promise.resolve(chosen);
    if (this.created < this.capacity) {
      this.created++;
      try {
        return Promise.resolve(this.create());
      } catch (error) {
        this.created--;
        return Promise.reject(error);
      }
    }
    if (this.waiting.length >= this.maxQueued) {
      return Promise.reject(
        new RateLimitedError(`${this.waiting.length} requests are already waiting for this model; try again shortly`, {
          details: { queued: this.waiting.length, max_queued: this.maxQueued, retry_after_seconds: 1 },
        }),
      );
    }
    return this.enqueue(signal);
  }

  /** The best free resource for `score` (taken out of the free list), or undefined to create one. */
  private choose(score: ResourceScore<T> | undefined): T | undefined {
    if (this.free.length === 0) return undefined;
    let best = -1;
    let bestScore = 0;
    if (score !== undefined) {
      this.free.forEach((resource, index) => {
        const value = score(resource);
        if (value > bestScore) {
          best = index;
          bestScore = value;
        }
      });
    }
    // Nothing worth reusing: a fresh resource keeps every cached one, else evict the oldest.
    if (best === -1) {
      if (score !== undefined && this.created < this.capacity) return undefined;
      best = 0;
    }
    return this.free.splice(best, 1)[0];
  }

  private enqueue(signal: AbortSignal | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiting.indexOf(entry);
          if (index >= 0) this.waiting.splice(index, 1);
          reject(new CancelledError('Cancelled while waiting for a free sequence'));
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  release(item: T): void {
    const next = this.waiting.shift();
    if (next) {
      next.signal?.removeEventListener('abort', next.onAbort);
      next.resolve(item);
      return;
    }
    this.free.push(item);
  }

  /** Rejects every waiting caller (the model is being unloaded). */
  rejectWaiting(error: unknown): void {
    for (const entry of this.waiting.splice(0)) {
      entry.signal?.removeEventListener('abort', entry.onAbort);
      entry.reject(error);
    }
  }
}
