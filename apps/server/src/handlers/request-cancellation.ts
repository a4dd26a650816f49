import type { CallContext } from '@tabagent/values';

/**
 * Who a call comes from, for "only its caller may stop it": the transport, the browser origin or
 * WebRTC peer, the pairing token and whether the API key was given. Local programs over HTTP (no
 * Origin, no token) are one identity, as are the extension's native-messaging session and each
 * allowed origin; two tokens used from one origin are two callers.
 */
export function callerKeyOf(context: Pick<CallContext, 'transport' | 'caller'>): string {
  const { caller } = context;
  return JSON.stringify([context.transport, caller.origin ?? '', caller.peerId ?? '', caller.pairing?.id ?? '', caller.apiKey === true]);
}

/** The key of a caller's running request: its id within that caller's own. */
export function runningKeyOf(caller: string, requestId: string): string {
  return `${caller}\u0000${requestId}`;
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
      const key = runningKeyOf(caller, requestId);
      running.set(key, entry);
      return {
        signal: AbortSignal.any([parent, entry.controller.signal]),
        release: () => {
          if (running.get(key) === entry) running.delete(key);
        },
      };
    },
    cancel(requestId, caller) {
      const entry = running.get(runningKeyOf(caller, requestId));
      if (entry === undefined) return false;
      entry.controller.abort();
      return true;
    },
  };
}
