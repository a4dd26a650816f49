import { InvalidRequestError, safeParseJson, type ProblemDetails, type RouteChunk, type RouteId, type RouteResponse } from '@tabagent/values';
import { createContinuationReassembler } from './continuation.js';

/** A route call that failed: the server's problem document. */
export class RouteCallError extends Error {
  constructor(readonly problem: ProblemDetails) {
    super(problem.detail);
    this.name = 'RouteCallError';
  }
}

/** Options of `createEnvelopeClient`. */
export interface EnvelopeClientOptions {
  /** Sends one request message's JSON text to the server. */
  send: (text: string) => void;
}

/** The client side of the route envelope, over any message transport (a data channel, a port). */
export interface EnvelopeClient {
  /** Calls a route and resolves with its `data` (rejects with `RouteCallError`). */
  call<K extends RouteId>(id: K, payload: unknown, requestId?: string): Promise<RouteResponse<K>>;
  /** Calls a streaming route and yields its chunks until `done` (throws `RouteCallError`). */
  stream<K extends RouteId>(id: K, payload: unknown, requestId?: string): AsyncIterable<RouteChunk<K>>;
  /** Hands the client one message's text from the server. */
  receive(text: string): void;
  /** Fails every pending call (the connection closed). */
  close(reason: Error): void;
}

type Waiter = { push: (message: Record<string, unknown>) => void; fail: (error: Error) => void };

class RouteEnvelopeClient implements EnvelopeClient {
  private readonly reassembler = createContinuationReassembler();
  private readonly waiters = new Map<string, Waiter>();
  private nextId = 0;

  constructor(private readonly options: EnvelopeClientOptions) {}

  call<K extends RouteId>(id: K, payload: unknown, requestId = this.newId()): Promise<RouteResponse<K>> {
    return new Promise((resolve, reject) => {
      this.waiters.set(requestId, {
        push: (message) => {
          this.waiters.delete(requestId);
          if (message.ok === true) resolve(message.data as RouteResponse<K>);
          else reject(new RouteCallError(message.error as ProblemDetails));
        },
        fail: reject,
      });
      this.options.send(JSON.stringify({ id, request_id: requestId, payload }));
    });
  }

  async *stream<K extends RouteId>(id: K, payload: unknown, requestId = this.newId()): AsyncIterable<RouteChunk<K>> {
    const queue: Record<string, unknown>[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    this.waiters.set(requestId, {
      push: (message) => {
        queue.push(message);
        wake?.();
      },
      fail: (error) => {
        failure = error;
        wake?.();
      },
    });
    this.options.send(JSON.stringify({ id, request_id: requestId, payload }));
    try {
      for (;;) {
        const message = queue.shift();
        if (message === undefined) {
          if (failure) throw failure;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          continue;
        }
        if (message.done === true) return;
        if (message.ok === false) throw new RouteCallError(message.error as ProblemDetails);
        // A route that does not stream for this request answers once.
        if (message.ok === true) {
          yield message.data as RouteChunk<K>;
          return;
        }
        yield message.chunk as RouteChunk<K>;
      }
    } finally {
      this.waiters.delete(requestId);
    }
  }

  receive(text: string): void {
    const parsed = safeParseJson(text);
    if (!parsed.success) throw parsed.error;
    const message = this.reassembler.accept(parsed.value);
    if (message === undefined) return;
    if (typeof message !== 'object' || message === null) throw new InvalidRequestError('A server message must be a JSON object');
    const record = message as Record<string, unknown>;
    const waiter = this.waiters.get(String(record.request_id));
    waiter?.push(record);
  }

  close(reason: Error): void {
    for (const waiter of this.waiters.values()) waiter.fail(reason);
    this.waiters.clear();
  }

  private newId(): string {
    this.nextId += 1;
    return `c${this.nextId}`;
  }
}

/** Creates a route-envelope client; wire `receive` to the transport's incoming messages. */
export function createEnvelopeClient(options: EnvelopeClientOptions): EnvelopeClient {
  return new RouteEnvelopeClient(options);
}
