import { ConflictError, callerKeyOf, runningKeyOf, type CallContext } from '@tabagent/values';

/** What runs long enough to be stopped by id: a generation, or a model pull. */
export type RunningKind = 'generation' | 'pull';

/** One registered request. */
export interface RunningRequest {
  readonly requestId: string;
  /** `callerKeyOf` of the caller that started it: only that caller stops it by id. */
  readonly caller: string;
  readonly kind: RunningKind;
}

/** A registered request's handle: its signal, and how to stop or release it. */
export interface RunningHandle {
  /** Aborts on `cancel`, `abortAll`, `abort()`, or when the call's own signal aborts (client gone, shutdown). */
  readonly signal: AbortSignal;
  readonly abort: () => void;
  /** Forgets the request (it ended); idempotent. */
  readonly release: () => void;
}

/**
 * The one registry of running requests, by caller and request id, so that the one stop route
 * (`generation.stop`) cancels a generation or a pull, and `generation.halt` stops every
 * generation (never a download: halting the LLM must not throw away a pull).
 */
export interface RunningRequests {
  /** Registers a call; a caller's second live request under one id is refused (its stop would be ambiguous). */
  register(context: CallContext, kind: RunningKind): RunningHandle;
  /** Aborts this caller's request with this id; false when it has none. */
  cancel(requestId: string, caller: string): boolean;
  /** Aborts every request of a kind; returns their ids. */
  abortAll(kind: RunningKind): string[];
  /** The requests of a kind running now. */
  list(kind: RunningKind): RunningRequest[];
}

/** Creates the registry. */
export function createRunningRequests(): RunningRequests {
  const running = new Map<string, RunningRequest & { controller: AbortController }>();
  return {
    register(context, kind) {
      const caller = callerKeyOf(context);
      const key = runningKeyOf(caller, context.requestId);
      if (running.has(key))
        throw new ConflictError(`A request with id ${context.requestId} is already running; give each request its own id`, {
          details: { request_id: context.requestId },
        });
      const entry = { requestId: context.requestId, caller, kind, controller: new AbortController() };
      running.set(key, entry);
      return {
        signal: AbortSignal.any([context.signal, entry.controller.signal]),
        abort: () => entry.controller.abort(),
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
    abortAll(kind) {
      const entries = [...running.values()].filter((entry) => entry.kind === kind);
      for (const entry of entries) entry.controller.abort();
      return entries.map((entry) => entry.requestId);
    },
    list(kind) {
      return [...running.values()].filter((entry) => entry.kind === kind).map(({ requestId, caller }) => ({ requestId, caller, kind }));
    },
  };
}
