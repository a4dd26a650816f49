import {
  InternalError,
  isChunkStream,
  parseRouteRequest,
  type AppStateProvider,
  type CallContext,
  type RouteChunk,
  type RouteId,
  type RouteResponse,
} from '@tabagent/values';

/** Calls catalogue routes for one native-messaging request, validating like every transport. */
export interface RouteCaller {
  /** Validates `raw` against route `id`'s schema and returns its (non-streamed) response. */
  call<K extends RouteId>(id: K, raw: unknown): Promise<RouteResponse<K>>;
  /**
   * Validates `raw` and hands each chunk to `onChunk` as it comes (awaited, so a slow writer
   * slows the stream); a route that answers once gives its response as the only chunk.
   */
  stream<K extends RouteId>(id: K, raw: unknown, onChunk: (chunk: RouteChunk<K> | RouteResponse<K>) => Promise<void> | void): Promise<void>;
}

/** A route caller bound to one provider and one call context. */
export function createRouteCaller(provider: AppStateProvider, context: CallContext): RouteCaller {
  return {
    async call<K extends RouteId>(id: K, raw: unknown): Promise<RouteResponse<K>> {
      const request = parseRouteRequest(id, raw);
      const result = await provider.handle(id, request, context);
      if (isChunkStream(result)) throw new InternalError(`Route ${id} streamed where one response was expected`);
      return result;
    },
    async stream<K extends RouteId>(id: K, raw: unknown, onChunk: (chunk: RouteChunk<K> | RouteResponse<K>) => Promise<void> | void): Promise<void> {
      const request = parseRouteRequest(id, raw);
      const result = await provider.handle(id, request, context);
      if (!isChunkStream(result)) {
        await onChunk(result);
        return;
      }
      for await (const chunk of result as AsyncIterable<RouteChunk<K>>) await onChunk(chunk);
    },
  };
}
