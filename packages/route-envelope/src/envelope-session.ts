import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BusyError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  isChunkStream,
  isRouteId,
  parseRouteRequest,
  toProblemDetails,
  toTabAgentError,
  type AppStateProvider,
  type CallContext,
  type CallerIdentity,
  type RouteId,
  type TabAgentError,
  type Transport,
} from '@tabagent/values';
import { createContinuationReassembler, isContinuationMessage } from './continuation.js';
import { encodeRouteMessage, type RouteMessage } from './route-message.js';

/** Options of `createEnvelopeSession`. */
export interface EnvelopeSessionOptions {
  /** Serves every route. */
  provider: AppStateProvider;
  /** The transport every call's context names. */
  transport: Transport;
  /** Who is on the other end; every call's context carries it. */
  caller: CallerIdentity;
  /**
   * Writes the JSON texts of one message (one text, or its continuation parts) consecutively, never
   * interleaved with another message's; resolves once the transport has taken them (backpressure).
   */
  send: (texts: readonly string[]) => Promise<void>;
  /** Largest message the transport carries; larger replies become continuation parts. */
  maxMessageBytes: number;
  /** Calls that may run at once; a message past it is answered `busy` (503, retryable) at once (default 64). */
  maxConcurrentCalls?: number;
  /** Largest request reassembled from incoming continuation parts (default 16 MiB). */
  maxReassembledBytes?: number;
  /** Refuses a route this caller may not call (throws a `TabAgentError`); default: every route is open. */
  authorize?: (id: RouteId) => void;
  /** Called with failures no reply could report (a bug or a dead transport). */
  onUnexpectedError?: (error: unknown) => void;
}

/** One connection's route-envelope calls: dispatch, replies, continuations, limits and aborts. */
export interface EnvelopeSession {
  /**
   * Handles one parsed incoming message: a route call `{id | route, request_id, payload}` or a
   * continuation part of one. Anything else is answered with an `invalid_request` error.
   */
  receive(value: unknown): void;
  /** Runs other work (a legacy envelope, say) as a tracked call with its own context and the busy limit. */
  run(requestId: string, work: (context: CallContext) => Promise<void>, onBusy: (error: TabAgentError) => Promise<void>): void;
  /** Sends one route-envelope message, split into continuations when needed. */
  sendRoute(message: RouteMessage): Promise<void>;
  /** Sends `{request_id, ok: false, error}` (plus `extra` fields) for `error`. */
  sendError(requestId: string | number | null, error: unknown, extra?: Record<string, unknown>): Promise<void>;
  /** Calls now running. */
  readonly inFlight: number;
  /** Aborts every in-flight call with `reason`; later messages are ignored. Idempotent. */
  close(reason?: unknown): void;
  /** Resolves once in-flight calls have settled, or after `graceMs`. */
  settle(graceMs: number): Promise<void>;
}

/** A parsed JSON object (not an array, not null). */
export type JsonObject = Record<string, unknown>;

/** Whether a parsed message is a JSON object. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Resolves after `ms` without keeping the process alive. */
function delay(ms: number): Promise<void> {
  return sleep(ms, undefined, { ref: false });
}

function requestIdOf(value: unknown): string | number | null {
  if (!isJsonObject(value)) return null;
  const id = value.request_id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

class RouteEnvelopeSession implements EnvelopeSession {
  private readonly sessionController = new AbortController();
  private readonly calls = new Set<Promise<void>>();
  private readonly reassembler = createContinuationReassembler();
  private readonly reassemblingBytes = new Map<string | number | null, number>();
  /** Requests whose parts were refused: their remaining parts are dropped without another reply. */
  private readonly droppingParts = new Set<string | number | null>();
  private closed = false;

  constructor(private readonly options: EnvelopeSessionOptions) {
    // Every in-flight call listens on the session signal; many concurrent calls are normal here.
    setMaxListeners(0, this.sessionController.signal);
  }

  get inFlight(): number {
    return this.calls.size;
  }

  receive(value: unknown): void {
    if (this.closed) return;
    if (isContinuationMessage(value)) {
      this.receivePart(value);
      return;
    }
    if (!isJsonObject(value) || !('id' in value || 'route' in value)) {
      this.track(this.sendError(requestIdOf(value), new InvalidRequestError('A message must be a JSON object {id, request_id, payload}')));
      return;
    }
    const requestId = requestIdOf(value);
    if (this.calls.size >= (this.options.maxConcurrentCalls ?? 64)) {
      this.track(this.sendError(requestId, this.busyError()));
      return;
    }
    this.track(this.handleRoute(value, requestId));
  }

  run(requestId: string, work: (context: CallContext) => Promise<void>, onBusy: (error: TabAgentError) => Promise<void>): void {
    if (this.closed) return;
    if (this.calls.size >= (this.options.maxConcurrentCalls ?? 64)) {
      this.track(onBusy(this.busyError()));
      return;
    }
    const { context, release } = this.createContext(requestId);
    this.track(work(context).finally(release));
  }

  sendRoute(message: RouteMessage): Promise<void> {
    return this.options.send(encodeRouteMessage(message, this.options.maxMessageBytes));
  }

  sendError(requestId: string | number | null, error: unknown, extra: Record<string, unknown> = {}): Promise<void> {
    return this.sendRoute({ request_id: requestId, ...extra, ok: false, error: toProblemDetails(error) });
  }

  close(reason: unknown = new DOMException('The connection closed', 'AbortError')): void {
    if (this.closed) return;
    this.closed = true;
    this.sessionController.abort(reason);
  }

  async settle(graceMs: number): Promise<void> {
    await Promise.race([Promise.all([...this.calls]), delay(graceMs)]);
  }

  private busyError(): TabAgentError {
    return new BusyError(`${this.calls.size} calls are running; try again shortly`, { details: { retry_after_seconds: 1 } });
  }

  private receivePart(part: { request_id: string | number | null; part: number; parts: number; data_chunk: string }): void {
    const last = part.part === part.parts - 1;
    if (this.droppingParts.has(part.request_id)) {
      if (last) this.droppingParts.delete(part.request_id);
      return;
    }
    const limit = this.options.maxReassembledBytes ?? 16 * 1024 * 1024;
    const bytes = (this.reassemblingBytes.get(part.request_id) ?? 0) + Buffer.byteLength(part.data_chunk, 'utf8');
    let whole: unknown;
    try {
      if (bytes > limit) {
        this.reassembler.discard(part.request_id);
        throw new PayloadTooLargeError(`A request split into continuation parts exceeds ${limit} bytes`, { details: { max_bytes: limit } });
      }
      whole = this.reassembler.accept(part);
    } catch (error) {
      this.reassemblingBytes.delete(part.request_id);
      if (!last) this.droppingParts.add(part.request_id);
      this.track(this.sendError(part.request_id, error));
      return;
    }
    if (whole === undefined) {
      this.reassemblingBytes.set(part.request_id, bytes);
      return;
    }
    this.reassemblingBytes.delete(part.request_id);
    // A request reassembled from parts is handled like one sent whole (but can never be a part itself).
    if (isContinuationMessage(whole)) {
      this.track(this.sendError(part.request_id, new InvalidRequestError('A continuation part may not contain another')));
      return;
    }
    this.receive(whole);
  }

  private track(work: Promise<void>): void {
    const settled = work.catch((error: unknown) => this.options.onUnexpectedError?.(error));
    this.calls.add(settled);
    void settled.finally(() => this.calls.delete(settled));
  }

  private createContext(requestId: string): { context: CallContext; release: () => void } {
    const controller = new AbortController();
    const session = this.sessionController.signal;
    const abort = (): void => controller.abort(session.reason);
    if (session.aborted) abort();
    else session.addEventListener('abort', abort, { once: true });
    return {
      context: { requestId, signal: controller.signal, transport: this.options.transport, caller: this.options.caller },
      release: () => session.removeEventListener('abort', abort),
    };
  }

  private async handleRoute(message: JsonObject, requestId: string | number | null): Promise<void> {
    const routeId = message.id ?? message.route;
    if (requestId === null || requestId === '') {
      await this.sendError(
        null,
        new InvalidRequestError('request_id is required (a non-empty string or a number)', { issues: [{ path: 'request_id', message: 'Required' }] }),
      );
      return;
    }
    if (!isRouteId(routeId)) {
      await this.sendError(requestId, new NotFoundError(`Unknown route id: ${String(routeId)}`, { details: { route: routeId } }));
      return;
    }
    const { context, release } = this.createContext(String(requestId));
    try {
      this.options.authorize?.(routeId);
      const request = parseRouteRequest(routeId, message.payload);
      const result: unknown = await this.options.provider.handle(routeId, request, context);
      if (!isChunkStream(result)) {
        await this.sendRoute({ request_id: requestId, ok: true, data: result });
        return;
      }
      let seq = 0;
      for await (const chunk of result) {
        await this.sendRoute({ request_id: requestId, chunk, seq });
        seq += 1;
      }
      if (context.signal.aborted) throw toTabAgentError(context.signal.reason ?? new DOMException('aborted', 'AbortError'));
      await this.sendRoute({ request_id: requestId, done: true });
    } catch (error) {
      await this.sendError(requestId, error);
    } finally {
      release();
    }
  }
}

/** Starts the route-envelope session of one connection (a native-messaging port, a WebRTC data channel). */
export function createEnvelopeSession(options: EnvelopeSessionOptions): EnvelopeSession {
  return new RouteEnvelopeSession(options);
}
