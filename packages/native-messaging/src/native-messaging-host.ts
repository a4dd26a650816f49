import { randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEnvelopeSession, isContinuationMessage, isJsonObject, type EnvelopeSession, type JsonObject } from '@tabagent/route-envelope';
import {
  BusyError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  toProblemDetails,
  yieldingJsonThresholdChars,
  type AppStateProvider,
} from '@tabagent/values';
import { createFrameDecoder, decodeLargeFrame, type DecodedFrame, type FrameDecoder } from './frame-decoder.js';
import { defaultMaxIncomingBytes, defaultMaxOutgoingBytes } from './frame-limits.js';
import { getLegacyAction, immediateLegacyReply } from './legacy-actions.js';
import { silentLogger, type Logger } from '@tabagent/values';
import { createReplyWriter, type ReplyWriter } from './reply-writer.js';
import { createRouteCaller } from './route-caller.js';

/** Options of `createNativeMessagingHost`. */
export interface NativeMessagingHostOptions {
  /** Bytes from the browser (the host's stdin). */
  input: Readable;
  /** Bytes to the browser (the host's stdout): frames and nothing else. */
  output: Writable;
  /** Serves every route; legacy actions are mapped onto its routes. */
  provider: AppStateProvider;
  /** Where diagnostics go (stderr or a file, never stdout). Default: silent. */
  logger?: Logger;
  /** The caller's origin, `chrome-extension://<id>/` (see `parseNativeHostArguments`). */
  callerOrigin?: string;
  /** Largest accepted browser-to-host message body (default 64 MiB). */
  maxIncomingBytes?: number;
  /** Largest host-to-browser message body (default 1,048,576 bytes, Chrome's limit). */
  maxOutgoingBytes?: number;
  /** Server version reported by `handshake`, `ping` and `get_version`. */
  version: string;
  /** How long to wait for aborted in-flight calls to settle after stdin ends (default 2000 ms). */
  shutdownGraceMs?: number;
  /** Calls that may run at once; a message past it is answered `busy` (503, retryable) at once (default 64). */
  maxConcurrentCalls?: number;
}

/** Why a host session ended. */
export type NativeHostExitReason = 'input-ended' | 'closed' | 'protocol-error' | 'input-error' | 'output-error';

/** A running host session. */
export interface NativeMessagingHost {
  /**
   * Resolves once the session is over (stdin ended, `close()`, or a frame that leaves the stream
   * untrustworthy) and in-flight calls have been aborted and settled; the caller then exits.
   */
  readonly done: Promise<NativeHostExitReason>;
  /** Ends the session: stops reading, aborts in-flight calls. Idempotent. */
  close(): void;
}

/** Resolves after `ms` without keeping the process alive. */
function delay(ms: number): Promise<void> {
  return sleep(ms, undefined, { ref: false });
}

class NativeMessagingHostSession implements NativeMessagingHost {
  readonly done: Promise<NativeHostExitReason>;
  private resolveDone!: (reason: NativeHostExitReason) => void;
  private readonly decoder: FrameDecoder;
  private readonly writer: ReplyWriter;
  private readonly logger: Logger;
  private readonly envelope: EnvelopeSession;
  private finishing = false;
  /** The decoding of a large frame (and the frames that came after it), while one runs. */
  private decoding: Promise<void> | undefined;
  private readonly onData = (chunk: Buffer | string): void => this.receive(chunk);
  private readonly onEnd = (): void => {
    if (this.decoder.bufferedBytes > 0)
      this.logger.warn({ bytes: this.decoder.bufferedBytes }, 'native messaging input ended inside a frame; the partial frame is dropped');
    // Frames that came before the end are handled first.
    if (this.decoding === undefined) this.finish('input-ended');
    else void this.decoding.finally(() => this.finish('input-ended'));
  };
  private readonly onError = (error: Error): void => {
    this.logger.error({ err: error }, 'native messaging input failed');
    this.finish('input-error');
  };

  constructor(private readonly options: NativeMessagingHostOptions) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    this.logger = options.logger ?? silentLogger;
    this.decoder = createFrameDecoder({ maxFrameBytes: options.maxIncomingBytes ?? defaultMaxIncomingBytes, deferAboveBytes: yieldingJsonThresholdChars });
    this.writer = createReplyWriter({
      output: options.output,
      maxOutgoingBytes: options.maxOutgoingBytes ?? defaultMaxOutgoingBytes,
      logger: this.logger,
      // A session whose replies are lost must end (the browser reconnects), never linger mute.
      onOutputFailure: () => this.finish('output-error'),
    });
    const maxOutgoingBytes = options.maxOutgoingBytes ?? defaultMaxOutgoingBytes;
    this.envelope = createEnvelopeSession({
      provider: options.provider,
      transport: 'native-messaging',
      caller: options.callerOrigin === undefined ? {} : { origin: options.callerOrigin },
      send: (texts) => this.writer.sendTexts(texts),
      maxMessageBytes: maxOutgoingBytes,
      ...(options.maxConcurrentCalls === undefined ? {} : { maxConcurrentCalls: options.maxConcurrentCalls }),
      onUnexpectedError: (error) => this.logger.error({ err: error }, 'native messaging request failed unexpectedly'),
    });
    options.input.on('data', this.onData);
    options.input.on('end', this.onEnd);
    options.input.on('close', this.onEnd);
    options.input.on('error', this.onError);
  }

  close(): void {
    this.finish('closed');
  }

  private receive(chunk: Buffer | string): void {
    if (this.finishing) return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    for (const frame of this.decoder.push(bytes)) this.dispatch(frame);
  }

  /**
   * Handles a frame now, or, while a large frame is being decoded (in slices, so other work runs
   * meanwhile), after it: frames are handled in the order they came, pings included.
   */
  private dispatch(frame: DecodedFrame): void {
    if (this.decoding === undefined && frame.kind !== 'large') {
      this.handleFrame(frame);
      return;
    }
    const next = (this.decoding ?? Promise.resolve()).then(async () => {
      if (this.finishing) return;
      this.handleFrame(frame.kind === 'large' ? await decodeLargeFrame(frame) : frame);
    });
    this.decoding = next;
    next
      .catch((error: unknown) => this.logger.error({ err: error }, 'native messaging: a frame could not be handled'))
      .finally(() => {
        if (this.decoding === next) this.decoding = undefined;
      });
  }

  private handleFrame(frame: DecodedFrame): void {
    if (frame.kind === 'large') throw new Error('a large frame is decoded before it is handled');
    if (frame.kind === 'message') {
      this.handleFrameValue(frame.value);
      return;
    }
    if (frame.kind === 'malformed') {
      // The code and size only: the parser's message quotes the start of the input, which may be a token.
      this.logger.warn({ code: frame.error.code, bytes: frame.byteLength }, 'native messaging: a frame was not valid JSON');
      void this.sendProtocolError(frame.error);
      return;
    }
    const error = new PayloadTooLargeError(
      `A message declares ${frame.declaredBytes} bytes, more than the ${frame.maxBytes}-byte limit; the stream can no longer be read, so the host exits (the browser reconnects).`,
      { details: { declared_bytes: frame.declaredBytes, max_bytes: frame.maxBytes } },
    );
    this.logger.error({ declared_bytes: frame.declaredBytes, max_bytes: frame.maxBytes }, `native messaging stream is no longer trustworthy: ${error.message}`);
    void this.sendProtocolError(error);
    this.finish('protocol-error');
  }

  /** A reply for a message whose envelope is unknown: carries both envelopes' error fields. */
  private sendProtocolError(error: unknown, ids: { request_id?: unknown; messageId?: unknown } = {}): Promise<void> {
    const problem = toProblemDetails(error);
    const requestId = typeof ids.request_id === 'string' || typeof ids.request_id === 'number' ? ids.request_id : null;
    return this.envelope.sendError(requestId, error, { messageId: ids.messageId, status: 'error', message: problem.detail });
  }

  private handleFrameValue(value: unknown): void {
    // handshake, ping and get_version are answered synchronously, with no call context or
    // provider: they are the extension's connection check and must never wait behind other work.
    if (isJsonObject(value) && typeof value.action === 'string') {
      const fields = immediateLegacyReply(value.action, this.options.version);
      if (fields !== undefined) {
        const { messageId } = value;
        void this.writer.sendLegacy(Object.assign({ messageId, status: 'success' as const }, fields));
        return;
      }
    }
    if (isJsonObject(value) && 'action' in value) {
      this.handleLegacy(value);
      return;
    }
    // Parts of a large route request are the envelope session's to reassemble.
    if (isContinuationMessage(value)) {
      this.envelope.receive(value);
      return;
    }
    if (isJsonObject(value) && !('id' in value || 'route' in value)) {
      void this.sendProtocolError(new InvalidRequestError('A message needs `action` (legacy envelope) or `id` (route envelope)'), value);
      return;
    }
    if (!isJsonObject(value)) {
      void this.sendProtocolError(new InvalidRequestError('A message must be a JSON object: {action, messageId, ...} or {id, request_id, payload}'));
      return;
    }
    // A flood of frames must not become a flood of calls; the refusal carries both envelopes' fields.
    const inFlight = this.envelope.inFlight;
    if (inFlight >= (this.options.maxConcurrentCalls ?? 64)) {
      void this.sendProtocolError(new BusyError(`${inFlight} calls are running; try again shortly`, { details: { retry_after_seconds: 1 } }), value);
      return;
    }
    this.envelope.receive(value);
  }

  private handleLegacy(message: JsonObject): void {
    const { action, messageId, ...fields } = message;
    const reply = async (result: Promise<JsonObject>): Promise<void> => {
      try {
        const replyFields = await result;
        // messageId and status lead the reply, and an adapter's fields can never replace them.
        await this.writer.sendLegacy(Object.assign({ messageId, status: 'success' as const }, replyFields, { messageId, status: 'success' as const }));
      } catch (error) {
        const problem = toProblemDetails(error);
        await this.writer.sendLegacy({ messageId, status: 'error', message: problem.detail, code: problem.code, error: problem });
      }
    };
    const requestId = typeof messageId === 'string' && messageId.length > 0 ? messageId : randomUUID();
    this.envelope.run(
      requestId,
      async (context) => {
        if (typeof action !== 'string') {
          await reply(Promise.reject(new InvalidRequestError('action must be a string')));
          return;
        }
        const spec = getLegacyAction(action);
        if (spec === undefined) {
          await reply(Promise.reject(new NotFoundError(`Unknown action: ${action}`, { details: { action } })));
          return;
        }
        const routes = createRouteCaller(this.options.provider, context);
        const push = (frame: Record<string, unknown>): Promise<void> => this.writer.sendPush({ type: 'push', ...frame, messageId });
        await reply(spec.run({ fields, routes, version: this.options.version, push }));
      },
      (busy) => this.sendProtocolError(busy, { messageId }),
    );
  }

  private finish(reason: NativeHostExitReason): void {
    if (this.finishing) return;
    this.finishing = true;
    const { input } = this.options;
    input.off('data', this.onData);
    input.off('end', this.onEnd);
    input.off('close', this.onEnd);
    input.off('error', this.onError);
    if (reason !== 'input-ended') input.destroy();
    this.envelope.close(new DOMException('The native messaging session ended', 'AbortError'));
    void this.settle(reason);
  }

  private async settle(reason: NativeHostExitReason): Promise<void> {
    const graceMs = this.options.shutdownGraceMs ?? 2000;
    const grace = delay(graceMs);
    await this.envelope.settle(graceMs);
    await Promise.race([this.writer.flush(), grace]);
    this.logger.debug({ reason }, 'native messaging session ended');
    this.resolveDone(reason);
  }
}

/**
 * Runs a native-messaging host over a pair of streams (the process's stdin/stdout in
 * production). Both envelopes are served concurrently through one provider.
 */
export function createNativeMessagingHost(options: NativeMessagingHostOptions): NativeMessagingHost {
  return new NativeMessagingHostSession(options);
}
