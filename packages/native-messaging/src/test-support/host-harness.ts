import { PassThrough } from 'node:stream';
import type { AppStateProvider } from '@tabagent/values';
import { createContinuationReassembler } from '@tabagent/route-envelope';
import { createFrameDecoder } from '../frame-decoder.js';
import { encodeFrame } from '../frame-encoder.js';
import type { Logger } from '@tabagent/values';
import { createNativeMessagingHost, type NativeMessagingHost, type NativeMessagingHostOptions } from '../native-messaging-host.js';

/** One logged line (the test logger records instead of printing). */
export interface LoggedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  object: object | string;
  message: string | undefined;
}

/** A host over PassThrough streams, with a client that frames, reads and reassembles. */
export interface HostHarness {
  host: NativeMessagingHost;
  input: PassThrough;
  /** Every message written by the host, decoded, in order (continuations not reassembled). */
  rawReplies: unknown[];
  logs: LoggedLine[];
  send(message: unknown): void;
  sendBytes(bytes: Uint8Array): void;
  /** Next whole reply (continuations reassembled), waiting for it. */
  next(): Promise<Record<string, unknown>>;
  /** Waits for the next reply whose request_id or messageId equals `id`. */
  replyTo(id: string): Promise<Record<string, unknown>>;
  /** Bytes of host output not forming a whole frame (must be 0). */
  leftoverBytes(): number;
  outputBytes(): number;
}

/** Starts a host for tests. */
export function startHostHarness(provider: AppStateProvider, options: Partial<NativeMessagingHostOptions> = {}): HostHarness {
  const input = new PassThrough();
  const output = new PassThrough();
  const logs: LoggedLine[] = [];
  const log =
    (level: LoggedLine['level']) =>
    (object: object | string, message?: string): void => {
      logs.push({ level, object, message });
    };
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  const host = createNativeMessagingHost({
    input,
    output,
    provider,
    logger,
    version: '1.2.3',
    callerOrigin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop/',
    ...options,
  });
  const decoder = createFrameDecoder({ maxFrameBytes: 64 * 1024 * 1024 });
  const reassembler = createContinuationReassembler();
  const rawReplies: unknown[] = [];
  const whole: Record<string, unknown>[] = [];
  const waiters: Array<() => void> = [];
  let totalOutput = 0;
  output.on('data', (chunk: Buffer) => {
    totalOutput += chunk.length;
    for (const frame of decoder.push(chunk)) {
      if (frame.kind !== 'message') throw new Error(`host wrote a bad frame: ${frame.kind}`);
      rawReplies.push(frame.value);
      const message = reassembler.accept(frame.value);
      if (message !== undefined) whole.push(message as Record<string, unknown>);
    }
    for (const wake of waiters.splice(0)) wake();
  });
  const waitFor = async (pick: () => Record<string, unknown> | undefined): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = pick();
      if (found !== undefined) return found;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return {
    host,
    input,
    rawReplies,
    logs,
    send: (message) => input.write(encodeFrame(message)),
    sendBytes: (bytes) => input.write(bytes),
    next: () => waitFor(() => whole.shift()),
    replyTo: (id) =>
      waitFor(() => {
        const index = whole.findIndex((reply) => reply.request_id === id || reply.messageId === id);
        return index === -1 ? undefined : whole.splice(index, 1)[0];
      }),
    leftoverBytes: () => decoder.bufferedBytes,
    outputBytes: () => totalOutput,
  };
}

/** A raw frame with a declared length and arbitrary body bytes. */
export function rawFrame(body: Uint8Array, declaredLength = body.length): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(declaredLength, 0);
  return Buffer.concat([header, body]);
}
