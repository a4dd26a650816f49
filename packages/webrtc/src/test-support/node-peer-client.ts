import { createEnvelopeClient, type EnvelopeClient } from '@tabagent/route-envelope';
import { RTCPeerConnection, type RTCDataChannel } from 'werift';

/** What a signalling step returns: the server's answer (or offer) and its session id. */
export interface SignalledSdp {
  session_id: string;
  sdp: string;
  type: 'answer' | 'offer';
}

/** A Node peer connected to the server's `tabagent` channel, with a route-envelope client on it. */
export interface NodePeerClient {
  readonly sessionId: string;
  readonly pc: RTCPeerConnection;
  readonly channel: RTCDataChannel;
  readonly client: EnvelopeClient;
  /** Every message text the server sent, in order (continuation parts included). */
  readonly received: string[];
  /** Sends a raw text on the channel (bad input tests). */
  sendRaw(text: string | Buffer): void;
  /** Closes the channel (the server sees it at once), then the peer connection. */
  close(): Promise<void>;
}

function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') resolve();
    });
  });
}

/** Where a connection got to: which of ICE, DTLS and SCTP did not finish, when the channel did not open. */
function connectionStates(pc: RTCPeerConnection, channel: RTCDataChannel): string {
  const dtls = pc.dtlsTransports.map((transport) => transport.state).join('/') || 'none';
  return `connection ${pc.connectionState}, ice ${pc.iceConnectionState}, dtls ${dtls}, sctp ${pc.sctpTransport?.sctp.state ?? 'none'}, channel ${channel.readyState}`;
}

function opened(pc: RTCPeerConnection, channel: RTCDataChannel, timeoutMs: number): Promise<void> {
  if (channel.readyState === 'open') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the data channel did not open within ${timeoutMs} ms (${connectionStates(pc, channel)})`)), timeoutMs);
    channel.stateChanged.subscribe((state) => {
      if (state === 'open') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function clientPeer(): RTCPeerConnection {
  return new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false, maxMessageSize: 262_144 });
}

function wire(sessionId: string, pc: RTCPeerConnection, channel: RTCDataChannel): NodePeerClient {
  const received: string[] = [];
  const client = createEnvelopeClient({ send: (text) => channel.send(text) });
  channel.onMessage.subscribe((data) => {
    const text = typeof data === 'string' ? data : data.toString('utf8');
    received.push(text);
    try {
      client.receive(text);
    } catch {
      // Not a route-envelope message (a bare peer's data): it stays in `received` only.
    }
  });
  channel.stateChanged.subscribe((state) => {
    if (state === 'closed') client.close(new Error('the data channel closed'));
  });
  return {
    sessionId,
    pc,
    channel,
    client,
    received,
    sendRaw: (text) => channel.send(text),
    close: async () => {
      if (channel.readyState === 'open') {
        const closed = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          channel.stateChanged.subscribe((state) => {
            if (state === 'closed') {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        channel.close();
        await closed;
      }
      await pc.close();
    },
  };
}

/**
 * Connects as a browser does: the client offers a `tabagent` channel, `signal` posts the offer
 * (to `webrtc.offer`, over HTTP or directly) and returns the server's answer.
 */
export async function connectNodePeer(signal: (offerSdp: string) => Promise<SignalledSdp>, timeoutMs = 10_000): Promise<NodePeerClient> {
  const pc = clientPeer();
  try {
    const channel = pc.createDataChannel('tabagent');
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await signal(pc.localDescription?.sdp ?? '');
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    await opened(pc, channel, timeoutMs);
    return wire(answer.session_id, pc, channel);
  } catch (error) {
    // A peer that failed to connect still holds its UDP socket and timers: close it, or the
    // caller's process cannot exit.
    await pc.close().catch(() => undefined);
    throw error;
  }
}

/** Connects the other way: the server offers (`webrtc.offer` without an SDP) and the client answers through `answer`. */
export async function connectNodePeerToServerOffer(
  offer: () => Promise<SignalledSdp>,
  answer: (sessionId: string, answerSdp: string) => Promise<void>,
  timeoutMs = 10_000,
): Promise<NodePeerClient> {
  const pc = clientPeer();
  const channelArrived = new Promise<RTCDataChannel>((resolve) => {
    pc.onDataChannel.subscribe(resolve);
  });
  const serverOffer = await offer();
  await pc.setRemoteDescription({ type: 'offer', sdp: serverOffer.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  await answer(serverOffer.session_id, pc.localDescription?.sdp ?? '');
  const channel = await channelArrived;
  await opened(pc, channel, timeoutMs);
  return wire(serverOffer.session_id, pc, channel);
}
