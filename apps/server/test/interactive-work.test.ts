import type { AppStateProvider, CallContext, HandlerResult, RouteId } from '@tabagent/values';
import { trackInteractiveCalls } from '@tabagent/services';

// The weaver pauses while interactive calls are in flight; a call that is never counted down
// would pause it forever.
const context = {} as CallContext;
async function* chunks(): AsyncGenerator<{ n: number }> {
  yield { n: 1 };
  yield { n: 2 };
}
const streaming: AppStateProvider = {
  handle<K extends RouteId>(): Promise<HandlerResult<K>> {
    return Promise.resolve(chunks() as unknown as HandlerResult<K>);
  },
};
const routes = new Set<RouteId>(['embeddings']);

describe('trackInteractiveCalls', () => {
  it('counts a stream until it ends, once', async () => {
    let ended = 0;
    const tracked = trackInteractiveCalls(streaming, routes, () => (ended += 1));
    const stream = (await tracked.provider.handle('embeddings', {} as never, context)) as unknown as AsyncIterable<{ n: number }>;
    expect(tracked.inFlight()).toBe(1);
    const seen: number[] = [];
    for await (const chunk of stream) seen.push(chunk.n);
    expect(seen).toEqual([1, 2]);
    expect([tracked.inFlight(), ended]).toEqual([0, 1]);
  });

  it('counts down a stream closed before its first chunk, as a client that disconnects at once does', async () => {
    const tracked = trackInteractiveCalls(streaming, routes);
    const stream = (await tracked.provider.handle('embeddings', {} as never, context)) as unknown as AsyncIterator<unknown>;
    expect(tracked.inFlight()).toBe(1);
    await stream.return?.();
    await stream.return?.();
    expect(tracked.inFlight()).toBe(0);
  });

  it('counts down a stream that fails and a call that throws', async () => {
    const failing: AppStateProvider = {
      handle<K extends RouteId>(id: K): Promise<HandlerResult<K>> {
        if (id === 'embeddings') return Promise.reject(new Error('no model'));
        return Promise.resolve(
          (async function* broken() {
            yield { n: 1 };
            throw new Error('mid-stream');
          })() as unknown as HandlerResult<K>,
        );
      },
    };
    const tracked = trackInteractiveCalls(failing, new Set<RouteId>(['embeddings', 'rerank']));
    await expect(tracked.provider.handle('embeddings', {} as never, context)).rejects.toThrow('no model');
    expect(tracked.inFlight()).toBe(0);
    const stream = (await tracked.provider.handle('rerank', {} as never, context)) as unknown as AsyncIterable<unknown>;
    await expect(
      (async () => {
        const seen: unknown[] = [];
        for await (const chunk of stream) seen.push(chunk);
      })(),
    ).rejects.toThrow('mid-stream');
    expect(tracked.inFlight()).toBe(0);
  });
});
