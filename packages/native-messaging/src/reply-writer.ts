import type { Writable } from 'node:stream';
import { encodeFrameText } from './frame-encoder.js';
import type { Logger } from '@tabagent/values';

/** Writes replies as whole frames, one after another, never interleaved. */
export interface ReplyWriter {
  /** The JSON texts of one route-envelope message (itself or its continuation parts), as consecutive frames. */
  sendTexts(texts: readonly string[]): Promise<void>;
  /** A legacy reply; when larger than the limit it is replaced by an error reply. */
  sendLegacy(message: { messageId: unknown; status: 'success' | 'error' } & Record<string, unknown>): Promise<void>;
  /** A legacy push frame before the reply (`{messageId, type, payload}`); dropped when over the frame limit. */
  sendPush(message: { messageId: unknown; type: string } & Record<string, unknown>): Promise<void>;
  /** Resolves once everything queued so far is handed to the output. */
  flush(): Promise<void>;
}

/** Options of `createReplyWriter`. */
export interface ReplyWriterOptions {
  output: Writable;
  maxOutgoingBytes: number;
  logger: Logger;
  /** Called once when the output fails (EPIPE, EAGAIN on an fs stream, ...): replies can no longer reach the browser. */
  onOutputFailure?: (error: Error) => void;
}

function waitForDrain(output: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      output.off('drain', done);
      output.off('close', done);
      output.off('error', done);
      resolve();
    };
    output.on('drain', done);
    output.on('close', done);
    output.on('error', done);
  });
}

class QueuedReplyWriter implements ReplyWriter {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private outputFailed = false;

  constructor(private readonly options: ReplyWriterOptions) {
    options.output.on('error', (error: Error) => {
      // EPIPE when the browser closed the port: replies have nowhere to go, which is not a crash.
      if (this.outputFailed) return;
      this.outputFailed = true;
      options.logger.error({ err: error }, 'native messaging output failed; replies can no longer reach the browser, ending the session');
      options.onOutputFailure?.(error);
    });
  }

  sendTexts(texts: readonly string[]): Promise<void> {
    return this.enqueue(texts.map((text) => encodeFrameText(text)));
  }

  sendPush(message: { messageId: unknown; type: string } & Record<string, unknown>): Promise<void> {
    const json = JSON.stringify(message);
    // Progress is advisory: one too large to send is skipped rather than failing the request.
    if (Buffer.byteLength(json, 'utf8') > this.options.maxOutgoingBytes) return Promise.resolve();
    return this.enqueue([encodeFrameText(json)]);
  }

  sendLegacy(message: { messageId: unknown; status: 'success' | 'error' } & Record<string, unknown>): Promise<void> {
    const json = JSON.stringify(message);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes <= this.options.maxOutgoingBytes) return this.enqueue([encodeFrameText(json)]);
    const limit = this.options.maxOutgoingBytes;
    const tooLarge = {
      messageId: message.messageId,
      status: 'error',
      code: 'payload_too_large',
      message: `The reply (${bytes} bytes) exceeds the 1 MB native messaging limit (${limit} bytes); ask for less (e.g. fewer lines) or use the route envelope, which splits large replies.`,
    };
    this.options.logger.warn({ messageId: message.messageId, bytes, limit }, 'legacy reply exceeds the native messaging limit');
    return this.enqueue([encodeFrameText(JSON.stringify(tooLarge))]);
  }

  flush(): Promise<void> {
    return this.tail;
  }

  private enqueue(frames: Buffer[]): Promise<void> {
    // Fast path: nothing queued and the output has room, so the frames go out now, whole and in
    // order, without a trip through the promise chain (the common case for small replies).
    if (this.queued === 0 && !this.options.output.writableNeedDrain) {
      this.writeNow(frames);
      return Promise.resolve();
    }
    this.queued += 1;
    this.tail = this.tail.then(async () => {
      const { output } = this.options;
      for (const frame of frames) {
        if (!this.canWrite()) break;
        if (!output.write(frame)) await waitForDrain(output);
      }
      this.queued -= 1;
    });
    return this.tail;
  }

  private canWrite(): boolean {
    const { output } = this.options;
    return !this.outputFailed && !output.destroyed && !output.writableEnded;
  }

  private writeNow(frames: Buffer[]): void {
    for (const frame of frames) {
      if (!this.canWrite()) return;
      this.options.output.write(frame);
    }
  }
}

/** Creates the single write queue of a host. */
export function createReplyWriter(options: ReplyWriterOptions): ReplyWriter {
  return new QueuedReplyWriter(options);
}
