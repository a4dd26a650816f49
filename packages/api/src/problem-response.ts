import type { ServerResponse } from 'node:http';
import { InvalidRequestError, TabAgentError, toProblemDetails, type ProblemDetails } from '@tabagent/values';
import type { Logger } from '@tabagent/values';
import { MethodNotAllowedError } from './method-not-allowed-error.js';

/** Media type of every error body. */
export const problemContentType = 'application/problem+json';

/**
 * Express's router reports undecodable path parameters as plain errors with `status: 400`;
 * they are the client's fault, not ours.
 */
function normaliseError(error: unknown): unknown {
  if (TabAgentError.isInstance(error)) return error;
  if (typeof error === 'object' && error !== null && (error as { status?: unknown }).status === 400) {
    return new InvalidRequestError('Malformed request URL', { cause: error });
  }
  return error;
}

/** OpenAI's error `type` for a problem's status. */
function openAiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** The request field an error is about, as OpenAI's `param` names it (null when none). */
function openAiParam(problem: ProblemDetails): string | null {
  const issues = problem['issues'];
  if (Array.isArray(issues)) {
    const first: unknown = issues[0];
    if (typeof first === 'object' && first !== null && typeof (first as { path?: unknown }).path === 'string') return (first as { path: string }).path || null;
  }
  if (problem.code === 'model_not_found') return 'model';
  if (problem.code === 'context_length_exceeded') return 'messages';
  return null;
}

/**
 * The problem document with OpenAI's error object beside its RFC 7807 members, so one body serves
 * both: clients of OpenAI's API (the official SDKs read `error.message`, `error.code`,
 * `error.type`, `error.param`) and clients of problem documents.
 */
export function withOpenAiError(problem: ProblemDetails): ProblemDetails {
  return { ...problem, error: { message: problem.detail, type: openAiErrorType(problem.status), code: problem.code, param: openAiParam(problem) } };
}

/**
 * The one place where anything thrown becomes a problem document: status from the shared code
 * table (`toProblemDetails`), 405 for `MethodNotAllowedError`, and internal errors logged with
 * their cause but sent without it.
 */
export function problemFromError(error: unknown, instance: string, requestId: string, logger: Logger): ProblemDetails {
  const normalised = normaliseError(error);
  const problem = toProblemDetails(normalised, instance);
  if (MethodNotAllowedError.isMethodNotAllowed(normalised)) {
    problem.status = 405;
    problem.title = 'Method not allowed';
    problem.type = 'https://tabagent.dev/errors/method-not-allowed';
  }
  problem.request_id = requestId;
  const answered = withOpenAiError(problem);
  if (problem.status >= 500 && problem.code === 'internal_error') {
    logger.error({ err: error, requestId, path: instance }, 'Unexpected error while serving a request');
  } else {
    // The title, not the detail: a JSON parse error's detail quotes the start of the body (a token, a message).
    logger.debug({ requestId, path: instance, code: problem.code, status: problem.status }, problem.title);
  }
  return answered;
}

/** Status and code an error is answered with (what `problemFromError` sends), for counting. */
export function problemStatusOf(error: unknown): { status: number; code: string } {
  const normalised = normaliseError(error);
  if (MethodNotAllowedError.isMethodNotAllowed(normalised)) return { status: 405, code: 'method_not_allowed' };
  const problem = toProblemDetails(normalised);
  return { status: problem.status, code: problem.code };
}

/** How an error body is written: a problem document, or a dialect's own shape of it (Anthropic's). */
export interface ErrorBodyShape {
  contentType: string;
  render(problem: ProblemDetails): unknown;
}

const problemShape: ErrorBodyShape = { contentType: problemContentType, render: (problem) => problem };

/**
 * Writes an error as the whole response (nothing must have been sent yet): a problem document, or
 * the given shape of it, with the same status and headers (Allow, WWW-Authenticate, Retry-After).
 */
export function sendProblem(
  response: ServerResponse,
  error: unknown,
  instance: string,
  requestId: string,
  logger: Logger,
  shape: ErrorBodyShape = problemShape,
): void {
  const problem = problemFromError(error, instance, requestId, logger);
  if (response.destroyed) return;
  if (response.headersSent) {
    // A stream already started; it reports its own errors. Just make sure the socket ends.
    if (!response.writableEnded) response.end();
    return;
  }
  const body = JSON.stringify(shape.render(problem));
  const headers: Record<string, string | number> = {
    'Content-Type': shape.contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  };
  const normalised = normaliseError(error);
  if (MethodNotAllowedError.isMethodNotAllowed(normalised)) headers['Allow'] = normalised.allow.join(', ');
  if (problem.code === 'unauthorized') headers['WWW-Authenticate'] = 'Bearer';
  // A queue limit (429) or a busy server (503) says when to come back, as clients' retry logic reads it.
  if (problem.code === 'rate_limited' || problem.code === 'busy') {
    const details = TabAgentError.isInstance(normalised) ? normalised.details : undefined;
    const seconds = typeof details?.['retry_after_seconds'] === 'number' ? details['retry_after_seconds'] : 1;
    headers['Retry-After'] = String(Math.max(1, Math.ceil(seconds)));
  }
  // The rest of an oversized body is never read; close instead of draining it.
  if (problem.code === 'payload_too_large') headers['Connection'] = 'close';
  response.writeHead(problem.status, headers);
  response.end(body);
}
