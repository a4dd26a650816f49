import fc from 'fast-check';
import { jest } from '@jest/globals';
import { RouteCallError, createContinuationReassembler } from '@tabagent/route-envelope';
import { RTCPeerConnection } from 'werift';
import { createTestProvider, type TestBackendState } from '@tabagent/route-envelope/test-support';
import { safeParseJson, type CallContext, type RouteRequest } from '@tabagent/values';
import { ChannelOpenTimeoutError, connectNodePeer, connectNodePeerToServerOffer, type NodePeerClient } from './test-support/node-peer-client.js';
import { createWebRtcTransport, type WebRtcTransport, type WebRtcTransportOptions } from './webrtc-transport.js';

const httpContext: CallContext = {
  requestId: 'signal-1',
  signal: new AbortController().signal,
  transport: 'http',
  caller: { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop' },
};

function parse(text: string): Record<string, unknown> {
  const parsed = safeParseJson(text);
  if (!parsed.success) throw parsed.error;
  return parsed.value as Record<string, unknown>;
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('WebRTC transport', () => {
  let transport: WebRtcTransport;
  let state: TestBackendState;
  const peers: NodePeerClient[] = [];

  function start(options: Partial<WebRtcTransportOptions> = {}): void {
    const test = createTestProvider();
    state = test.state;
    transport = createWebRtcTransport({ provider: test.provider, network: 'loopback', ...options });
  }

  async function offer(request: RouteRequest<'webrtc.offer'>) {
    return transport.handlers['webrtc.offer'](request, httpContext);
  }

  async function connect(): Promise<NodePeerClient> {
    const peer = await connectNodePeer(async (sdp) => offer({ sdp, peer_id: 'test-page' }));
    peers.push(peer);
    return peer;
  }

  afterEach(async () => {
    // The server closes first, so each channel closes cleanly on both sides.
    await transport.close();
    for (const peer of peers.splice(0)) await peer.close();
  });

  it('the test client connects again, once, when its first channel does not open (an answer from a server that is gone)', async () => {
    start();
    const deadAnswer = async (sdp: string) => {
      const gone = createWebRtcTransport({ provider: createTestProvider().provider, network: 'loopback' });
      const answer = await gone.handlers['webrtc.offer']({ sdp, peer_id: 'gone' }, httpContext);
      await gone.close();
      return answer;
    };
    await expect(connectNodePeer(deadAnswer, 1500, { attempts: 1 })).rejects.toBeInstanceOf(ChannelOpenTimeoutError);
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      let signals = 0;
      const peer = await connectNodePeer(async (sdp) => {
        signals += 1;
        return signals === 1 ? deadAnswer(sdp) : offer({ sdp, peer_id: 'test-page' });
      }, 1500);
      peers.push(peer);
      expect(signals).toBe(2);
      expect(warn.mock.calls.map(([message]) => String(message).split(':')[0])).toEqual(['connectNodePeer']);
      await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
    } finally {
      warn.mockRestore();
    }
  });

  it('answers an offer with loopback candidates only and serves calls over the channel', async () => {
    start();
    const peer = await connectNodePeer(async (sdp) => {
      const answer = await offer({ sdp, peer_id: 'test-page' });
      expect(answer).toMatchObject({ type: 'answer', state: 'connecting', max_message_size: 262_144 });
      const candidates = answer.sdp.split('\r\n').filter((line) => line.startsWith('a=candidate:'));
      expect(candidates.length).toBeGreaterThan(0);
      expect(candidates.every((line) => / 127\.0\.0\.1 \d+ typ host/u.test(line))).toBe(true);
      expect(answer.ice_candidates.map(({ candidate }) => `a=${candidate}`)).toEqual(candidates);
      return answer;
    });
    peers.push(peer);
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok', version: '1.2.3' });
    await peer.client.call('chat.completions', { messages: [{ role: 'user', content: 'hi' }] }, 'chat-1');
    const context = state.contexts[0];
    expect({ requestId: context?.requestId, transport: context?.transport, caller: context?.caller }).toEqual({
      requestId: 'chat-1',
      transport: 'webrtc',
      caller: { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop', peerId: peer.sessionId },
    });
    await expect(transport.handlers['webrtc.session']({ session_id: peer.sessionId }, httpContext)).resolves.toMatchObject({
      session_id: peer.sessionId,
      peer_id: 'test-page',
      state: 'connected',
      data_channel_open: true,
      calls_in_flight: 0,
      ended_because: null,
    });
  });

  it('also connects when the server offers and the client answers', async () => {
    start();
    const peer = await connectNodePeerToServerOffer(
      async () => {
        const serverOffer = await offer({});
        expect(serverOffer).toMatchObject({ type: 'offer', state: 'waiting_for_answer' });
        return serverOffer;
      },
      async (sessionId, sdp) => {
        await expect(transport.handlers['webrtc.answer']({ session_id: sessionId, sdp }, httpContext)).resolves.toEqual({
          success: true,
          session_id: sessionId,
        });
      },
    );
    peers.push(peer);
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
    await expect(transport.handlers['webrtc.answer']({ session_id: peer.sessionId, sdp: 'v=0' }, httpContext)).rejects.toMatchObject({
      code: 'conflict',
      message: `Session ${peer.sessionId} is connected: only a session the server offered (opened without an SDP) takes an answer`,
    });
  });

  it('streams chunks, stops a call by request id, and splits a reply over 1 MB into continuations', async () => {
    start();
    const peer = await connect();
    const words: unknown[] = [];
    for await (const chunk of peer.client.stream('chat.completions', { stream: true, messages: [{ role: 'user', content: 'hi' }] })) {
      words.push(chunk.choices[0]?.delta.content);
    }
    expect(words).toEqual(['one ', 'two ', 'three']);

    const slow = peer.client.call('chat.completions', { messages: [{ role: 'user', content: 'slow' }] }, 'gen-1').catch((error: unknown) => error);
    await until(() => state.generations.has('gen-1'));
    await expect(peer.client.call('generation.stop', { request_id: 'gen-1' })).resolves.toEqual({ status: 'stopped', request_id: 'gen-1', stopped: 1 });
    const stopped = await slow;
    expect(stopped).toBeInstanceOf(RouteCallError);
    expect((stopped as RouteCallError).problem).toMatchObject({ code: 'cancelled' });

    peer.received.length = 0;
    const logs = await peer.client.call('system.logs', { lines: 10_000 });
    expect(Buffer.byteLength(JSON.stringify(logs))).toBeGreaterThan(1024 * 1024);
    expect(logs.lines.split('\n')[9_999]).toBe(`2026-01-01T00:00:00.000Z INFO line 19999 ${'x'.repeat(100)}`);
    expect(peer.received.length).toBeGreaterThanOrEqual(Math.ceil(Buffer.byteLength(JSON.stringify(logs)) / 262_144));
    expect(peer.received.every((text) => Buffer.byteLength(text) <= 262_144)).toBe(true);
    const reassembler = createContinuationReassembler();
    const whole = peer.received.map((text) => reassembler.accept(parse(text))).filter((message) => message !== undefined);
    expect(whole).toHaveLength(1);
  });

  it('aborts in-flight calls when the channel closes', async () => {
    start();
    const peer = await connect();
    void peer.client.call('chat.completions', { messages: [{ role: 'user', content: 'slow' }] }, 'gen-2').catch(() => undefined);
    await until(() => state.generations.has('gen-2'));
    const call = state.contexts.find((context) => context.requestId === 'gen-2');
    peer.channel.close();
    await until(() => call?.signal.aborted === true);
    await until(() => !state.generations.has('gen-2'));
    await expect(transport.handlers['webrtc.session']({ session_id: peer.sessionId }, httpContext)).resolves.toMatchObject({
      state: 'disconnected',
      ended_because: expect.stringMatching(/^the data channel closed, \d+ ms after the offer$/u),
    });
    expect(transport.openSessions).toBe(0);
  });

  it('closes a session whose peer vanished without closing (no ICE consent checks) and aborts its calls', async () => {
    // werift's client checks consent every 4-6 s, so 7 s without one means the peer is gone.
    start({ consentTimeoutMs: 7000, sweepIntervalMs: 100 });
    const peer = await connect();
    void peer.client.call('chat.completions', { messages: [{ role: 'user', content: 'slow' }] }, 'gen-3').catch(() => undefined);
    await until(() => state.generations.has('gen-3'));
    // Only the peer connection goes, as when a tab is killed: no channel close reaches the server.
    await peer.pc.close();
    await until(() => !state.generations.has('gen-3'), 20_000);
    await expect(transport.handlers['webrtc.session']({ session_id: peer.sessionId }, httpContext)).resolves.toMatchObject({
      state: 'disconnected',
      ended_because: expect.stringMatching(/^no ICE consent check for 7000 ms, \d+ ms after the offer$/u),
    });
  }, 30_000);

  it('answers bad channel messages with errors and keeps serving', async () => {
    start({ maxMessageBytes: 16_384 });
    // The client is made to believe the server takes 256 KiB, as a misbehaving peer might.
    const peer = await connectNodePeer(async (sdp) => {
      const answer = await offer({ sdp });
      expect(answer.sdp).toContain('a=max-message-size:16384\r\n');
      return { ...answer, sdp: answer.sdp.replace('a=max-message-size:16384', 'a=max-message-size:262144') };
    });
    peers.push(peer);
    peer.sendRaw('{not json');
    peer.sendRaw(Buffer.from([1, 2, 3]));
    peer.sendRaw(JSON.stringify({ id: 'health', request_id: 'big', payload: { pad: 'x'.repeat(20_000) } }));
    peer.sendRaw(`{"id":"health","request_id":"deep","payload":${'['.repeat(100)}${']'.repeat(100)}}`);
    await until(() => peer.received.length === 4);
    expect(peer.received.map(parse)).toEqual([
      {
        request_id: null,
        ok: false,
        error: expect.objectContaining({ code: 'invalid_request', detail: expect.stringMatching(/^A channel message must be JSON: /u) }),
      },
      {
        request_id: null,
        ok: false,
        error: expect.objectContaining({ code: 'invalid_request', detail: 'Channel messages are JSON text; a binary message was received' }),
      },
      {
        request_id: null,
        ok: false,
        error: expect.objectContaining({
          code: 'payload_too_large',
          detail: 'A channel message of 20055 bytes exceeds the 16384-byte limit; send large requests as continuation parts',
        }),
      },
      {
        request_id: null,
        ok: false,
        error: expect.objectContaining({ code: 'invalid_request', detail: 'A channel message must be JSON: The JSON message nests deeper than 64 levels' }),
      },
    ]);
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
  });

  it('survives hostile channel messages: huge request ids, part floods, mangled envelopes', async () => {
    start();
    const peer = await connect();
    const unexpected: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      unexpected.push(reason);
    };
    process.on('unhandledRejection', onRejection);
    try {
      peer.sendRaw(JSON.stringify({ id: 'health', request_id: 'x'.repeat(200_000), payload: null }));
      peer.sendRaw(JSON.stringify({ request_id: 'y'.repeat(200_000), part: 0, parts: 2, data_chunk: 'z' }));
      for (let n = 0; n < 100; n += 1) peer.sendRaw(JSON.stringify({ request_id: `open-${n}`, part: 0, parts: 2, data_chunk: '{' }));
      await fc.assert(
        fc.asyncProperty(fc.jsonValue(), async (value) => {
          peer.sendRaw(JSON.stringify(value));
          return true;
        }),
        { numRuns: 100, seed: 11 },
      );
      await until(() => peer.received.length >= 2);
      expect(parse(peer.received[0] ?? '')).toMatchObject({
        request_id: null,
        ok: false,
        error: { code: 'invalid_request', detail: 'request_id must be a string of at most 256 characters or an integer' },
      });
      expect(parse(peer.received[1] ?? '')).toMatchObject({
        request_id: null,
        error: { detail: 'A continuation part needs a request_id of at most 256 characters' },
      });
      // Past 64 unfinished requests, new ones are refused as busy instead of being kept.
      await until(() => peer.received.some((text) => text.includes('"open-99"')));
      expect(parse(peer.received.find((text) => text.includes('"open-99"')) ?? '')).toMatchObject({ request_id: 'open-99', error: { code: 'busy' } });
      await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
      expect(unexpected).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });

  it('refuses bad SDPs and candidates with 400s and unknown sessions with 404s', async () => {
    start();
    await expect(offer({ sdp: 'hello' })).rejects.toMatchObject({
      code: 'invalid_request',
      message:
        'The SDP offer is not usable: it must start with v=0; it has no data channel section (m=application ... webrtc-datachannel); it has no a=ice-ufrag; it has no a=ice-pwd; it has no a=fingerprint',
    });
    await expect(transport.handlers['webrtc.ice']({ session_id: 'nope', candidate: '' }, httpContext)).rejects.toMatchObject({
      code: 'not_found',
      message: 'No WebRTC session nope',
    });
    await expect(transport.handlers['webrtc.session']({ session_id: 'nope' }, httpContext)).rejects.toMatchObject({ code: 'not_found' });
    const peer = await connect();
    const ice = (candidate: string) =>
      transport.handlers['webrtc.ice']({ session_id: peer.sessionId, candidate, sdp_mid: '0', sdp_mline_index: 0 }, httpContext);
    await expect(ice('candidate:garbage')).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(ice('candidate:1 1 udp 2113937151 0f3c9a4e-1111-4a5b-9c1d-2e3f4a5b6c7d.local 54321 typ host generation 0')).resolves.toEqual({
      success: true,
      session_id: peer.sessionId,
    });
    await expect(ice('a=candidate:2 1 udp 2113937151 127.0.0.1 54322 typ host generation 0')).resolves.toEqual({ success: true, session_id: peer.sessionId });
    await expect(ice('')).resolves.toEqual({ success: true, session_id: peer.sessionId });
    // Another caller cannot signal for, or read, this session: to it the session does not exist.
    const stranger: CallContext = { ...httpContext, caller: { origin: 'http://127.0.0.1:9999' } };
    await expect(transport.handlers['webrtc.session']({ session_id: peer.sessionId }, stranger)).rejects.toMatchObject({ code: 'not_found' });
    await expect(transport.handlers['webrtc.ice']({ session_id: peer.sessionId, candidate: '' }, stranger)).rejects.toMatchObject({ code: 'not_found' });
    await expect(transport.handlers['webrtc.session']({ session_id: peer.sessionId }, httpContext)).resolves.toMatchObject({ ice_candidate_count: 2 });
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
  });

  it('answers every mangled offer with an answer or a 400, never a crash or another error', async () => {
    start({ maxSessions: 1000, maxSessionsPerCaller: 1000 });
    const client = new RTCPeerConnection({ iceServers: [] });
    client.createDataChannel('tabagent');
    await client.setLocalDescription(await client.createOffer());
    const lines = (client.localDescription?.sdp ?? '').split('\r\n');
    await client.close();
    const unexpected: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      unexpected.push(reason);
    };
    process.on('unhandledRejection', onRejection);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: lines.length - 1 }),
          fc.constantFrom('drop', 'garble', 'append', 'insert'),
          fc.string({ maxLength: 40 }),
          async (at, how, text) => {
            const mangled = [...lines];
            if (how === 'drop') mangled.splice(at, 1);
            else if (how === 'garble')
              mangled[at] = (mangled[at] ?? '').replace(/[0-9a-f]/giu, (c, index: number) => (index % 3 === 0 ? text.slice(0, 1) || 'Z' : c));
            else if (how === 'append') mangled[at] = `${mangled[at] ?? ''} ${text}`;
            else mangled.splice(at, 0, `a=${text}`);
            try {
              const answer = await offer({ sdp: mangled.join('\r\n') });
              return answer.type === 'answer';
            } catch (error) {
              return (error as { code?: string }).code === 'invalid_request';
            }
          },
        ),
        { numRuns: 60, seed: 7 },
      );
      await transport.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(unexpected).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  }, 60_000);

  it('bounds sessions per caller, and counts offers still loading werift against the limits', async () => {
    start({ maxSessions: 5, maxSessionsPerCaller: 2 });
    const other: CallContext = { ...httpContext, caller: { origin: 'http://127.0.0.1:5173' } };
    // Three concurrent offers from one caller: two sessions, one 429, however the werift import interleaves.
    const results = await Promise.allSettled([offer({}), offer({}), offer({})]);
    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(results.find((result) => result.status === 'rejected')).toMatchObject({
      reason: { code: 'rate_limited', details: { max_sessions_per_caller: 2, retry_after_seconds: 5 } },
    });
    await expect(transport.handlers['webrtc.offer']({}, other)).resolves.toMatchObject({ state: 'waiting_for_answer' });
    expect(transport.openSessions).toBe(3);
  });

  it('bounds sessions per remote address whatever callers it claims to be, except loopback', async () => {
    start({ maxSessions: 10, maxSessionsPerCaller: 8, maxSessionsPerAddress: 2 });
    const from = (address: string, origin: string): CallContext => ({ ...httpContext, caller: { origin, address } });
    const lan = ['http://a.localhost:1', 'http://b.localhost:2', 'http://c.localhost:3'].map((origin) => from('::ffff:192.168.1.20', origin));
    const results = await Promise.allSettled(lan.map((context) => transport.handlers['webrtc.offer']({}, context)));
    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(results.find((result) => result.status === 'rejected')).toMatchObject({
      reason: { code: 'rate_limited', message: '192.168.1.20 has 2 WebRTC sessions open; close one, or wait for unused ones to expire' },
    });
    await expect(transport.handlers['webrtc.offer']({}, from('192.168.1.21', 'http://a.localhost:1'))).resolves.toMatchObject({ state: 'waiting_for_answer' });
    for (const [index, address] of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1'].entries())
      await expect(transport.handlers['webrtc.offer']({}, from(address, `http://local${index}.localhost`))).resolves.toMatchObject({
        state: 'waiting_for_answer',
      });
    expect(transport.openSessions).toBe(7);
  });

  it('bounds open sessions (429 past the limit), expires unconnected ones, and closes all on shutdown', async () => {
    // The connect timeout must leave the first peer time to connect on a loaded CI machine.
    start({ maxSessions: 2, connectTimeoutMs: 4000, sweepIntervalMs: 50 });
    const first = await connect();
    const pending = await offer({});
    await expect(offer({})).rejects.toMatchObject({ code: 'rate_limited', details: { max_sessions: 2, retry_after_seconds: 5 } });
    await until(async () => (await transport.handlers['webrtc.session']({ session_id: pending.session_id }, httpContext)).state === 'closed', 15_000);
    expect(transport.openSessions).toBe(1);
    const third = await offer({});
    expect(third.state).toBe('waiting_for_answer');
    await transport.close();
    expect(transport.openSessions).toBe(0);
    await expect(offer({})).rejects.toMatchObject({ code: 'busy' });
    await until(() => first.channel.readyState === 'closed');
  });
});
