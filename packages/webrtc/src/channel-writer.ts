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

/** Creates the writer of one channel; texts written after the channel closed are dropped. */
export function createChannelWriter(channel: RTCDataChannel): ChannelWriter {
  let tail: Promise<void> = Promise.resolve();
  channel.bufferedAmountLowThreshold = lowWaterBytes;
  const open = (): boolean => channel.readyState === 'open';
  const drained = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearInterval(check);
        low.unSubscribe();
        closed.unSubscribe();
        resolve();
      };
      const low = channel.bufferedAmountLow.subscribe(done);
      const closed = channel.stateChanged.subscribe((state) => {
        if (state !== 'open') done();
      });
      // The low-water event is the wake-up; the check catches a drain that happened before subscribing.
      const check = setInterval(() => {
        if (channel.bufferedAmount <= lowWaterBytes || !open()) done();
      }, 50);
    });
  return {
    write(texts) {
      tail = tail.then(async () => {
        for (const text of texts) {
          if (!open()) return;
          if (channel.bufferedAmount > highWaterBytes) await drained();
          if (!open()) return;
          channel.send(text);
        }
      });
      return tail;
    },
  };
}
