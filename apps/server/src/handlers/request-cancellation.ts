import type { CallContext } from '@tabagent/values';

/**
 * Who a call comes from, for "only its caller may stop it": the transport plus the browser
 * origin or WebRTC peer. Local programs over HTTP (no Origin) are one identity, as are the
 * extension's native-messaging session and each allowed origin.
 */
export function callerKeyOf(context: Pick<CallContext, 'transport' | 'caller'>): string {
  return `${context.transport}|${context.caller.origin ?? ''}|${context.caller.peerId ?? ''}`;
}

/**
 * Long operations other than generations (model pulls) registered by request id, so that the
 * one stop route (`generation.stop`) cancels either kind. `generation.halt` stays about
 * generations: halting the LLM must not throw away a download.
 */
export interface RequestCancellation {
  /** Registers a request; its signal aborts on `cancel(id)` or when `parent` aborts (client gone). */
  register(requestId: string, parent: AbortSignal, caller: string): { signal: AbortSignal; release: () => void };
  /** Aborts a registered request of this caller; false when it has none with this id. */
  cancel(requestId: string, caller: string): boolean;
}

/** Creates the registry. */
export function createRequestCancellation(): RequestCancellation {
  const running = new Map<string, { controller: AbortController; caller: string }>();
  return {
    register(requestId, parent, caller) {
      const entry = { controller: new AbortController(), caller };
      running.set(requestId, entry);
      return {
        signal: AbortSignal.any([parent, entry.controller.signal]),
        release: () => {
          if (running.get(requestId) === entry) running.delete(requestId);
        },
      };
    },
    cancel(requestId, caller) {
      const entry = running.get(requestId);
      if (entry?.caller !== caller) return false;
      entry.controller.abort();
      return true;
    },
  };
}
