/**
 * Long operations other than generations (model pulls) registered by request id, so that the
 * one stop route (`generation.stop`) cancels either kind. `generation.halt` stays about
 * generations: halting the LLM must not throw away a download.
 */
export interface RequestCancellation {
  /** Registers a request; its signal aborts on `cancel(id)` or when `parent` aborts (client gone). */
  register(requestId: string, parent: AbortSignal): { signal: AbortSignal; release: () => void };
  /** Aborts a registered request; false when none has this id. */
  cancel(requestId: string): boolean;
}

/** Creates the registry. */
export function createRequestCancellation(): RequestCancellation {
  const running = new Map<string, AbortController>();
  return {
    register(requestId, parent) {
      const controller = new AbortController();
      running.set(requestId, controller);
      return {
        signal: AbortSignal.any([parent, controller.signal]),
        release: () => {
          if (running.get(requestId) === controller) running.delete(requestId);
        },
      };
    },
    cancel(requestId) {
      const controller = running.get(requestId);
      if (!controller) return false;
      controller.abort();
      return true;
    },
  };
}
