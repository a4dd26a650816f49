import type { GenerationDelta, GenerationEvent, GenerationResult } from './generation-contract.js';

/**
 * A running generation: iterate it for deltas (each once, in order), and await `result` for the
 * final text, finish reason and usage. Both may be used, or only `result`.
 */
export interface GenerationRun<Result, Delta = string> extends AsyncIterable<Delta> {
  readonly result: Promise<Result>;
}

/** Push side of a `GenerationRun`. */
export class GenerationRunController<Result, Delta = string> implements GenerationRun<Result, Delta> {
  private readonly chunks: Delta[] = [];
  private waiter: (() => void) | null = null;
  private wakeScheduled = false;
  private finished = false;
  private failure: { error: unknown } | null = null;
  readonly result: Promise<Result>;

  constructor(work: (push: (delta: Delta) => void) => Promise<Result>) {
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

  private push(delta: Delta): void {
    this.chunks.push(delta);
    // The reader (an SSE write, a socket syscall) runs on the next turn of the event loop, after
    // the generation has dispatched its next decode: the write then overlaps the model's compute
    // instead of delaying every token. Deltas pushed meanwhile are read together.
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wake();
    });
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

  async *[Symbol.asyncIterator](): AsyncIterator<Delta> {
    for (;;) {
      if (this.chunks.length > 0) {
        yield this.chunks.shift() as Delta;
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

/** A delta as its event. */
function eventOf(delta: GenerationDelta): GenerationEvent {
  switch (delta.kind) {
    case 'content':
      return { type: 'text-delta', text: delta.text };
    case 'reasoning':
      return { type: 'reasoning-delta', text: delta.text };
    case 'prompt':
      return { type: 'prompt', promptTokens: delta.promptTokens };
    case 'tool-call-start':
      return { type: 'tool-call-start', index: delta.index, id: delta.id, name: delta.name };
    case 'tool-call-arguments':
      return { type: 'tool-call-delta', index: delta.index, arguments: delta.text };
  }
}

/**
 * A run as the one event stream: `start`, each delta, the tool calls, then `end` with the result
 * (or `error`). Closing the stream early stops reading; the caller aborts the generation itself.
 */
export async function* generationEvents(modelId: string, run: GenerationRun<GenerationResult, GenerationDelta>): AsyncGenerator<GenerationEvent> {
  yield { type: 'start', modelId };
  let result: GenerationResult;
  try {
    for await (const delta of run) yield eventOf(delta);
    result = await run.result;
  } catch (error) {
    yield { type: 'error', error };
    return;
  }
  for (const [index, call] of result.toolCalls.entries()) yield { type: 'tool-call', index, call };
  yield { type: 'end', result };
}
