import { CancelledError } from '@tabagent/values';

/**
 * Hands out a fixed number of resources (context sequences) and queues callers when all are in
 * use, first come first served. A waiting caller can give up through its AbortSignal.
 */
export class SequencePool<T> {
  private readonly free: T[] = [];
  private created = 0;
  private readonly waiting: Array<{ resolve: (value: T) => void; reject: (error: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }> = [];

  constructor(
    private readonly capacity: number,
    private readonly create: () => T,
  ) {}

  /** Number of callers waiting for a resource. */
  get queued(): number {
    return this.waiting.length;
  }

  acquire(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(new CancelledError('Cancelled while waiting for a free sequence'));
    const ready = this.free.pop();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.created < this.capacity) {
      this.created++;
      try {
        return Promise.resolve(this.create());
      } catch (error) {
        this.created--;
        return Promise.reject(error);
      }
    }
    return new Promise<T>((resolve, reject) => {
      const entry = {
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
