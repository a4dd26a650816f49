import { NotImplementedError, routeIds, type Handler, type HandlerMap, type RouteId } from '@tabagent/values';

/** Which capability serves which routes until its backend exists (shown in the 501 problem). */
export interface MissingCapability {
  /** Short name, e.g. `webrtc`. */
  capability: string;
  /** What to tell the user. */
  detail: string;
}

function notBuiltHandler(id: RouteId, missing: MissingCapability): Handler<RouteId> {
  return async () => {
    throw new NotImplementedError(`${id} is not available: ${missing.detail}`, { details: { capability: missing.capability, route: id } });
  };
}

/** A complete map in which every route answers 501 naming the missing capability. */
export function createNotBuiltHandlers(capabilityFor: (id: RouteId) => MissingCapability): HandlerMap {
  return Object.fromEntries(routeIds.map((id) => [id, notBuiltHandler(id, capabilityFor(id))])) as unknown as HandlerMap;
}
