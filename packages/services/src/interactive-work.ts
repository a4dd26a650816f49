import { isChunkStream, onStreamEnd, type AppStateProvider, type CallContext, type HandlerResult, type RouteId, type RouteRequest } from '@tabagent/values';

/**
 * Routes a user waits on that compete with the memory weaver for the embedding model and the CPU.
 * Not `rag.query`: searching memory embeds one query, and a client polling its memory for an item
 * would otherwise keep the weaver from ever indexing it.
 */
export const interactiveEmbeddingRoutes: ReadonlySet<RouteId> = new Set<RouteId>([
  'embeddings',
  'rerank',
  'similarity',
  'semantic_search',
  'embeddings.evaluate',
  'cluster',
  'recommend',
]);

/**
 * Counts calls of `routes` in flight (a stream until its end), so the weaver can pause between
 * batches while a user waits on an embedding request, as it does for generations. `onEnd` is
 * told when each one ends.
 */
export function trackInteractiveCalls(
  provider: AppStateProvider,
  routes: ReadonlySet<RouteId>,
  onEnd: () => void = () => undefined,
): { provider: AppStateProvider; inFlight: () => number } {
  let inFlight = 0;
  const end = (): void => {
    inFlight -= 1;
    onEnd();
  };
  const wrapped: AppStateProvider = {
    // Not an async function: the routes it does not count pass through without another promise.
    handle<K extends RouteId>(id: K, request: RouteRequest<K>, context: CallContext): Promise<HandlerResult<K>> {
      if (!routes.has(id)) return provider.handle(id, request, context);
      inFlight += 1;
      return provider.handle(id, request, context).then(
        (result) => {
          if (!isChunkStream(result)) {
            end();
            return result;
          }
          return onStreamEnd(result, end) as HandlerResult<K>;
        },
        (error: unknown) => {
          end();
          throw error;
        },
      );
    },
  };
  return { provider: wrapped, inFlight: () => inFlight };
}
