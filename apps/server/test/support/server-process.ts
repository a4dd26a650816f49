import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createFrameDecoder, encodeFrame } from '@tabagent/native-messaging';
import { createContinuationReassembler } from '@tabagent/route-envelope';

/** The built CLI, as Chrome and users start it. */
export const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** A native-messaging reply (route or legacy envelope), reassembled from continuations. */
export type Reply = Record<string, unknown>;

/** Options of `ServerProcess`. */
export interface ServerProcessOptions {
  /** Arguments after `serve` (mode, data dir, ...). */
  args: readonly string[];
  /** Extra environment variables. */
  env?: NodeJS.ProcessEnv;
  /** Leave stdout unread, like a browser that stopped reading (default false). */
  stopReadingStdout?: boolean;
}

/** `tabagent serve` as a child process, driven over its stdio like Chrome does, and over HTTP. */
export class ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stdoutChunks: Buffer[] = [];
  stderr = '';
  readonly rawMessages: unknown[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly decoder = createFrameDecoder();
  private readonly reassembler = createContinuationReassembler();
  private readonly replies: Reply[] = [];
  private waiters: (() => void)[] = [];

  constructor(options: ServerProcessOptions) {
    this.child = spawn(process.execPath, [cliPath, 'serve', ...options.args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
      this.wake();
    });
    if (options.stopReadingStdout === true) this.child.stdout.pause();
    else this.child.stdout.on('data', (chunk: Buffer) => this.onStdout(chunk));
    this.child.stdin.on('error', () => undefined);
  }

  private onStdout(chunk: Buffer): void {
    this.stdoutChunks.push(chunk);
    for (const frame of this.decoder.push(chunk)) {
      if (frame.kind !== 'message') throw new Error(`stdout carried a bad frame: ${JSON.stringify(frame)}`);
      this.rawMessages.push(frame.value);
      const whole = this.reassembler.accept(frame.value);
      if (whole !== undefined) this.replies.push(whole as Reply);
    }
    this.wake();
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async until<T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${what}: not in time; stderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  send(message: unknown): void {
    this.child.stdin.write(encodeFrame(message));
  }

  sendBytes(bytes: Buffer): void {
    this.child.stdin.write(bytes);
  }

  reply(pick: (reply: Reply) => boolean, timeoutMs = 15_000): Promise<Reply> {
    return this.until(
      () => {
        const index = this.replies.findIndex(pick);
        return index === -1 ? undefined : this.replies.splice(index, 1)[0];
      },
      'native-messaging reply',
      timeoutMs,
    );
  }

  replyTo(id: string): Promise<Reply> {
    return this.reply((reply) => reply['messageId'] === id || reply['request_id'] === id);
  }

  /** The HTTP base URL, from the "HTTP API listening" log line on stderr. */
  httpUrl(timeoutMs = 30_000): Promise<string> {
    return this.until(() => /"url":"(http:\/\/[^"]+)","dataDir"[^\n]*"msg":"HTTP API listening"/.exec(this.stderr)?.[1], 'HTTP API listening', timeoutMs);
  }

  /** Resolves once the server logged that it is up (every transport it runs is serving). */
  async ready(timeoutMs = 30_000): Promise<void> {
    await this.until(() => (this.stderr.includes('"msg":"server ready"') ? true : undefined), 'server ready', timeoutMs);
  }

  /** Resolves as soon as stderr (the log) passes the test. */
  async waitForStderr(test: (stderr: string) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    await this.until(() => (test(this.stderr) ? true : undefined), what, timeoutMs);
  }

  /** Sends a signal and resolves with the exit and how long it took. */
  async stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsedMs: number }> {
    const started = performance.now();
    this.child.kill(signal);
    const exit = await this.exited;
    return { ...exit, elapsedMs: performance.now() - started };
  }
}
