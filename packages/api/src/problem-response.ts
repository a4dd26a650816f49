import type { ServerResponse } from 'node:http';
import { InvalidRequestError, TabAgentError, toProblemDetails, type ProblemDetails } from '@tabagent/values';
import type { ApiLogger } from './api-router-options.js';
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

/**
 * The one place where anything thrown becomes a problem document: status from the shared code
 * table (`toProblemDetails`), 405 for `MethodNotAllowedError`, and internal errors logged with
 * their cause but sent without it.
 */
export function problemFromError(error: unknown, instance: string, requestId: string, logger: ApiLogger): ProblemDetails {
  const normalised = normaliseError(error);
  const problem = toProblemDetails(normalised, instance);
  if (MethodNotAllowedError.isMethodNotAllowed(normalised)) {
    problem.status = 405;
    problem.title = 'Method not allowed';
    problem.type = 'https://tabagent.dev/errors/method-not-allowed';
  }
  problem.request_id = requestId;
  if (problem.status >= 500 && problem.code === 'internal_error') {
    logger.error({ err: error, requestId, path: instance }, 'Unexpected error while serving a request');
  } else {
    logger.debug({ requestId, path: instance, code: problem.code, status: problem.status }, problem.detail);
  }
  return problem;
}

/** Writes a problem document as the whole response (nothing must have been sent yet). */
export function sendProblem(response: ServerResponse, error: unknown, instance: string, requestId: string, logger: ApiLogger): void {
  const problem = problemFromError(error, instance, requestId, logger);
  if (response.destroyed) return;
  if (response.headersSent) {
    // A stream already started; it reports its own errors. Just make sure the socket ends.
    if (!response.writableEnded) response.end();
    return;
  }
  const body = JSON.stringify(problem);
  const headers: Record<string, string | number> = {
    'Content-Type': problemContentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  };
  const normalised = normaliseError(error);
  if (MethodNotAllowedError.isMethodNotAllowed(normalised)) headers['Allow'] = normalised.allow.join(', ');
  if (problem.code === 'unauthorized') headers['WWW-Authenticate'] = 'Bearer';
  // The rest of an oversized body is never read; close instead of draining it.
  if (problem.code === 'payload_too_large') headers['Connection'] = 'close';
  response.writeHead(problem.status, headers);
  response.end(body);
}
