/**
 * The one stream finaliser: a stream that calls `end` exactly once, when it finishes, fails, or is
 * closed by `return()`, even one closed before its first chunk (an async generator's `finally`
 * would not run then, and a client that disconnects before the first chunk would leave its call
 * counted forever). `end` is told how the stream ended.
 */
export function onStreamEnd<T>(chunks: AsyncIterable<T>, end: (outcome: 'finished' | 'failed' | 'closed', error?: unknown) => void): AsyncIterableIterator<T> {
  let ended = false;
  const finish = (outcome: 'finished' | 'failed' | 'closed', error?: unknown): void => {
    if (ended) return;
    ended = true;
    end(outcome, error);
  };
  const iterator = chunks[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<T>> {
      try {
        const step = await iterator.next();
        if (step.done === true) finish('finished');
        return step;
      } catch (error) {
        finish('failed', error);
        throw error;
      }
    },
    async return(value?: unknown): Promise<IteratorResult<T>> {
      finish('closed');
      return (await iterator.return?.(value)) ?? { done: true, value: undefined };
    },
  };
}
