import { IncomingMessage, ServerResponse, createServer, type Server, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';
import { catalogueDispatchKey, type ApiApp } from './create-api-app.js';
import { enableDeferredHeaders, writeHeadWithDeferred } from './deferred-headers.js';

type LegacyConstructor = (this: unknown, ...args: unknown[]) => void;

/** Node's request/response classes are still plain functions (callable with `this`); ES classes are not. */
function isLegacyConstructor(value: unknown): value is LegacyConstructor {
  return typeof value === 'function' && !/^class\b/.test(Function.prototype.toString.call(value));
}

/**
 * Request and response classes whose prototypes are the app's `request`/`response` objects.
 * Express's `app.handle` calls `Object.setPrototypeOf(req, app.request)` on every request, and
 * that swap is the largest single cost of an Express request (about half the CPU time of a
 * health check in bench/http). When the objects are born with that prototype the swap is a
 * no-op. Returns undefined where Node's classes cannot be subclassed this way.
 */
function expressMessageClasses(app: Express): Pick<ServerOptions, 'IncomingMessage' | 'ServerResponse'> | undefined {
  const baseRequest: unknown = IncomingMessage;
  const baseResponse: unknown = ServerResponse;
  if (!isLegacyConstructor(baseRequest) || !isLegacyConstructor(baseResponse)) return undefined;
  if (
    !Object.prototype.isPrototypeOf.call(IncomingMessage.prototype, app.request) ||
    !Object.prototype.isPrototypeOf.call(ServerResponse.prototype, app.response)
  ) {
    return undefined;
  }
  const constructRequest: LegacyConstructor = baseRequest;
  const constructResponse: LegacyConstructor = baseResponse;
  function ExpressIncomingMessage(this: unknown, socket: Socket): void {
    constructRequest.call(this, socket);
  }
  ExpressIncomingMessage.prototype = app.request;
  function ExpressServerResponse(this: ServerResponse, request: IncomingMessage, options?: unknown): void {
    constructResponse.call(this, request, options);
    enableDeferredHeaders(this);
  }
  ExpressServerResponse.prototype = app.response;
  // The guard's headers are written with the status line (see deferred-headers.ts).
  Object.defineProperty(app.response, 'writeHead', { value: writeHeadWithDeferred, writable: true, configurable: true });
  return {
    IncomingMessage: ExpressIncomingMessage as unknown as typeof IncomingMessage,
    ServerResponse: ExpressServerResponse as unknown as typeof ServerResponse,
  };
}

/**
 * `http.createServer(app)` for an Express app (typically `createApiApp`), with request and
 * response objects created with the app's prototypes so Express need not swap them per request.
 * Behaves exactly like `http.createServer(serverOptions, app)` otherwise (falls back to it where
 * Node's classes do not allow this). The server is returned unstarted: call `listen`.
 */
export function createApiHttpServer(app: Express, serverOptions: ServerOptions = {}): Server {
  const classes = expressMessageClasses(app);
  // Bounded waits for a request to arrive: a client that trickles its headers (or body) is cut
  // off instead of holding a socket for minutes. Responses (SSE streams) are not limited.
  const bounded: ServerOptions = { headersTimeout: 10_000, requestTimeout: 60_000, connectionsCheckingInterval: 1_000, ...serverOptions };
  // The catalogue's routes go straight to their handler; the rest (Ollama's API, documents) through Express.
  const dispatch = (app as ApiApp)[catalogueDispatchKey];
  const listener =
    dispatch === undefined
      ? app
      : (request: IncomingMessage, response: ServerResponse): void => {
          if (!dispatch(request, response)) void app(request, response);
        };
  const server = createServer(classes === undefined ? bounded : { ...bounded, ...classes }, listener);
  // A bound on sockets held at once (each idle keep-alive or streaming client holds one): past it
  // Node closes new connections at once instead of letting one program exhaust file descriptors.
  server.maxConnections = maxApiConnections;
  return server;
}

/**
 * Connections the API server holds at once (`server.maxConnections`): below the 1,024 descriptors
 * a Linux desktop session often allows a process, with room left for the database, the models,
 * the log and WebRTC's sockets; above the hundreds of clients a burst can bring (each of which
 * gets a 429 from a full queue, which a client can act on, rather than a reset connection).
 */
export const maxApiConnections = 900;
