/**
 * The logger the host writes to. pino's logger satisfies it. It must never write to stdout:
 * stdout carries native-messaging frames and nothing else.
 */
export interface NativeMessagingLogger {
  debug(objectOrMessage: object | string, message?: string): void;
  info(objectOrMessage: object | string, message?: string): void;
  warn(objectOrMessage: object | string, message?: string): void;
  error(objectOrMessage: object | string, message?: string): void;
}

/** A logger that drops everything (the default when none is injected). */
export const silentLogger: NativeMessagingLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
