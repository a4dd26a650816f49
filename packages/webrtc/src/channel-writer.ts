import type { RTCDataChannel } from 'werift';

/** Writes texts to a data channel in order, waiting while its send buffer is full. */
export interface ChannelWriter {
  /** Queues the texts of one message; they go out consecutively. Resolves once handed to the channel. */
  write(texts: readonly string[]): Promise<void>;
}

/** Stop handing the channel more once this much is buffered (Chrome's own receive queue is bounded too). */
const highWaterBytes = 1024 * 1024;
/** Resume when the buffer has drained to this. */
const lowWaterBytes = 256 * 1024;

/** A reader that takes nothing for this long while we wait to send has stalled the session. */
const drainTimeoutMs = 60_000;

/**
 * Creates the writer of one channel; texts written after the channel closed are dropped. A send
 * that fails, or a buffer that does not drain in 60 s, calls `onFailure` (the session ends) and
 * the writer drops everything after it; `write` never rejects.
 */
export function createChannelWriter(channel: RTCDataChannel, onFailure: (error: Error) => void): ChannelWriter {
  let failed = false;
  let tail: Promise<void> = Promise.resolve();
  channel.bufferedAmountLowThreshold = lowWaterBytes;
  const open = (): boolean => !failed && channel.readyState === 'open';
  const drained = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const finish = (error?: Error): void => {
        clearInterval(check);
        low.unSubscribe();
        closed.unSubscribe();
        if (error === undefined) resolve();
        else reject(error);
      };
      const done = (): void => finish();
      const low = channel.bufferedAmountLow.subscribe(done);
      const closed = channel.stateChanged.subscribe((state) => {
        if (state !== 'open') done();
      });
      // The low-water event is the wake-up; the check catches a drain that happened before subscribing.
      const check = setInterval(() => {
        if (channel.bufferedAmount <= lowWaterBytes || !open()) done();
        else if (Date.now() - started > drainTimeoutMs) finish(new Error(`the peer read nothing for ${drainTimeoutMs / 1000} s`));
      }, 50);
    });
  return {
    write(texts) {
      const run = tail.then(async () => {
        for (const text of texts) {
          if (!open()) return;
          if (channel.bufferedAmount > highWaterBytes) await drained();
          if (!open()) return;
          channel.send(text);
        }
      });
      // One failed write ends the session; the chain stays usable (and silent) for the writes queued behind it.
      tail = run.catch((error: unknown) => {
        if (failed) return;
        failed = true;
        onFailure(error instanceof Error ? error : new Error(String(error)));
      });
      return tail;
    },
  };
}
