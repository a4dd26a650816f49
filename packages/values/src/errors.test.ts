import {
  CancelledError,
  InternalError,
  InvalidRequestError,
  ModelNotFoundError,
  NotImplementedError,
  OutOfMemoryError,
  TabAgentError,
  toTabAgentError,
} from './errors.js';
import { problemStatusForCode, toProblemDetails } from './problem-details.js';
import { safeParseJson } from './safe-json.js';

describe('TabAgentError', () => {
  it('carries a stable code, name and retryable flag', () => {
    const error = new OutOfMemoryError('needs 900 MB, 300 MB free', { details: { required_mb: 900, available_mb: 300 } });
    expect(error.code).toBe('out_of_memory');
    expect(error.name).toBe('OutOfMemoryError');
    expect(error.retryable).toBe(true);
    expect(error).toBeInstanceOf(TabAgentError);
    expect(new ModelNotFoundError('x').retryable).toBe(false);
  });

  it('recognises instances by marker, even from another copy of the package', () => {
    const foreign = { [Symbol.for('tabagent.error')]: true, code: 'not_found', message: 'x' };
    expect(TabAgentError.isInstance(foreign)).toBe(true);
    expect(TabAgentError.isInstance(new Error('x'))).toBe(false);
    expect(TabAgentError.isInstance(null)).toBe(false);
  });

  it('maps unknown throwables to internal errors and AbortError to cancelled', () => {
    expect(toTabAgentError(new TypeError('boom')).code).toBe('internal_error');
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    expect(toTabAgentError(abort)).toBeInstanceOf(CancelledError);
  });
});

describe('toProblemDetails', () => {
  it('builds an RFC 7807 document with details', () => {
    expect(toProblemDetails(new NotImplementedError('Chat needs the gguf-loader', { details: { capability: 'gguf-loader' } }), '/v1/chat/completions')).toEqual(
      {
        type: 'https://tabagent.dev/errors/not-implemented',
        title: 'Not implemented',
        status: 501,
        detail: 'Chat needs the gguf-loader',
        code: 'not_implemented',
        instance: '/v1/chat/completions',
        capability: 'gguf-loader',
      },
    );
  });

  it('never leaks the message of an internal error', () => {
    const problem = toProblemDetails(new Error('secret path /home/user'));
    expect(problem.status).toBe(500);
    expect(JSON.stringify(problem)).not.toContain('secret');
    expect(toProblemDetails(new InternalError('db at /x broke', { details: { path: '/x' } }))).not.toHaveProperty('path');
  });

  it('maps codes to statuses', () => {
    expect(problemStatusForCode('invalid_request')).toBe(400);
    expect(problemStatusForCode('model_not_found')).toBe(404);
    expect(problemStatusForCode('payload_too_large')).toBe(413);
    expect(new InvalidRequestError('bad', { issues: [{ path: 'a', message: 'm' }] }).details).toEqual({ issues: [{ path: 'a', message: 'm' }] });
  });
});

describe('safeParseJson', () => {
  it('returns the value or a typed error', () => {
    expect(safeParseJson('{"a":1}')).toEqual({ success: true, value: { a: 1 } });
    const bad = safeParseJson('{"a":');
    expect(bad.success).toBe(false);
    if (!bad.success) expect(bad.error.code).toBe('invalid_request');
  });
});
