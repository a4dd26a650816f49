/**
 * The one logger interface every package writes to (pino's logger fits it). Libraries never use
 * `console`, and nothing may write to stdout: in native-messaging mode stdout carries frames only.
 */
export interface Logger {
  debug(objectOrMessage: object | string, message?: string): void;
  info(objectOrMessage: object | string, message?: string): void;
  warn(objectOrMessage: object | string, message?: string): void;
  error(objectOrMessage: object | string, message?: string): void;
}

const drop = (): void => undefined;

/** A logger that drops everything: the default wherever none is injected. */
export const silentLogger: Logger = { debug: drop, info: drop, warn: drop, error: drop };
