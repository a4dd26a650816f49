/** Minimal logger the package writes to (pino-compatible); nothing is logged without one. */
export interface GgufLoaderLogger {
  debug(objectOrMessage: object | string, message?: string): void;
  info(objectOrMessage: object | string, message?: string): void;
  warn(objectOrMessage: object | string, message?: string): void;
  error(objectOrMessage: object | string, message?: string): void;
}

/** A logger that drops everything. */
export const silentLogger: GgufLoaderLogger = { debug() {}, info() {}, warn() {}, error() {} };
