import { InternalError, isChunkStream, parseRouteRequest, type AppStateProvider, type CallContext, type RouteId, type RouteResponse } from '@tabagent/values';

/** Calls catalogue routes for one native-messaging request, validating like every transport. */
export interface RouteCaller {
  /** Validates `raw` against route `id`'s schema and returns its (non-streamed) response. */
  call<K extends RouteId>(id: K, raw: unknown): Promise<RouteResponse<K>>;
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
  };
}
