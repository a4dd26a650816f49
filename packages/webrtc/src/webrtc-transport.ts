import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createEnvelopeSession, type EnvelopeSession } from '@tabagent/route-envelope';
import {
  BusyError,
  ConflictError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  TabAgentError,
  callerKeyOf,
  safeParseJson,
  type AppStateProvider,
  type CallContext,
  type CallerIdentity,
  type HandlerMap,
  type RouteId,
  type RouteRequest,
  type RouteResponse,
} from '@tabagent/values';
import type * as WeriftModule from 'werift';
import type { PeerConfig, RTCDataChannel, RTCPeerConnection } from 'werift';
import { createChannelWriter } from './channel-writer.js';
import { silentLogger, type Logger } from '@tabagent/values';
import { candidatesOf, checkRemoteSdp, onlyLoopbackCandidates, parseCandidate, withoutMdnsCandidates } from './sdp-checks.js';

/** The data channel that carries the route envelope; channels with other labels are closed. */
export const tabAgentChannelLabel = 'tabagent';

/** The signalling routes this package serves. */
export type WebRtcRouteId = 'webrtc.offer' | 'webrtc.answer' | 'webrtc.ice' | 'webrtc.session';
export type WebRtcHandlers = Pick<HandlerMap, WebRtcRouteId>;

type SessionState = RouteResponse<'webrtc.session'>['state'];

/** Options of `createWebRtcTransport`. */
export interface WebRtcTransportOptions {
  /** Serves the calls that arrive over data channels (the same provider as every transport). */
  provider: AppStateProvider;
  /**
   * `loopback` when the HTTP API listens on loopback only: the peer's sockets bind 127.0.0.1 and
   * its SDP names no other address. `all` announces every interface (a LAN bind, which needs a key).
   */
  network: 'loopback' | 'all';
  /** Sessions open at once (not yet expired or closed); an offer past it is a 429 (default 32). */
  maxSessions?: number;
  /** Sessions one caller (origin, API key, pairing token) may hold open at once (default 8). */
  maxSessionsPerCaller?: number;
  /**
   * Sessions one remote address (of the signalling request) may hold open at once, whatever
   * callers it claims to be (default 8). Loopback addresses are not counted: every local program
   * comes from one (any of 127/8, which it picks), and the extension too, so a cap there would only
   * cap the extension; on a shared machine `--auth owner` is what keeps other programs out.
   */
  maxSessionsPerAddress?: number;
  /**
   * Checks each call over a channel with the identity of the caller that opened the session, e.g.
   * that its pairing token is still valid and its scope opens the route; throws to refuse.
   */
  authorize?: (caller: CallerIdentity, id: RouteId) => void;
  /** A session whose channel has not opened by then is closed (default 30 s). */
  connectTimeoutMs?: number;
  /** A connected session with no message and no call in flight for this long is closed (default 10 min). */
  idleTimeoutMs?: number;
  /** Largest data-channel message the server sends or accepts (default 262,144 bytes, Chrome's limit). */
  maxMessageBytes?: number;
  /** Calls one channel may run at once (default 64). */
  maxConcurrentCalls?: number;
  /**
   * A connected session whose peer sent no ICE consent check for this long is gone (a closed tab,
   * a crashed browser) and is closed (default 30 s, RFC 7675; browsers check every ~5 s).
   */
  consentTimeoutMs?: number;
  /** How often unused sessions are looked for (default 5 s; every offer looks too). */
  sweepIntervalMs?: number;
  /** How long a closed session's state stays readable (default 60 s). */
  closedRetentionMs?: number;
  logger?: Logger;
}

/** The WebRTC transport: signalling handlers plus the server's peers. */
export interface WebRtcTransport {
  /** The four signalling routes, for the app to compose into its handler map. */
  readonly handlers: WebRtcHandlers;
  /** Sessions open now. */
  readonly openSessions: number;
  /** Closes every session (aborting its calls) and refuses new offers. */
  close(): Promise<void>;
}

type Werift = typeof WeriftModule;
let weriftModule: Promise<Werift> | undefined;
/** werift takes ~0.3 s to import; a server that never sees an offer never pays it. */
function loadWerift(): Promise<Werift> {
  weriftModule ??= import('werift');
  return weriftModule;
}

let weriftPatched: Promise<boolean> | undefined;
/**
 * Whether the installed werift carries this repository's security patch (`patches/werift+0.24.4.patch`:
 * ICE checks authenticated, data-channel reassembly bounded). `npm ci --ignore-scripts`, or a
 * project that installs this package from the registry without the patch, gets werift as
 * published; the transport then says so in the log at its first offer.
 */
export function weriftIsPatched(): Promise<boolean> {
  weriftPatched ??= readFile(fileURLToPath(import.meta.resolve('werift')), 'utf8').then(
    (source) => source.includes('authenticateRequest(msg, data)') && source.includes('MAX_INBOUND_PENDING_CHUNKS'),
    () => false,
  );
  return weriftPatched;
}

function gatheringComplete(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(finish, timeoutMs);
    const subscription = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') finish();
    });
    function finish(): void {
      clearTimeout(timer);
      subscription.unSubscribe();
      resolve();
    }
  });
}

/**
 * Whose session it is: the origin (without a trailing slash, as native messaging names it), the
 * API key and the pairing token. Signalling for a session needs the same caller.
 */
/** The remote address an offer counts against, or undefined for loopback (see `maxSessionsPerAddress`). */
function addressKeyOf(caller: CallerIdentity): string | undefined {
  const address = caller.address?.replace(/^::ffff:/u, '');
  if (address === undefined || address === '::1' || /^127\./u.test(address)) return undefined;
  return address;
}

/** The `a=ice-ufrag` of an SDP. */
function ufragOf(sdp: string | undefined): string | undefined {
  return sdp === undefined ? undefined : /^a=ice-ufrag:(\S+)/mu.exec(sdp)?.[1];
}

/** Adds `by` to the count under `key`, dropping it at zero. */
function adjust(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

class WebRtcSession {
  readonly id = randomUUID();
  readonly createdAt = Date.now();
  lastActivity = Date.now();
  /** When the peer last sent an ICE binding request (consent freshness). */
  lastConsent = Date.now();
  state: SessionState;
  closedAt: number | undefined;
  iceCandidates = 0;
  /** The client's ICE username fragment (its consent checks carry `<ours>:<theirs>`). */
  remoteUfrag: string | undefined;
  private channel: RTCDataChannel | undefined;
  private envelope: EnvelopeSession | undefined;

  constructor(
    readonly pc: RTCPeerConnection,
    readonly peerLabel: string | null,
    private readonly caller: CallerIdentity,
    /** Who opened the session: only the same caller may signal for it or read it. */
    readonly callerKey: string,
    /** The remote address it was offered from, when that is not loopback (counted against `maxSessionsPerAddress`). */
    readonly addressKey: string | undefined,
    private readonly options: Required<Pick<WebRtcTransportOptions, 'provider' | 'maxMessageBytes' | 'maxConcurrentCalls'>> & {
      logger: Logger;
      authorize: WebRtcTransportOptions['authorize'];
    },
    initialState: SessionState,
  ) {
    this.state = initialState;
    pc.onDataChannel.subscribe((channel) => this.attach(channel));
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'failed' || state === 'closed') this.end('disconnected', `the peer connection ${state} (${this.transportStates()})`);
    });
  }

  get open(): boolean {
    return this.closedAt === undefined;
  }

  get callsInFlight(): number {
    return this.envelope?.inFlight ?? 0;
  }

  get channelOpen(): boolean {
    return this.channel?.readyState === 'open';
  }

  /** Largest message either side sends on this session's channel: ours, or the peer's `a=max-message-size` as werift read it. */
  get maxMessageBytes(): number {
    const remote = this.pc.sctpTransport?.remoteMaxMessageSize ?? 65_536;
    return Math.min(this.options.maxMessageBytes, remote === 0 ? Number.POSITIVE_INFINITY : remote);
  }

  attach(channel: RTCDataChannel): void {
    if (channel.label !== tabAgentChannelLabel || this.channel !== undefined || !this.open) {
      this.options.logger.debug({ session_id: this.id, label: channel.label }, 'WebRTC channel refused: only one "tabagent" channel per session');
      channel.close();
      return;
    }
    this.channel = channel;
    channel.stateChanged.subscribe((state) => {
      if (state === 'open') this.opened(channel);
      else if (state === 'closed') this.end('disconnected', 'the data channel closed');
    });
    if (channel.readyState === 'open') this.opened(channel);
  }

  /** Why the session ended, with how long after its start; null while open. */
  endedBecause: string | null = null;

  /** ICE and DTLS states of the peer connection, for `endedBecause`. */
  transportStates(): string {
    const dtls = this.pc.dtlsTransports.map((transport) => transport.state).join('/') || 'none';
    return `ice ${this.pc.iceConnectionState}, dtls ${dtls}, sctp ${this.pc.sctpTransport?.sctp.state ?? 'none'}`;
  }

  /** Ends the session: aborts its calls, closes its channel (so the peer learns) and then its peer connection. */
  end(state: 'disconnected' | 'closed', because: string): void {
    if (!this.open) return;
    this.state = state;
    this.endedBecause = `${because}, ${Date.now() - this.createdAt} ms after the offer`;
    this.closedAt = Date.now();
    this.envelope?.close(new DOMException('The WebRTC data channel closed', 'AbortError'));
    const channel = this.channel;
    let channelClosed: Promise<void> = Promise.resolve();
    if (channel !== undefined && channel.readyState === 'open') {
      // The stream reset must reach the peer before the transport under it goes away.
      channelClosed = new Promise((resolve) => {
        const timer = setTimeout(resolve, 1000);
        timer.unref();
        channel.stateChanged.subscribe((next) => {
          if (next === 'closed') {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      channel.close();
    }
    this.ended = channelClosed
      .then(() => this.pc.close())
      .catch((error: unknown) => this.options.logger.debug({ err: error, session_id: this.id }, 'WebRTC peer close failed'));
    this.options.logger.debug({ session_id: this.id, state, because: this.endedBecause }, 'WebRTC session ended');
  }

  /** Resolves once an ended session's peer connection is closed. */
  ended: Promise<void> = Promise.resolve();

  settle(graceMs: number): Promise<void> {
    return this.envelope?.settle(graceMs) ?? Promise.resolve();
  }

  private opened(channel: RTCDataChannel): void {
    if (this.envelope !== undefined || !this.open) return;
    const writer = createChannelWriter(channel, (error) => {
      this.options.logger.warn({ err: error, session_id: this.id }, 'WebRTC channel write failed; the session ends');
      this.end('disconnected', `a channel write failed: ${String(error)}`);
    });
    const { authorize } = this.options;
    const caller = { ...this.caller, peerId: this.id };
    const envelope = createEnvelopeSession({
      provider: this.options.provider,
      transport: 'webrtc',
      caller,
      send: (texts) => writer.write(texts),
      ...(authorize === undefined ? {} : { authorize: (id: RouteId) => authorize(caller, id) }),
      maxMessageBytes: this.maxMessageBytes,
      maxConcurrentCalls: this.options.maxConcurrentCalls,
      onUnexpectedError: (error) => this.options.logger.error({ err: error, session_id: this.id }, 'WebRTC call failed unexpectedly'),
    });
    this.envelope = envelope;
    this.state = 'connected';
    this.lastActivity = Date.now();
    channel.onMessage.subscribe((data) => this.receive(envelope, data));
    this.options.logger.debug({ session_id: this.id, max_message_size: this.maxMessageBytes }, 'WebRTC channel open');
  }

  private receive(envelope: EnvelopeSession, data: string | Buffer): void {
    this.lastActivity = Date.now();
    if (typeof data !== 'string') {
      void envelope.sendError(null, new InvalidRequestError('Channel messages are JSON text; a binary message was received'));
      return;
    }
    const bytes = Buffer.byteLength(data, 'utf8');
    if (bytes > this.maxMessageBytes) {
      void envelope.sendError(
        null,
        new PayloadTooLargeError(
          `A channel message of ${bytes} bytes exceeds the ${this.maxMessageBytes}-byte limit; send large requests as continuation parts`,
          {
            details: { max_bytes: this.maxMessageBytes },
          },
        ),
      );
      return;
    }
    const parsed = safeParseJson(data);
    if (!parsed.success) {
      void envelope.sendError(null, new InvalidRequestError(`A channel message must be JSON: ${parsed.error.message}`));
      return;
    }
    envelope.receive(parsed.value);
  }
}

class PeerSessions implements WebRtcTransport {
  readonly handlers: WebRtcHandlers;
  private readonly sessions = new Map<string, WebRtcSession>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly logger: Logger;
  private closing = false;
  /** Offers past their limit checks but not yet holding a session (waiting for werift to load). */
  private reserved = 0;
  /** Whether the werift patch was checked (once, at the first offer). */
  private patchChecked = false;
  private readonly reservedBy = new Map<string, number>();
  private readonly reservedAt = new Map<string, number>();

  constructor(private readonly options: WebRtcTransportOptions) {
    this.logger = options.logger ?? silentLogger;
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 5000);
    this.sweeper.unref();
    this.handlers = {
      'webrtc.offer': (request, context) => this.offer(request, context),
      'webrtc.answer': (request, context) => this.answer(request, context),
      'webrtc.ice': (request, context) => this.ice(request, context),
      'webrtc.session': async (request, context) => this.describe(this.find(request.session_id, context)),
    };
  }

  get openSessions(): number {
    let count = 0;
    for (const session of this.sessions.values()) if (session.open) count += 1;
    return count;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    const sessions = [...this.sessions.values()];
    for (const session of sessions) session.end('closed', 'the server shut down');
    await Promise.all(sessions.map(async (session) => Promise.all([session.settle(2000), session.ended])));
  }

  private peerConfig(onConsent: (username: unknown) => boolean): Partial<PeerConfig> {
    return {
      // Called for each binding request the peer sends (a live browser sends one every ~5 s), after
      // werift checked its USERNAME and MESSAGE-INTEGRITY (patches/werift+0.24.4.patch); `false`
      // drops it unanswered.
      iceFilterStunResponse: (message) => onConsent(message.getAttributeValue('USERNAME')),
      // No STUN or TURN: the browser and the server are on one machine or one LAN, and werift
      // would otherwise contact a public STUN server (werift-webrtc#691). ICE-lite answers at once.
      iceServers: [],
      iceLite: true,
      iceUseIpv6: false,
      // werift skips loopback unless told; a browser on this machine reaches the server there.
      iceAdditionalHostAddresses: ['127.0.0.1'],
      maxMessageSize: this.options.maxMessageBytes ?? 262_144,
      ...(this.options.network === 'loopback' ? { iceInterfaceAddresses: { udp4: '127.0.0.1' } } : {}),
    };
  }

  private localSdp(pc: RTCPeerConnection): string {
    const sdp = pc.localDescription?.sdp ?? '';
    return this.options.network === 'loopback' ? onlyLoopbackCandidates(sdp) : sdp;
  }

  private async offer(request: RouteRequest<'webrtc.offer'>, context: CallContext): Promise<RouteResponse<'webrtc.offer'>> {
    if (this.closing) throw new BusyError('The server is shutting down');
    this.sweep();
    const key = callerKeyOf(context);
    const max = this.options.maxSessions ?? 32;
    const perCaller = this.options.maxSessionsPerCaller ?? 8;
    if (this.openSessions + this.reserved >= max) {
      throw new RateLimitedError(`${max} WebRTC sessions are open; close one, or wait for unused ones to expire`, {
        details: { max_sessions: max, retry_after_seconds: 5 },
      });
    }
    if (this.openSessionsOf(key) + (this.reservedBy.get(key) ?? 0) >= perCaller) {
      throw new RateLimitedError(`This caller has ${perCaller} WebRTC sessions open; close one, or wait for unused ones to expire`, {
        details: { max_sessions_per_caller: perCaller, retry_after_seconds: 5 },
      });
    }
    const address = addressKeyOf(context.caller);
    const perAddress = this.options.maxSessionsPerAddress ?? 8;
    if (address !== undefined && this.openSessionsAt(address) + (this.reservedAt.get(address) ?? 0) >= perAddress) {
      throw new RateLimitedError(`${address} has ${perAddress} WebRTC sessions open; close one, or wait for unused ones to expire`, {
        details: { max_sessions_per_address: perAddress, retry_after_seconds: 5 },
      });
    }
    const clientSdp = request.sdp;
    if (clientSdp !== undefined) checkRemoteSdp(clientSdp, 'offer');
    // The slot is held across the first (slow) import of werift, so concurrent offers cannot overrun the limits.
    this.reserved += 1;
    adjust(this.reservedBy, key, 1);
    if (address !== undefined) adjust(this.reservedAt, address, 1);
    let PeerConnection: Werift['RTCPeerConnection'];
    try {
      ({ RTCPeerConnection: PeerConnection } = await loadWerift());
      if (!this.patchChecked) {
        this.patchChecked = true;
        if (!(await weriftIsPatched())) {
          this.logger.warn(
            {},
            'werift is not patched (patches/werift+0.24.4.patch was not applied: npm ci --ignore-scripts?): data-channel messages are not bounded and ICE checks are not authenticated',
          );
        }
      }
    } finally {
      this.reserved -= 1;
      adjust(this.reservedBy, key, -1);
      if (address !== undefined) adjust(this.reservedAt, address, -1);
    }
    // close() may have run while werift loaded.
    if (this.isClosing()) throw new BusyError('The server is shutting down');
    let onConsent = (_username: unknown): boolean => true;
    const session = new WebRtcSession(
      new PeerConnection(this.peerConfig((username) => onConsent(username))),
      request.peer_id ?? null,
      context.caller,
      key,
      address,
      {
        provider: this.options.provider,
        maxMessageBytes: this.options.maxMessageBytes ?? 262_144,
        maxConcurrentCalls: this.options.maxConcurrentCalls ?? 64,
        logger: this.logger,
        authorize: this.options.authorize,
      },
      clientSdp === undefined ? 'waiting_for_answer' : 'connecting',
    );
    const { pc } = session;
    // A consent check counts only when it names this session's ICE credentials (`<ours>:<theirs>`);
    // one naming others is dropped. Before both are known (a check ahead of the answer) werift's check stands.
    onConsent = (username) => {
      const local = ufragOf(pc.localDescription?.sdp);
      if (local === undefined || session.remoteUfrag === undefined) return true;
      if (username !== `${local}:${session.remoteUfrag}`) return false;
      session.lastConsent = Date.now();
      return true;
    };
    this.sessions.set(session.id, session);
    try {
      if (clientSdp === undefined) {
        session.attach(pc.createDataChannel(tabAgentChannelLabel));
        await pc.setLocalDescription(await pc.createOffer());
      } else {
        session.remoteUfrag = ufragOf(clientSdp);
        await pc.setRemoteDescription({ type: 'offer', sdp: withoutMdnsCandidates(clientSdp) });
        await pc.setLocalDescription(await pc.createAnswer());
      }
      await gatheringComplete(pc, 5000);
    } catch (error) {
      session.end('closed', `its offer was refused: ${messageOf(error)}`);
      if (error instanceof TabAgentError) throw error;
      throw new InvalidRequestError(`The SDP offer was refused: ${messageOf(error)}`, { issues: [{ path: 'sdp', message: messageOf(error) }] });
    }
    const sdp = this.localSdp(pc);
    this.logger.info({ peer_id: session.peerLabel, type: clientSdp === undefined ? 'offer' : 'answer' }, 'WebRTC session opened');
    return {
      session_id: session.id,
      created_at: new Date(session.createdAt).toISOString(),
      state: session.state,
      type: clientSdp === undefined ? 'offer' : 'answer',
      sdp,
      ice_candidates: candidatesOf(sdp),
      max_message_size: session.maxMessageBytes,
    };
  }

  private async answer(request: RouteRequest<'webrtc.answer'>, context: CallContext): Promise<RouteResponse<'webrtc.answer'>> {
    const session = this.find(request.session_id, context);
    if (session.state !== 'waiting_for_answer') {
      throw new ConflictError(`Session ${session.id} is ${session.state}: only a session the server offered (opened without an SDP) takes an answer`, {
        details: { session_id: session.id, state: session.state },
      });
    }
    checkRemoteSdp(request.sdp, 'answer');
    // Taken before the await: a second answer racing this one gets the 409 above.
    session.state = 'connecting';
    session.remoteUfrag = ufragOf(request.sdp);
    try {
      await session.pc.setRemoteDescription({ type: 'answer', sdp: withoutMdnsCandidates(request.sdp) });
    } catch (error) {
      session.end('closed', `its answer was refused: ${messageOf(error)}`);
      throw new InvalidRequestError(`The SDP answer was refused: ${messageOf(error)}`, { issues: [{ path: 'sdp', message: messageOf(error) }] });
    }
    session.lastActivity = Date.now();
    return { success: true, session_id: session.id };
  }

  private async ice(request: RouteRequest<'webrtc.ice'>, context: CallContext): Promise<RouteResponse<'webrtc.ice'>> {
    const session = this.find(request.session_id, context);
    if (!session.open) throw new ConflictError(`Session ${session.id} is ${session.state}`, { details: { session_id: session.id, state: session.state } });
    if (session.state === 'waiting_for_answer') {
      throw new ConflictError(`Session ${session.id} has no answer yet: send it to webrtc.answer before its candidates`, {
        details: { session_id: session.id },
      });
    }
    session.lastActivity = Date.now();
    // An empty candidate ends the client's candidates; an ICE-lite server needs no more than that.
    if (request.candidate === '') return { success: true, session_id: session.id };
    const candidate = parseCandidate(request.candidate);
    if (candidate !== undefined) {
      try {
        await session.pc.addIceCandidate({ candidate, sdpMid: request.sdp_mid ?? '0', sdpMLineIndex: request.sdp_mline_index ?? 0 });
      } catch (error) {
        throw new InvalidRequestError(`The ICE candidate was refused: ${messageOf(error)}`, { issues: [{ path: 'candidate', message: messageOf(error) }] });
      }
    }
    session.iceCandidates += 1;
    return { success: true, session_id: session.id };
  }

  /** The session, for the caller that opened it; anyone else gets the same 404 as for no session. */
  private find(sessionId: string, context: CallContext): WebRtcSession {
    const session = this.sessions.get(sessionId);
    if (session?.callerKey !== callerKeyOf(context)) throw new NotFoundError(`No WebRTC session ${sessionId}`, { details: { session_id: sessionId } });
    return session;
  }

  private isClosing(): boolean {
    return this.closing;
  }

  private openSessionsOf(key: string): number {
    let count = 0;
    for (const session of this.sessions.values()) if (session.open && session.callerKey === key) count += 1;
    return count;
  }

  private openSessionsAt(address: string): number {
    let count = 0;
    for (const session of this.sessions.values()) if (session.open && session.addressKey === address) count += 1;
    return count;
  }

  private describe(session: WebRtcSession): RouteResponse<'webrtc.session'> {
    return {
      session_id: session.id,
      peer_id: session.peerLabel,
      state: session.state,
      created_at: new Date(session.createdAt).toISOString(),
      last_activity: new Date(session.lastActivity).toISOString(),
      data_channel_open: session.channelOpen,
      ice_candidate_count: session.iceCandidates,
      calls_in_flight: session.callsInFlight,
      ended_because: session.endedBecause,
    };
  }

  /** Closes sessions that never connected or went unused, and forgets long-closed ones. */
  private sweep(): void {
    const now = Date.now();
    const connectTimeout = this.options.connectTimeoutMs ?? 30_000;
    const idleTimeout = this.options.idleTimeoutMs ?? 600_000;
    const retention = this.options.closedRetentionMs ?? 60_000;
    const consentTimeout = this.options.consentTimeoutMs ?? 30_000;
    for (const session of this.sessions.values()) {
      if (!session.open) {
        if (now - (session.closedAt ?? now) > retention) this.sessions.delete(session.id);
        continue;
      }
      const connecting = session.state === 'waiting_for_answer' || session.state === 'connecting';
      if (connecting && now - session.createdAt > connectTimeout)
        session.end('closed', `it did not connect within ${connectTimeout} ms (${session.transportStates()})`);
      else if (!connecting && now - session.lastConsent > consentTimeout) session.end('disconnected', `no ICE consent check for ${consentTimeout} ms`);
      else if (!connecting && session.callsInFlight === 0 && now - session.lastActivity > idleTimeout) session.end('closed', `idle for ${idleTimeout} ms`);
    }
    // Closed sessions are kept for their state only; a flood of them must not grow the map.
    const closed = [...this.sessions.values()].filter((session) => !session.open);
    for (const session of closed.slice(0, Math.max(0, closed.length - 1000))) this.sessions.delete(session.id);
  }
}

/** Creates the WebRTC transport; compose its `handlers` into the app's handler map. */
export function createWebRtcTransport(options: WebRtcTransportOptions): WebRtcTransport {
  return new PeerSessions(options);
}
