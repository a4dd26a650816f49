import { NotFoundError } from './errors.js';
import type { RouteChunk, RouteId, RouteRequest, RouteResponse } from './route-catalogue.js';
import { isRouteId } from './route-catalogue.js';

/** Which transport a call came through. */
export type Transport = 'http' | 'native-messaging' | 'webrtc' | 'mcp' | 'in-process';

/** Who is calling: the extension origin (native messaging, CORS) or an API key's label. */
export interface CallerIdentity {
  /** `chrome-extension://<id>/`, `moz-extension://<id>`, `http://localhost:3000`, ... */
  origin?: string;
  /** Set when the caller authenticated with the API key. */
  apiKey?: boolean;
  /** WebRTC peer id, when known. */
  peerId?: string;
  /** The pairing token the caller presented (its id and scope), when it authenticated with one. */
  pairing?: { id: string; scope: 'chat' | 'full' };
  /** The remote IP address of the HTTP connection that carried the call, when it came over HTTP. */
  address?: string;
}

/** Everything a handler knows about the call besides its request. */
export interface CallContext {
  /** Unique id of this call; generations can be stopped by it. */
  readonly requestId: string;
  /** Aborted on client disconnect, stop-generation, halt or shutdown. */
  readonly signal: AbortSignal;
  readonly transport: Transport;
  readonly caller: CallerIdentity;
}

/** A stream of chunks; a streaming handler returns one for `stream: true`. */
export type ChunkStream<K extends RouteId> = AsyncIterable<RouteChunk<K>>;

/** What a handler of route K returns: the response, or a stream of chunks for streaming routes. */
export type HandlerResult<K extends RouteId> = RouteResponse<K> | ([RouteChunk<K>] extends [never] ? never : ChunkStream<K>);

/** Serves one route. Throws `TabAgentError`s for expected failures. */
export type Handler<K extends RouteId> = (request: RouteRequest<K>, context: CallContext) => Promise<HandlerResult<K>>;

/** One handler per route: a route without a handler is a compile error. */
export type HandlerMap = { readonly [K in RouteId]: Handler<K> };

/**
 * The one interface every transport calls. Requests reach it already validated against the
 * route's request schema.
 */
export interface AppStateProvider {
  handle<K extends RouteId>(id: K, request: RouteRequest<K>, context: CallContext): Promise<HandlerResult<K>>;
}

/** True when a handler result is a chunk stream rather than a single response. */
export function isChunkStream(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** Builds a provider that dispatches to a complete handler map. */
export function createAppStateProvider(handlers: HandlerMap): AppStateProvider {
  return {
    handle<K extends RouteId>(id: K, request: RouteRequest<K>, context: CallContext): Promise<HandlerResult<K>> {
      if (!isRouteId(id)) return Promise.reject(new NotFoundError(`Unknown route id: ${String(id)}`));
      const handler = handlers[id] as Handler<K>;
      return handler(request, context);
    },
  };
}
