/** Where the loader reports what it chose or worked around (pino fits). No console in libraries. */
export interface OnnxLoaderLogger {
  debug(objOrMsg: object | string, msg?: string): void;
  info(objOrMsg: object | string, msg?: string): void;
  warn(objOrMsg: object | string, msg?: string): void;
  error(objOrMsg: object | string, msg?: string): void;
}
