/** What `withKeepAlive` yields when the source said nothing for a whole interval. */
export const keepAliveTick = { type: 'keep-alive' } as const;
export type KeepAliveTick = typeof keepAliveTick;

const silent: unique symbol = Symbol('silent');

/**
 * The source's items, with a tick whenever it has been silent for `intervalMs`: while a long
 * prompt is evaluated (minutes for an agent's prompt on a CPU) a stream codec turns the ticks
 * into its dialect's keep-alive event (Anthropic's `ping`, the Responses API's `keepalive`), so
 * clients with an idle timeout keep waiting. The pending read is kept across ticks, never lost.
 */
export async function* withKeepAlive<T>(source: AsyncIterable<T>, intervalMs: number): AsyncGenerator<T | KeepAliveTick> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | null = null;
  let done = false;
  try {
    for (;;) {
      pending ??= iterator.next();
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<typeof silent>((resolve) => {
        timer = setTimeout(() => resolve(silent), intervalMs);
      });
      const outcome = await Promise.race([pending, tick]);
      clearTimeout(timer);
      if (outcome === silent) {
        yield keepAliveTick;
        continue;
      }
      pending = null;
      if (outcome.done === true) {
        done = true;
        return;
      }
      yield outcome.value;
    }
  } finally {
    // A consumer that leaves early closes the source (which stops the generation); a read in
    // flight is let go: the source ends it when it stops, and how its closing went changes nothing here.
    if (!done) iterator.return?.().catch(() => undefined);
  }
}
