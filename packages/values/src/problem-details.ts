import { type TabAgentError, toTabAgentError, type ErrorCode } from './errors.js';

/**
 * RFC 7807 problem document, the error body of every transport (HTTP `application/problem+json`,
 * native-messaging and WebRTC `error` objects). The status is part of the problem format, so the
 * code-to-status table lives here once and all three transports share it (rule of three).
 */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  retryable?: boolean;
  [extension: string]: unknown;
}

const problemTable: Record<ErrorCode, { status: number; title: string }> = {
  invalid_request: { status: 400, title: 'Invalid request' },
  context_length_exceeded: { status: 400, title: 'Context length exceeded' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  not_found: { status: 404, title: 'Not found' },
  model_not_found: { status: 404, title: 'Model not found' },
  conflict: { status: 409, title: 'Conflict' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  invalid_model: { status: 422, title: 'Invalid model' },
  rate_limited: { status: 429, title: 'Too many requests' },
  cancelled: { status: 499, title: 'Cancelled' },
  internal_error: { status: 500, title: 'Internal server error' },
  not_implemented: { status: 501, title: 'Not implemented' },
  model_not_loaded: { status: 503, title: 'Model not loaded' },
  out_of_memory: { status: 507, title: 'Insufficient memory' },
  busy: { status: 503, title: 'Server busy' },
  timeout: { status: 504, title: 'Timeout' },
  insufficient_storage: { status: 507, title: 'Insufficient storage' },
  upstream_error: { status: 502, title: 'Upstream error' },
};

/** The status a problem document of this code carries. */
export function problemStatusForCode(code: ErrorCode): number {
  return problemTable[code].status;
}

/** Base URI of problem `type`s. */
export const problemTypeBase = 'https://tabagent.dev/errors/';

/**
 * Serialises any thrown value as a problem document. Internal errors never reveal their message,
 * stack or cause.
 */
export function toProblemDetails(error: unknown, instance?: string): ProblemDetails {
  const tabAgentError: TabAgentError = toTabAgentError(error);
  const { status, title } = problemTable[tabAgentError.code];
  const detail = tabAgentError.code === 'internal_error' ? 'An unexpected error occurred; see the server log.' : tabAgentError.message;
  const problem: ProblemDetails = {
    type: `${problemTypeBase}${tabAgentError.code.replaceAll('_', '-')}`,
    title,
    status,
    detail,
    code: tabAgentError.code,
  };
  if (instance !== undefined) problem.instance = instance;
  if (tabAgentError.retryable) problem.retryable = true;
  if (tabAgentError.code !== 'internal_error' && tabAgentError.details) {
    for (const [key, value] of Object.entries(tabAgentError.details)) {
      if (!(key in problem)) problem[key] = value;
    }
  }
  return problem;
}
