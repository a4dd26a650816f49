import type { IncomingMessage, ServerResponse } from 'node:http';
import { CancelledError, type CallContext, type CallerIdentity } from '@tabagent/values';

/**
 * The call context of one HTTP request. Its AbortSignal is made on first use (most handlers,
 * health included, never read it) and aborts when the client disconnects before the response
 * finished, including when that happened before the handler asked for the signal, or when the
 * server shuts down (`shutdownSignal`). The getter is an own enumerable property, so spreading
 * the context (`{ ...context }`) keeps a live signal.
 */
export function createHttpCallContext(
  requestId: string,
  caller: CallerIdentity,
  request: IncomingMessage,
  response: ServerResponse,
  shutdownSignal?: AbortSignal,
): CallContext {
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
        else if (shutdownSignal?.aborted === true) created.abort(shuttingDown());
        else {
          const onShutdown = (): void => created.abort(shuttingDown());
          shutdownSignal?.addEventListener('abort', onShutdown, { once: true });
          response.once('close', () => {
            // One listener per request on a long-lived signal: removed when the request ends.
            shutdownSignal?.removeEventListener('abort', onShutdown);
            if (!response.writableFinished) created.abort(disconnected());
          });
        }
      }
      return controller.signal;
    },
  };
}

function shuttingDown(): Error {
  return new CancelledError('The server is shutting down');
}

/** The request's socket, not the response's: a pipelined response has no socket yet. */
function isDisconnected(request: IncomingMessage, response: ServerResponse): boolean {
  if (response.writableFinished) return false;
  return response.destroyed || request.socket.destroyed;
}

function disconnected(): Error {
  return new CancelledError('The client disconnected');
}

/** Who an HTTP request comes from, as the guard found it: origin, API key, pairing token, remote address. */
export function callerOfRequestState(state: {
  origin: string | undefined;
  authenticated: boolean;
  pairing?: { id: string; scope: 'chat' | 'full' };
  address?: string;
}): CallerIdentity {
  return {
    ...(state.origin === undefined ? {} : { origin: state.origin }),
    apiKey: state.authenticated,
    ...(state.pairing === undefined ? {} : { pairing: { id: state.pairing.id, scope: state.pairing.scope } }),
    ...(state.address === undefined ? {} : { address: state.address }),
  };
}
