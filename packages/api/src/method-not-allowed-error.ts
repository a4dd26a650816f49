import { InvalidRequestError, TabAgentError } from '@tabagent/values';

/**
 * The path exists but not with this method. The error code table has no 405, so this stays an
 * `invalid_request` for other transports while the HTTP problem carries status 405 and `Allow`.
 */
export class MethodNotAllowedError extends InvalidRequestError {
  /** Methods the path does serve, for the `Allow` header. */
  readonly allow: readonly string[];

  constructor(method: string, path: string, allow: readonly string[]) {
    super(`${method} is not allowed on ${path}; allowed: ${allow.join(', ')}`, { details: { allow: [...allow] } });
    this.name = 'MethodNotAllowedError';
    this.allow = allow;
  }

  /** True for a MethodNotAllowedError (by name, so a second copy of this package also matches). */
  static isMethodNotAllowed(value: unknown): value is MethodNotAllowedError {
    return TabAgentError.isInstance(value) && value.name === 'MethodNotAllowedError' && Array.isArray((value as { allow?: unknown }).allow);
  }
}
