import { ForbiddenError, type CallContext } from '@tabagent/values';
import type { PairingStore } from '../pairing-store.js';
import type { HandlerGroup } from './handler-group.js';

/**
 * Pairing: the extension (authenticated by the browser through native messaging) mints tokens
 * for its other contexts, a local web app or a WebRTC peer. Over HTTP nobody can mint one; listing
 * and revoking also take the API key.
 */
export function createPairingHandlers(store: PairingStore): HandlerGroup<'pairing.create' | 'pairing.list' | 'pairing.revoke'> {
  const requireExtension = (context: CallContext, what: string, allowKey: boolean): void => {
    if (context.transport === 'native-messaging' || context.transport === 'in-process') return;
    if (allowKey && context.caller.apiKey === true) return;
    throw new ForbiddenError(`${what} is only available to the extension over native messaging${allowKey ? ' or with the API key' : ''}`);
  };
  return {
    'pairing.create': async (request, context) => {
      requireExtension(context, 'pairing.create', false);
      return store.create({ label: request.label, scope: request.scope, ttlSeconds: request.ttl_seconds, origin: request.origin });
    },
    'pairing.list': async (_request, context) => {
      requireExtension(context, 'pairing.list', true);
      return { pairings: store.list() };
    },
    'pairing.revoke': async (request, context) => {
      requireExtension(context, 'pairing.revoke', true);
      return { status: store.revoke(request.id) ? 'revoked' : 'not_found', id: request.id };
    },
  };
}
