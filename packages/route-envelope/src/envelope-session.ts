import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BusyError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  isChunkStream,
  isRouteId,
  parseJsonYielding,
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
  /** Sends one route-envelope message, split into continuations when needed; never rejects (failures go to `onUnexpectedError`). */
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

/** Longest `request_id` accepted: every reply and continuation part repeats it. */
export const maxRequestIdLength = 256;

/** A usable `request_id`: a string of 1 to 256 characters or a safe integer; else null. */
function requestIdOf(value: unknown): string | number | null {
  if (!isJsonObject(value)) return null;
  const id = value.request_id;
  if (typeof id === 'string') return id.length > 0 && id.length <= maxRequestIdLength ? id : null;
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : null;
}

class RouteEnvelopeSession implements EnvelopeSession {
  private readonly sessionController = new AbortController();
  private readonly calls = new Set<Promise<void>>();
  private readonly reassembler = createContinuationReassembler();
  private readonly reassemblingBytes = new Map<string | number | null, number>();
  private reassemblingTotal = 0;
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

  /** Never throws or rejects: a reply that cannot be encoded or sent is reported to `onUnexpectedError`. */
  async sendRoute(message: RouteMessage): Promise<void> {
    try {
      await this.options.send(encodeRouteMessage(message, this.options.maxMessageBytes));
    } catch (error) {
      this.options.onUnexpectedError?.(error);
    }
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
    const requestId = requestIdOf(part);
    if (requestId === null) {
      this.track(this.sendError(null, new InvalidRequestError(`A continuation part needs a request_id of at most ${maxRequestIdLength} characters`)));
      return;
    }
    const last = part.part === part.parts - 1;
    if (this.droppingParts.has(requestId)) {
      if (last) this.droppingParts.delete(requestId);
      return;
    }
    const limit = this.options.maxReassembledBytes ?? 16 * 1024 * 1024;
    const bytes = Buffer.byteLength(part.data_chunk, 'utf8');
    const pending = this.reassemblingBytes.get(requestId);
    let whole: string | undefined;
    try {
      // One budget for the whole connection, and no more unfinished requests than calls allowed.
      if (pending === undefined && this.reassemblingBytes.size >= (this.options.maxConcurrentCalls ?? 64)) throw this.busyError();
      if (this.reassemblingTotal + bytes > limit) {
        throw new PayloadTooLargeError(`Requests split into continuation parts exceed ${limit} bytes`, { details: { max_bytes: limit } });
      }
      whole = this.reassembler.acceptPart({ ...part, request_id: requestId });
    } catch (error) {
      this.forgetParts(requestId);
      this.reassembler.discard(requestId);
      // The rest of a refused request is dropped without more replies (a bounded memory of ids).
      if (!last) {
        if (this.droppingParts.size >= 1024) this.droppingParts.clear();
        this.droppingParts.add(requestId);
      }
      this.track(this.sendError(requestId, error));
      return;
    }
    if (whole === undefined) {
      this.reassemblingBytes.set(requestId, (pending ?? 0) + bytes);
      this.reassemblingTotal += bytes;
      return;
    }
    this.forgetParts(requestId);
    this.track(this.receiveReassembled(requestId, whole));
  }

  /**
   * A request reassembled from parts (up to 16 MiB) is parsed in slices (`parseJsonYielding`),
   * then handled like one sent whole; it can never be a part itself.
   */
  private async receiveReassembled(requestId: string | number, text: string): Promise<void> {
    const parsed = await parseJsonYielding(text);
    if (!parsed.success) return this.sendError(requestId, parsed.error);
    if (isContinuationMessage(parsed.value)) return this.sendError(requestId, new InvalidRequestError('A continuation part may not contain another'));
    this.receive(parsed.value);
  }

  private forgetParts(requestId: string | number): void {
    this.reassemblingTotal -= this.reassemblingBytes.get(requestId) ?? 0;
    this.reassemblingBytes.delete(requestId);
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
    if (requestId === null) {
      await this.sendError(
        null,
        message.request_id === undefined || message.request_id === null || message.request_id === ''
          ? new InvalidRequestError('request_id is required (a non-empty string or a number)', { issues: [{ path: 'request_id', message: 'Required' }] })
          : new InvalidRequestError(`request_id must be a string of at most ${maxRequestIdLength} characters or an integer`, {
              issues: [{ path: 'request_id', message: 'Invalid' }],
            }),
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
