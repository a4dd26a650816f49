import { Writable } from 'node:stream';
import { format } from 'node:util';

/** Options of `claimStdoutForFrames` (the defaults are the process's own streams). */
export interface ClaimStdoutOptions {
  /** The stream frames go to (default `process.stdout`). */
  stdout?: NodeJS.WritableStream & { write: NodeJS.WritableStream['write'] };
  /** Where every other write to stdout is sent (default `process.stderr`). */
  stderr?: NodeJS.WritableStream;
  /** Also send `console.log/info/debug` to stderr (default true). */
  redirectConsole?: boolean;
}

/**
 * Reserves stdout for native-messaging frames: returns a Writable that writes to the real stdout,
 * and redirects every other `process.stdout.write` (and `console.log`) to stderr, so a library's
 * stray output cannot corrupt the frame stream.
 *
 * It writes through stdout's own stream rather than an `fs` stream on fd 1: once `process.stdout`
 * exists, libuv has made a pipe fd non-blocking, and `fs.write` then fails with EAGAIN as soon as
 * the pipe is full (a large reply, a slow reader), which an `fs.WriteStream` reports as a fatal
 * "write failed" error.
 */
export function claimStdoutForFrames(options: ClaimStdoutOptions = {}): Writable {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const writeFrame = stdout.write.bind(stdout) as (chunk: Uint8Array, callback: (error?: Error | null) => void) => boolean;
  const frames = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writeFrame(chunk, (error) => callback(error ?? null));
    },
  });
  stdout.on('error', (error: Error) => frames.destroy(error));
  stdout.write = stderr.write.bind(stderr);
  if (options.redirectConsole !== false) {
    // Reassigning console is the point: libraries that log with console.log must not reach stdout.
    const toStderr = (...values: unknown[]): void => {
      stderr.write(`${format(...values)}\n`);
    };
    console.log = toStderr;
    console.info = toStderr;
    console.debug = toStderr;
  }
  return frames;
}
