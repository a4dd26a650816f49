import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

/** Options of the server logger. */
export interface ServerLoggerOptions {
  level: string;
  /** Log file; also written to stderr. */
  logFile?: string;
  /** Write to stderr too (default true). */
  stderr?: boolean;
  /**
   * Human-readable lines on stderr (default: when stderr is a terminal). The log file stays JSON
   * lines, as does stderr when it is a pipe or a file.
   */
  pretty?: boolean;
}

/**
 * Structured logs to stderr and a log file, never stdout: in native-messaging mode stdout carries
 * frames only, and one stray byte there breaks the extension's connection.
 */
export function createServerLogger(options: ServerLoggerOptions): Logger {
  const streams: { stream: NodeJS.WritableStream | ReturnType<typeof pino.destination> }[] = [];
  if (options.stderr !== false) {
    const pretty = options.pretty ?? process.stderr.isTTY;
    // pino-pretty as an in-process stream (no worker thread): synchronous to stderr, colours on a terminal.
    streams.push({
      stream: pretty
        ? PinoPretty({ destination: 2, colorize: true, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' })
        : pino.destination({ fd: 2, sync: false }),
    });
  }
  if (options.logFile) streams.push({ stream: pino.destination({ dest: options.logFile, mkdir: true, sync: false }) });
  return pino(
    { level: options.level, base: { pid: process.pid } },
    pino.multistream(streams.map((entry) => ({ ...entry, level: options.level as pino.Level }))),
  );
}
