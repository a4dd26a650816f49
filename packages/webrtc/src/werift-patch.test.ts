// Tests of this repository's werift patch (patches/werift+0.24.4.patch) against the real transport:
// the server side is `createWebRtcTransport`, the peers are werift clients as in the other tests.
// M4: ICE binding requests are answered only when their USERNAME is `<server ufrag>:<client ufrag>`
// and their MESSAGE-INTEGRITY verifies with the server's ice-pwd.
// M3: SCTP reassembly is bounded; a peer that passes the bound loses its association (and session).
// Every test here fails against werift as published (checked by mapping `werift` to an unpatched copy).
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { createEnvelopeClient } from '@tabagent/route-envelope';
import { createTestProvider } from '@tabagent/route-envelope/test-support';
import type { CallContext } from '@tabagent/values';
import { RTCPeerConnection, type RTCDataChannel } from 'werift';
import { connectNodePeer, patientCheckRetransmissions, type NodePeerClient } from './test-support/node-peer-client.js';
import { createWebRtcTransport, weriftIsPatched, type WebRtcTransport } from './webrtc-transport.js';

const httpContext: CallContext = {
  requestId: 'signal-1',
  signal: new AbortController().signal,
  transport: 'http',
  caller: { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop' },
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with `message` after `ms` unless `promise` settles first (the timer does not outlive it). */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `condition`; false if it did not hold in time. */
async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

function sdpField(sdp: string, pattern: RegExp): string {
  const value = pattern.exec(sdp)?.[1];
  if (value === undefined) throw new Error(`no ${String(pattern)} in the SDP`);
  return value;
}

// --- STUN (RFC 8489 / RFC 8445), built by hand so that werift's own encoder is not what is tested ---

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (crcTable[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

interface BindingRequest {
  bytes: Buffer;
  transactionId: Buffer;
}

/**
 * A Binding request as a controlling ICE agent sends it. `integrity`: `good` signs it with `key`,
 * `bad` with another key, `none` leaves MESSAGE-INTEGRITY out.
 */
function bindingRequest(options: { username: string; key: string; integrity: 'good' | 'bad' | 'none'; useCandidate: boolean }): BindingRequest {
  const transactionId = randomBytes(12);
  const attributes: Buffer[] = [];
  const attribute = (type: number, value: Buffer): void => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(value.length, 2);
    attributes.push(Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]));
  };
  const header = (length: number): Buffer => {
    const head = Buffer.alloc(20);
    head.writeUInt16BE(0x0001, 0); // Binding request
    head.writeUInt16BE(length, 2);
    head.writeUInt32BE(0x2112a442, 4); // magic cookie
    transactionId.copy(head, 8);
    return head;
  };
  attribute(0x0006, Buffer.from(options.username)); // USERNAME
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(1_853_824_767);
  attribute(0x0024, priority); // PRIORITY
  attribute(0x802a, randomBytes(8)); // ICE-CONTROLLING
  if (options.useCandidate) attribute(0x0025, Buffer.alloc(0)); // USE-CANDIDATE
  if (options.integrity !== 'none') {
    const key = options.integrity === 'good' ? options.key : 'not-the-ice-password-of-it';
    const body = Buffer.concat(attributes);
    // HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, its length counting MESSAGE-INTEGRITY (24 bytes).
    attribute(
      0x0008,
      createHmac('sha1', key)
        .update(Buffer.concat([header(body.length + 24), body]))
        .digest(),
    );
  }
  const signed = Buffer.concat(attributes);
  const fingerprint = Buffer.alloc(4);
  fingerprint.writeUInt32BE((crc32(Buffer.concat([header(signed.length + 8), signed])) ^ 0x5354554e) >>> 0);
  attribute(0x8028, fingerprint); // FINGERPRINT
  const body = Buffer.concat(attributes);
  return { bytes: Buffer.concat([header(body.length), body]), transactionId };
}

/** A STUN client on its own UDP socket (a new address to the server, as an attacker's would be). */
interface StunSocket {
  /** Resolves with the kind of the server's response when one arrives (it may never). */
  send(request: BindingRequest, port: number): Promise<string>;
  close(): void;
}

async function stunSocket(): Promise<StunSocket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const waiting = new Map<string, (answer: string) => void>();
  socket.on('message', (message: Buffer) => {
    if (message.length < 20) return;
    const type = message.readUInt16BE(0);
    waiting.get(message.subarray(8, 20).toString('hex'))?.(type === 0x0101 ? 'success response' : `STUN message type 0x${type.toString(16)}`);
  });
  return {
    send: (request, port) =>
      new Promise((resolve) => {
        waiting.set(request.transactionId.toString('hex'), resolve);
        socket.send(request.bytes, port, '127.0.0.1');
      }),
    close: () => socket.close(),
  };
}

/** The server's ICE credentials and its loopback candidate's port, from its SDP. */
function iceOf(sdp: string): { ufrag: string; pwd: string; port: number } {
  return {
    ufrag: sdpField(sdp, /^a=ice-ufrag:(\S+)/mu),
    pwd: sdpField(sdp, /^a=ice-pwd:(\S+)/mu),
    port: Number(sdpField(sdp, /^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/mu)),
  };
}

/**
 * Sends a correctly signed check (without USE-CANDIDATE) and the forged ones at once, each from its
 * own address. Returns the response to the signed one, and for each forged one its response or
 * `none` when there was none by 500 ms after the signed one was answered.
 */
async function probe(
  port: number,
  signed: BindingRequest,
  forged: Record<string, BindingRequest>,
  sockets: StunSocket[],
): Promise<{ signed: string; forged: Record<string, string> }> {
  const control = await stunSocket();
  sockets.push(control);
  const forgers = await Promise.all(Object.entries(forged).map(async ([name, request]) => ({ name, request, socket: await stunSocket() })));
  sockets.push(...forgers.map(({ socket }) => socket));
  const signedAnswer = control.send(signed, port);
  // A forged request that the server answered would be answered about as fast as the signed one.
  const waited = within(signedAnswer, 5000, 'no response').then(
    async () => sleep(500).then(() => 'none'),
    () => 'none',
  );
  const answers = await Promise.all(
    forgers.map(async ({ name, request, socket }) => [name, await Promise.race([socket.send(request, port), waited])] as const),
  );
  return { signed: await Promise.race([signedAnswer, waited]), forged: Object.fromEntries(answers) };
}

// --- SCTP: DATA chunks sent straight from the client's association, past its fragmentation and windows ---

const firstFragment = 0x02;
const fragmentBytes = 1200;
/** What the attacker offers at most: far more than the patch lets the server hold. */
const offeredBytes = 32 * 2 ** 20;
/** DATA chunks per SCTP packet (a 9.7 KB datagram: loopback takes it whole). */
const chunksPerPacket = 8;
/** Chunks unacknowledged at most: well inside the server socket's receive buffer, so none is dropped. */
const windowChunks = 32;

/** Fields of werift's `SCTP` (sctp/src/sctp.ts) that the types mark private. */
interface SctpAssociation {
  state: string;
  localTsn: number;
  lastSackedTsn: number;
  outboundStreamSeq: Record<number, number | undefined>;
  sendChunk(chunk: { bytes: Buffer }): Promise<void>;
}

/** The patched `SCTP.prototype.abortInbound(reason)`, spied on to learn which limit the server hit. */
interface AbortingSctp {
  abortInbound?: (this: unknown, reason: string) => void;
}

function sctpOf(peer: NodePeerClient): SctpAssociation {
  const sctp = peer.pc.sctpTransport?.sctp;
  if (sctp === undefined) throw new Error('the peer has no SCTP association');
  return sctp as unknown as SctpAssociation;
}

function dataChunk(flags: number, tsn: number, streamId: number, ssn: number, userData: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt8(0, 0); // DATA
  head.writeUInt8(flags, 1);
  head.writeUInt16BE(16 + userData.length, 2);
  head.writeUInt32BE(tsn, 4);
  head.writeUInt16BE(streamId, 8);
  head.writeUInt16BE(ssn, 10);
  head.writeUInt32BE(51, 12); // WebRTC string
  return Buffer.concat([head, userData, Buffer.alloc((4 - (userData.length % 4)) % 4)]);
}

/** DATA chunks sent but not yet acknowledged by the server's SACKs (TSN arithmetic mod 2^32). */
function unacknowledged(sctp: SctpAssociation): number {
  return (sctp.localTsn - 1 - sctp.lastSackedTsn) >>> 0;
}

/** Resolves once `pc` has gathered its candidates (they are then in its local description). */
function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') resolve();
    });
  });
}

/**
 * As test-support's `connectNodePeerToServerOffer` does (node-peer-client.ts `patientChecks`): the
 * client's connectivity checks retransmit for 51 s, as a browser's do, not for werift's 1.55 s.
 */
function patientChecks(pc: RTCPeerConnection): void {
  for (const transport of pc.iceTransports) {
    const protocols = (transport.connection as unknown as { protocols?: { request(...args: unknown[]): Promise<unknown> }[] }).protocols;
    if (protocols === undefined || protocols.length === 0) throw new Error("werift's ICE agent has no STUN protocols to patch (changed werift?)");
    for (const protocol of protocols) {
      const request = protocol.request.bind(protocol);
      protocol.request = async (...args: unknown[]) =>
        request(...args.map((arg, index) => (index === 3 && typeof arg === 'number' && arg > 0 ? patientCheckRetransmissions : arg)));
    }
  }
}

/** Resolves with the first data channel the server opens to `pc`, once open. */
function channelOpened(pc: RTCPeerConnection): Promise<RTCDataChannel> {
  return new Promise((resolve) => {
    pc.onDataChannel.subscribe((channel) => {
      if (channel.readyState === 'open') resolve(channel);
      channel.stateChanged.subscribe((state) => {
        if (state === 'open') resolve(channel);
      });
    });
  });
}

describe('the werift patch (patches/werift+0.24.4.patch) in the WebRTC transport', () => {
  let transport: WebRtcTransport | undefined;
  const peers: NodePeerClient[] = [];
  const clients: RTCPeerConnection[] = [];
  const sockets: StunSocket[] = [];

  function start(): WebRtcTransport {
    transport = createWebRtcTransport({ provider: createTestProvider().provider, network: 'loopback' });
    return transport;
  }

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    // The server closes first, so each channel closes cleanly on both sides.
    await transport?.close();
    transport = undefined;
    for (const peer of peers.splice(0)) await peer.close();
    for (const client of clients.splice(0)) await client.close();
  });

  it('is installed patched', async () => {
    await expect(weriftIsPatched()).resolves.toBe(true);
  });

  it('answers only ICE checks that name both ufrags and are signed with the ice-pwd, and keeps the session', async () => {
    const server = start();
    let ice = { ufrag: '', pwd: '', port: 0 };
    let clientUfrag = '';
    const peer = await connectNodePeer(async (sdp) => {
      const answer = await server.handlers['webrtc.offer']({ sdp, peer_id: 'genuine' }, httpContext);
      ice = iceOf(answer.sdp);
      clientUfrag = sdpField(sdp, /^a=ice-ufrag:(\S+)/mu);
      const right = `${ice.ufrag}:${clientUfrag}`;
      // Before the client's first check (it has no answer yet), someone who knows both ufrags but
      // not the ice-pwd nominates its own address, to take the session over.
      const beforeChecks = await probe(
        ice.port,
        bindingRequest({ username: right, key: ice.pwd, integrity: 'good', useCandidate: false }),
        {
          'right USERNAME, unsigned': bindingRequest({ username: right, key: '', integrity: 'none', useCandidate: true }),
          'right USERNAME, signed with another key': bindingRequest({ username: right, key: ice.pwd, integrity: 'bad', useCandidate: true }),
        },
        sockets,
      );
      expect(beforeChecks).toEqual({
        signed: 'success response',
        forged: { 'right USERNAME, unsigned': 'none', 'right USERNAME, signed with another key': 'none' },
      });
      return answer;
    });
    peers.push(peer);

    const right = `${ice.ufrag}:${clientUfrag}`;
    const afterConnect = await probe(
      ice.port,
      bindingRequest({ username: right, key: ice.pwd, integrity: 'good', useCandidate: false }),
      {
        'reversed USERNAME (client:server), signed': bindingRequest({
          username: `${clientUfrag}:${ice.ufrag}`,
          key: ice.pwd,
          integrity: 'good',
          useCandidate: true,
        }),
        'unknown server ufrag, signed': bindingRequest({ username: `zzzz:${clientUfrag}`, key: ice.pwd, integrity: 'good', useCandidate: true }),
        'wrong client ufrag, signed': bindingRequest({ username: `${ice.ufrag}:evil`, key: ice.pwd, integrity: 'good', useCandidate: true }),
        'right USERNAME, signed with another key': bindingRequest({ username: right, key: ice.pwd, integrity: 'bad', useCandidate: true }),
        'right USERNAME, unsigned': bindingRequest({ username: right, key: '', integrity: 'none', useCandidate: true }),
      },
      sockets,
    );
    expect(afterConnect).toEqual({
      signed: 'success response',
      forged: {
        'reversed USERNAME (client:server), signed': 'none',
        'unknown server ufrag, signed': 'none',
        'wrong client ufrag, signed': 'none',
        'right USERNAME, signed with another key': 'none',
        'right USERNAME, unsigned': 'none',
      },
    });

    // The genuine session is untouched: still connected, and it serves calls.
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok', version: '1.2.3' });
    await expect(server.handlers['webrtc.session']({ session_id: peer.sessionId }, httpContext)).resolves.toMatchObject({
      peer_id: 'genuine',
      state: 'connected',
      data_channel_open: true,
      ended_because: null,
    });
    expect(server.openSessions).toBe(1);
  });

  it('answers no forged ICE check that reaches a session the server offered before its answer', async () => {
    // Until the answer names the client's ufrag, the transport's own USERNAME check lets every check
    // through (werift keeps them as early checks for the answer): here only the patch stops forged ones.
    const server = start();
    // As `connectNodePeerToServerOffer`, but with the client in reach, so that it is closed whatever happens
    // (a client whose channel never opens would otherwise keep the worker alive).
    const client = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false, maxMessageSize: 262_144 });
    clients.push(client);
    const opened = channelOpened(client);
    const offer = await server.handlers['webrtc.offer']({ peer_id: 'genuine' }, httpContext);
    await client.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    // The client's ufrag is known from its answer; it starts checking only once it sets that answer (below).
    const answer = await client.createAnswer();
    const ice = iceOf(offer.sdp);
    const clientUfrag = sdpField(answer.sdp, /^a=ice-ufrag:(\S+)/mu);
    const right = `${ice.ufrag}:${clientUfrag}`;
    await expect(server.handlers['webrtc.session']({ session_id: offer.session_id }, httpContext)).resolves.toMatchObject({ state: 'waiting_for_answer' });
    const beforeAnswer = await probe(
      ice.port,
      bindingRequest({ username: right, key: ice.pwd, integrity: 'good', useCandidate: false }),
      {
        'USERNAME abcd:efgh, unsigned': bindingRequest({ username: 'abcd:efgh', key: '', integrity: 'none', useCandidate: true }),
        'reversed USERNAME (client:server), signed': bindingRequest({
          username: `${clientUfrag}:${ice.ufrag}`,
          key: ice.pwd,
          integrity: 'good',
          useCandidate: true,
        }),
        'right USERNAME, signed with another key': bindingRequest({ username: right, key: ice.pwd, integrity: 'bad', useCandidate: true }),
        'right USERNAME, unsigned': bindingRequest({ username: right, key: '', integrity: 'none', useCandidate: true }),
      },
      sockets,
    );
    expect(beforeAnswer).toEqual({
      signed: 'success response',
      forged: {
        'USERNAME abcd:efgh, unsigned': 'none',
        'reversed USERNAME (client:server), signed': 'none',
        'right USERNAME, signed with another key': 'none',
        'right USERNAME, unsigned': 'none',
      },
    });

    await client.setLocalDescription(answer);
    await gathered(client);
    patientChecks(client);
    const answerSdp = client.localDescription?.sdp ?? '';
    expect(sdpField(answerSdp, /^a=ice-ufrag:(\S+)/mu)).toBe(clientUfrag);
    await expect(server.handlers['webrtc.answer']({ session_id: offer.session_id, sdp: answerSdp }, httpContext)).resolves.toEqual({
      success: true,
      session_id: offer.session_id,
    });
    const channel = await within(opened, 10_000, 'the data channel did not open within 10 s');
    const calls = createEnvelopeClient({ send: (text) => channel.send(text) });
    channel.onMessage.subscribe((data) => calls.receive(typeof data === 'string' ? data : data.toString('utf8')));
    await expect(calls.call('health', null)).resolves.toMatchObject({ status: 'ok', version: '1.2.3' });
    await expect(server.handlers['webrtc.session']({ session_id: offer.session_id }, httpContext)).resolves.toMatchObject({
      peer_id: 'genuine',
      state: 'connected',
      data_channel_open: true,
      ended_because: null,
    });
  });

  it('ends the session of a peer that sends a never-ending message, holding little memory, and keeps serving others', async () => {
    const server = start();
    const connect = async (peerId: string): Promise<NodePeerClient> => {
      const peer = await connectNodePeer(async (sdp) => server.handlers['webrtc.offer']({ sdp, peer_id: peerId }, httpContext));
      peers.push(peer);
      return peer;
    };
    const honest = await connect('honest');
    const hostile = await connect('hostile');
    expect(server.openSessions).toBe(2);

    const sctp = sctpOf(hostile);
    const streamId = hostile.channel.id;
    const ssn = sctp.outboundStreamSeq[streamId] ?? 0;
    const fragment = Buffer.alloc(fragmentBytes, 0x61);
    const reasons: string[] = [];
    const prototype = Object.getPrototypeOf(sctp) as AbortingSctp;
    const abortInbound = prototype.abortInbound;
    prototype.abortInbound = function (this: unknown, reason: string): void {
      reasons.push(reason);
      abortInbound?.call(this, reason);
    };
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    let sent = 0;
    const deadline = Date.now() + 8000;
    const bothOpen = (): boolean => server.openSessions === 2;
    try {
      // One message: a first fragment, then middle fragments, and never a last one; up to 32 MiB.
      while (sent * fragmentBytes < offeredBytes && bothOpen() && Date.now() < deadline) {
        const chunks: Buffer[] = [];
        for (let n = 0; n < chunksPerPacket; n += 1, sent += 1) {
          const tsn = sctp.localTsn;
          sctp.localTsn = (tsn + 1) >>> 0;
          chunks.push(dataChunk(sent === 0 ? firstFragment : 0, tsn, streamId, ssn, fragment));
        }
        await sctp.sendChunk({ bytes: Buffer.concat(chunks) });
        // (A lost packet would stop the acknowledgements: then go on after 2 s.)
        const waitUntil = Date.now() + 2000;
        while (unacknowledged(sctp) >= windowChunks && bothOpen() && Date.now() < waitUntil) await sleep(1);
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      }
      await waitFor(() => server.openSessions === 1, 2000);
    } finally {
      if (abortInbound === undefined) delete prototype.abortInbound;
      else prototype.abortInbound = abortInbound;
    }
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);

    // The 274th 1200-byte fragment takes the message past max(262,144, 256 KiB) + 64 KiB bytes.
    expect(reasons).toEqual(['a message being reassembled holds 328800 bytes (limit 327680)']);
    expect(server.openSessions).toBe(1);
    // The server took the whole first 327,600 bytes, and the session ended long before the 32 MiB were sent.
    expect(sent).toBeGreaterThanOrEqual(274);
    expect(sent * fragmentBytes).toBeLessThan(2 ** 20);
    // Without the bound the server keeps all it is sent (29 MiB more in 8 s here); with it, a few MiB of garbage.
    expect(peak - before).toBeLessThan(16 * 2 ** 20);
    await expect(server.handlers['webrtc.session']({ session_id: hostile.sessionId }, httpContext)).resolves.toMatchObject({
      peer_id: 'hostile',
      state: 'disconnected',
      data_channel_open: false,
      ended_because: expect.stringMatching(/^the data channel closed, \d+ ms after the offer$/u),
    });
    // The other session is unaffected, and still takes a message near the 256 KiB limit.
    await expect(honest.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
    const big = 'x'.repeat(250_000);
    await expect(honest.client.call('chat.completions', { messages: [{ role: 'user', content: big }] }, 'big-1')).resolves.toMatchObject({
      choices: [{ message: { role: 'assistant', content: `echo: ${big}` } }],
    });
    await expect(server.handlers['webrtc.session']({ session_id: honest.sessionId }, httpContext)).resolves.toMatchObject({
      peer_id: 'honest',
      state: 'connected',
      data_channel_open: true,
      ended_because: null,
    });
    expect(server.openSessions).toBe(1);
  });
});
