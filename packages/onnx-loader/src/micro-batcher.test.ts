import { TabAgentError, problemStatusForCode } from '@tabagent/values';
import { MicroBatcher } from './micro-batcher.js';

describe('MicroBatcher', () => {
  it('holds at most maxQueuedRequests requests and refuses the rest with 429 details, taking more once they finish', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const runs: number[][] = [];
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        runs.push(items);
        await gate;
        return items.map((item) => item * 10);
      },
      () => 1,
      { maxQueuedRequests: 3, batchWindowMs: 0 },
    );
    const held = [batcher.submit([1]), batcher.submit([2, 3]), batcher.submit([4])];
    const refused = await batcher.submit([5]).then(
      () => null,
      (error: unknown) => error,
    );
    expect(
      TabAgentError.isInstance(refused) && {
        code: refused.code,
        status: problemStatusForCode(refused.code),
        message: refused.message,
        details: refused.details,
      },
    ).toEqual({
      code: 'rate_limited',
      status: 429,
      message: '3 requests are already waiting for this model; try again shortly',
      details: { queued: 3, max_queued: 3, retry_after_seconds: 1 },
    });
    release();
    expect(await Promise.all(held)).toEqual([[10], [20, 30], [40]]);
    expect(await batcher.submit([6])).toEqual([60]);
  });

  it('frees the place of a cancelled request at once', async () => {
    const batcher = new MicroBatcher<number, number>(
      () => new Promise<number[]>(() => undefined),
      () => 1,
      { maxQueuedRequests: 1, batchWindowMs: 0 },
    );
    const controller = new AbortController();
    const first = batcher.submit([1], controller.signal);
    await expect(batcher.submit([2])).rejects.toMatchObject({ code: 'rate_limited' });
    controller.abort();
    await expect(first).rejects.toMatchObject({ code: 'cancelled' });
    const third = batcher.submit([3]);
    // Accepted (it waits behind the run that never ends), not refused: a refusal settles in a
    // microtask, before the next turn of the event loop, however busy the machine is.
    const outcome = await Promise.race([
      third.then(
        () => 'settled',
        () => 'refused',
      ),
      new Promise((resolve) => setImmediate(() => resolve('waiting'))),
    ]);
    expect(outcome).toBe('waiting');
  });
});
