/** The logger the transport writes to; pino's logger satisfies it. */
export interface WebRtcLogger {
  debug(objectOrMessage: object | string, message?: string): void;
  info(objectOrMessage: object | string, message?: string): void;
  warn(objectOrMessage: object | string, message?: string): void;
  error(objectOrMessage: object | string, message?: string): void;
}

/** A logger that drops everything (the default when none is injected). */
export const silentWebRtcLogger: WebRtcLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
