import type { CallContext } from './app-state-provider.js';
import { ForbiddenError } from './errors.js';
import type { RouteId } from './route-catalogue.js';
import { chatScopeRouteIds } from './routes/pairing-routes.js';

/**
 * Who a call comes from, for "only its caller may stop it" and "only its opener may use this
 * WebRTC session": the transport, the browser origin (without a trailing `/`) or WebRTC peer,
 * the pairing token and whether the API key was given. Local programs over HTTP (no Origin, no
 * token) are one identity, as are the extension's native-messaging session and each allowed
 * origin; two tokens used from one origin are two callers. The one formula, for every transport.
 */
export function callerKeyOf(context: Pick<CallContext, 'transport' | 'caller'>): string {
  const { caller } = context;
  return JSON.stringify([context.transport, caller.origin?.replace(/\/$/u, '') ?? '', caller.peerId ?? '', caller.pairing?.id ?? '', caller.apiKey === true]);
}

/** The key of a caller's running request: its id within that caller's own. */
export function runningKeyOf(callerKey: string, requestId: string): string {
  return `${callerKey}\u0000${requestId}`;
}

/* Pairing tokens are minted by the extension over native messaging and checked by every transport. */
/** What a valid pairing token grants. */
export interface PairingGrant {
  id: string;
  scope: 'chat' | 'full';
  /** The web origin the token was minted for; `*` (or absent) for any. */
  origin?: string;
}

/** Checks pairing tokens (minted by the extension over native messaging). */
export interface PairingVerifier {
  /** The grant of a valid, unexpired, unrevoked token; null otherwise. */
  verify(token: string): PairingGrant | null;
}

const chatScope: ReadonlySet<string> = new Set(chatScopeRouteIds);

/**
 * The one pairing-scope check: a `chat` token opens only the chat routes (`chatScopeRouteIds`).
 * Every transport calls it (the HTTP guard before the body is read, the provider for native
 * messaging and WebRTC), so a route is refused the same way whichever way it came.
 */
export function assertPairingScope(pairing: { scope: 'chat' | 'full' } | undefined, id: RouteId): void {
  if (pairing?.scope === 'chat' && !chatScope.has(id)) {
    throw new ForbiddenError(`This pairing token is for chat only; ${id} needs a token of scope "full"`, { details: { route: id, scope: 'chat' } });
  }
}
