import type { ServerResponse } from 'node:http';
import type { Logger, ProblemDetails, RouteDialect } from '@tabagent/values';
import { sendProblem, type ErrorBodyShape } from './problem-response.js';

/**
 * How the HTTP transport frames a route of this server's API or of a dialect that shares its SSE
 * transport (Anthropic's Messages, OpenAI's Responses): the stream frames, the end of a stream,
 * and the error bodies. Ollama's dialect has a router of its own (NDJSON).
 */
export interface StreamFraming {
  /** One event as SSE text. */
  frame(event: unknown): string;
  /** What ends a stream that finished (OpenAI chat's `data: [DONE]`; nothing for typed events). */
  readonly end: string;
  /** The frame that reports a failure after the stream started. */
  errorFrame(problem: ProblemDetails): string;
}

/** OpenAI's chat and completions streams: `data:` frames, `[DONE]` at the end, the error as `{"error": ...}`. */
const openAiFraming: StreamFraming = {
  frame: (event) => `data: ${JSON.stringify(event)}\n\n`,
  end: 'data: [DONE]\n\n',
  // One object that reads as OpenAI's stream error (`error.message`, `type`, `code`, `param`) and as the problem document.
  errorFrame: ({ error, ...problem }) => `data: ${JSON.stringify({ error: { ...problem, ...(error as object) } })}\n\n`,
};

/** An event named by its `type`: the Anthropic and OpenAI SDKs dispatch on the SSE `event:` line. */
function typedFrame(event: unknown): string {
  const type = (event as { type?: unknown }).type;
  return `event: ${typeof type === 'string' ? type : 'message'}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Anthropic's error `type` for a status, as Anthropic maps them. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 405:
    case 415:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** Anthropic's error body for a problem: `{type: "error", error: {type, message}, request_id}`. */
export function anthropicErrorBody(problem: ProblemDetails): { type: 'error'; error: { type: string; message: string }; request_id?: string } {
  return {
    type: 'error',
    error: { type: anthropicErrorType(problem.status), message: problem.detail },
    ...(typeof problem.request_id === 'string' ? { request_id: problem.request_id } : {}),
  };
}

const framings: Record<'default' | Exclude<RouteDialect, 'ollama'>, StreamFraming> = {
  default: openAiFraming,
  anthropic: { frame: typedFrame, end: '', errorFrame: (problem) => typedFrame(anthropicErrorBody(problem)) },
  'openai-responses': {
    frame: typedFrame,
    end: '',
    // Responses' own `error` event; a codec reports a failed generation as `response.failed` before this is ever needed.
    errorFrame: (problem) => {
      const { error } = problem as ProblemDetails & { error: { message: string; code: string; param: string | null } };
      return typedFrame({ type: 'error', code: error.code, message: error.message, param: error.param, sequence_number: 0 });
    },
  },
};

/** The framing of a route by its dialect. */
export function streamFramingOf(dialect: RouteDialect | undefined): StreamFraming {
  return dialect === undefined || dialect === 'ollama' ? framings.default : framings[dialect];
}

/** Anthropic's error bodies: its SDKs read `error.type` and `error.message`, and Claude Code shows them. */
const anthropicErrorShape: ErrorBodyShape = { contentType: 'application/json', render: anthropicErrorBody };

/** Answers an error in the route's dialect: Anthropic's body for its routes, the problem document (with OpenAI's `error` object) for every other. */
export function sendDialectError(
  dialect: RouteDialect | undefined,
  response: ServerResponse,
  error: unknown,
  instance: string,
  requestId: string,
  logger: Logger,
): void {
  sendProblem(response, error, instance, requestId, logger, dialect === 'anthropic' ? anthropicErrorShape : undefined);
}
