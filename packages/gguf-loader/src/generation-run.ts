/**
 * A running generation: iterate it for text deltas (each delta once, in order), and await
 * `result` for the final text, finish reason and usage. Both may be used, or only `result`.
 */
export interface GenerationRun<Result> extends AsyncIterable<string> {
  readonly result: Promise<Result>;
}

/** Push side of a `GenerationRun`. */
export class GenerationRunController<Result> implements GenerationRun<Result> {
  private readonly chunks: string[] = [];
  private waiter: (() => void) | null = null;
  private finished = false;
  private failure: { error: unknown } | null = null;
  readonly result: Promise<Result>;

  constructor(work: (push: (delta: string) => void) => Promise<Result>) {
    this.result = work((delta) => this.push(delta)).then(
      (value) => {
        this.finish(null);
        return value;
      },
      (error: unknown) => {
        this.finish({ error });
        throw error;
      },
    );
    // The caller may only iterate; the rejection is then delivered through the iterator.
    this.result.catch(() => undefined);
  }

  private push(delta: string): void {
    if (delta.length === 0) return;
    this.chunks.push(delta);
    this.wake();
  }

  private finish(failure: { error: unknown } | null): void {
    this.finished = true;
    this.failure = failure;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      const next = this.chunks.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.finished) {
        if (this.failure) throw this.failure.error;
        return;
      }
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }
}
