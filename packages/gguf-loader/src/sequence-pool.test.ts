import { SequencePool } from './sequence-pool.js';

describe('SequencePool', () => {
  it('creates up to its capacity, then queues callers first come first served', async () => {
    let created = 0;
    const pool = new SequencePool(2, () => ++created);
    const first = await pool.acquire();
    const second = await pool.acquire();
    expect([first, second]).toEqual([1, 2]);
    const order: string[] = [];
    const third = pool.acquire().then((value) => order.push(`third:${value}`));
    const fourth = pool.acquire().then((value) => order.push(`fourth:${value}`));
    expect(pool.queued).toBe(2);
    pool.release(second);
    pool.release(first);
    await Promise.all([third, fourth]);
    expect(order).toEqual(['third:2', 'fourth:1']);
    expect(created).toBe(2);
  });

  it('gives the free resource that scores highest, a new one while nothing scores, then the least recently used', async () => {
    let created = 0;
    const pool = new SequencePool(3, () => ++created);
    const [one, two] = [await pool.acquire(), await pool.acquire()];
    pool.release(one);
    pool.release(two);
    // Two is what this caller can reuse most of.
    expect(await pool.acquire(undefined, (item) => (item === two ? 5 : 1))).toBe(2);
    pool.release(two);
    // Nothing to reuse and room for one more: a fresh one, so the cached ones stay.
    expect(await pool.acquire(undefined, () => 0)).toBe(3);
    expect(pool.inUse).toBe(1);
    pool.release(3);
    // Full: the one released longest ago goes first.
    expect(await pool.acquire(undefined, () => 0)).toBe(1);
    expect(await pool.acquire(undefined, () => 0)).toBe(2);
    expect(created).toBe(3);
  });

  it('lets a waiting caller give up through its signal', async () => {
    const pool = new SequencePool(1, () => 'only');
    const held = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'cancelled' });
    expect(pool.queued).toBe(0);
    pool.release(held);
    expect(await pool.acquire()).toBe('only');
  });

  it('rejects every waiting caller when the model goes away', async () => {
    const pool = new SequencePool(1, () => 1);
    await pool.acquire();
    const waiting = pool.acquire();
    pool.rejectWaiting(new Error('unloaded'));
    await expect(waiting).rejects.toThrow('unloaded');
  });
});
