/**
 * The one error hierarchy of TabAgent. Library code throws these; only transports turn them into
 * their wire form (see `toProblemDetails`). Each class has a stable `code` string.
 *
 * `instanceof` breaks when two copies of this package are installed, so every error carries a
 * `Symbol.for` marker and `TabAgentError.isInstance()` checks the marker instead.
 */

const tabAgentErrorMarker = Symbol.for('tabagent.error');

/** Stable machine-readable error codes shared by every package and transport. */
export const errorCodes = [
  'invalid_request',
  'context_length_exceeded',
  'not_found',
  'model_not_found',
  'model_not_loaded',
  'invalid_model',
  'out_of_memory',
  'cancelled',
  'not_implemented',
  'conflict',
  'unauthorized',
  'forbidden',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'busy',
  'timeout',
  'insufficient_storage',
  'upstream_error',
  'internal_error',
] as const;

/** One of the stable error codes. */
export type ErrorCode = (typeof errorCodes)[number];

/** Options common to every TabAgent error. */
export interface TabAgentErrorOptions {
  /** The underlying error, kept for logs; never sent to clients. */
  cause?: unknown;
  /** Structured, client-safe details (field errors, figures, the missing capability). */
  details?: Record<string, unknown>;
  /** Whether the same request may succeed if retried later. */
  retryable?: boolean;
}

/** Base class of every error TabAgent packages throw on purpose. */
export class TabAgentError extends Error {
  readonly [tabAgentErrorMarker] = true;
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: TabAgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TabAgentError';
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }

  /** True for any TabAgent error, even one thrown by another installed copy of this package. */
  static isInstance(value: unknown): value is TabAgentError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[tabAgentErrorMarker] === true;
  }
}

/** A TabAgentError subclass with a fixed code, as `defineErrorClass` makes them. */
export interface TabAgentErrorClass {
  new (message: string, options?: TabAgentErrorOptions): TabAgentError;
  readonly prototype: TabAgentError;
  /** True for any TabAgent error, even one thrown by another installed copy of this package. */
  isInstance(value: unknown): value is TabAgentError;
}

// The declared return type keeps the subclasses nominal Error subclasses in the emitted .d.ts
// (inferred, they were flattened to structural object types that no longer extend Error).
function defineErrorClass(code: ErrorCode, name: string, retryable = false): TabAgentErrorClass {
  const ErrorClass = class extends TabAgentError {
    constructor(message: string, options: TabAgentErrorOptions = {}) {
      super(code, message, { retryable, ...options });
      this.name = name;
    }
  };
  Object.defineProperty(ErrorClass, 'name', { value: name });
  return ErrorClass;
}

/** One field that failed validation. */
export interface FieldIssue {
  /** Dotted path of the field (`messages.0.role`), empty for the whole request. */
  path: string;
  message: string;
}

/** The request does not match the route's schema or is otherwise unusable. */
export class InvalidRequestError extends TabAgentError {
  constructor(message: string, options: TabAgentErrorOptions & { issues?: FieldIssue[] } = {}) {
    const details = options.issues ? { ...options.details, issues: options.issues } : options.details;
    super('invalid_request', message, { ...options, details });
    this.name = 'InvalidRequestError';
  }
}

/** The prompt alone does not fit in the model's context (OpenAI's code of the same name). */
export const ContextLengthExceededError = defineErrorClass('context_length_exceeded', 'ContextLengthExceededError');
/** A named resource (conversation, session, document, route) does not exist. */
export const NotFoundError = defineErrorClass('not_found', 'NotFoundError');
/** No model with this id is registered. */
export const ModelNotFoundError = defineErrorClass('model_not_found', 'ModelNotFoundError');
/** The model is registered but not loaded, and cannot be loaded on demand. */
export const ModelNotLoadedError = defineErrorClass('model_not_loaded', 'ModelNotLoadedError', true);
/** A model file or folder is corrupt, truncated or does not fit its task. */
export const InvalidModelError = defineErrorClass('invalid_model', 'InvalidModelError');
/** Loading or running would not fit in the available RAM/VRAM. */
export const OutOfMemoryError = defineErrorClass('out_of_memory', 'OutOfMemoryError', true);
/** The operation was aborted (client disconnect, stop request, shutdown). */
export const CancelledError = defineErrorClass('cancelled', 'CancelledError');
/** The capability behind this route is not built yet; `details.capability` names it. */
export const NotImplementedError = defineErrorClass('not_implemented', 'NotImplementedError');
/** The request conflicts with the current state (e.g. a WebRTC session in the wrong state). */
export const ConflictError = defineErrorClass('conflict', 'ConflictError');
/** Missing or wrong credentials. */
export const UnauthorizedError = defineErrorClass('unauthorized', 'UnauthorizedError');
/** The caller is known but not allowed (origin, host). */
export const ForbiddenError = defineErrorClass('forbidden', 'ForbiddenError');
/** The request body or message is larger than the configured limit. */
export const PayloadTooLargeError = defineErrorClass('payload_too_large', 'PayloadTooLargeError');
/** The request body is not in a format the route accepts. */
export const UnsupportedMediaTypeError = defineErrorClass('unsupported_media_type', 'UnsupportedMediaTypeError');
/** Too many requests from this caller. */
export const RateLimitedError = defineErrorClass('rate_limited', 'RateLimitedError', true);
/** The server is at capacity (queue full); try again later. */
export const BusyError = defineErrorClass('busy', 'BusyError', true);
/** The operation took longer than allowed. */
export const TimeoutError = defineErrorClass('timeout', 'TimeoutError', true);
/** Not enough free disk space for a download; `details` give the bytes needed and free. */
export const InsufficientStorageError = defineErrorClass('insufficient_storage', 'InsufficientStorageError');
/** A remote service (the Hugging Face Hub, a mirror) failed or sent data that did not check out. */
export const UpstreamError = defineErrorClass('upstream_error', 'UpstreamError', true);
/** A bug or an unexpected failure; details are logged, never sent. */
export const InternalError = defineErrorClass('internal_error', 'InternalError');

/** Turns anything thrown into a TabAgentError; unknown throwables become `internal_error`. */
export function toTabAgentError(error: unknown): TabAgentError {
  if (TabAgentError.isInstance(error)) return error;
  if (error instanceof Error && error.name === 'AbortError') return new CancelledError('The operation was cancelled', { cause: error });
  return new InternalError('Internal server error', { cause: error });
}
