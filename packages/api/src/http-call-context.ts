import type { IncomingMessage, ServerResponse } from 'node:http';
import { CancelledError, type CallContext, type CallerIdentity } from '@tabagent/values';

/**
 * The call context of one HTTP request. Its AbortSignal is made on first use (most handlers,
 * health included, never read it) and aborts when the client disconnects before the response
 * finished, including when that happened before the handler asked for the signal. The getter is
 * an own enumerable property, so spreading the context (`{ ...context }`) keeps a live signal.
 */
export function createHttpCallContext(requestId: string, caller: CallerIdentity, request: IncomingMessage, response: ServerResponse): CallContext {
  let controller: AbortController | undefined;
  return {
    requestId,
    transport: 'http',
    caller,
    get signal(): AbortSignal {
      if (controller === undefined) {
        const created = new AbortController();
        controller = created;
        if (isDisconnected(request, response)) created.abort(disconnected());
        else
          response.once('close', () => {
            if (!response.writableFinished) created.abort(disconnected());
          });
      }
      return controller.signal;
    },
  };
}

/** The request's socket, not the response's: a pipelined response has no socket yet. */
function isDisconnected(request: IncomingMessage, response: ServerResponse): boolean {
  if (response.writableFinished) return false;
  return response.destroyed || request.socket.destroyed;
}

function disconnected(): Error {
  return new CancelledError('The client disconnected');
}
