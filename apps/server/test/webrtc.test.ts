import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { RouteCallError } from '@tabagent/route-envelope';
import { connectNodePeer, type NodePeerClient, type SignalledSdp } from '@tabagent/webrtc/test-support';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';

// The WebRTC transport as `tabagent serve` runs it: signalling over real HTTP (with the origin
// allowlist), a werift client peer, and calls over the channel reaching the real backends.
const page = 'http://127.0.0.1:5173';
/** Four more web apps: the session limit is per caller (8) as well as in all (32). */
const otherPages = [5174, 5175, 5176, 5177].map((port) => `http://127.0.0.1:${port}`);
let root: string;
let server: RunningServer;
let base: string;
const peers: NodePeerClient[] = [];

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'webrtc-'));
  mkdirSync(path.join(root, 'models'));
  writeTinyLlamaGguf(path.join(root, 'models', 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
  const config = parseServeArguments(
    ['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off', '--allowed-origin', [page, ...otherPages].join(',')],
    {},
  );
  server = await startServer(config, { logger: pino({ level: 'silent' }) });
  base = server.httpUrl as string;
}, 60_000);

afterAll(async () => {
  await server.close();
  for (const peer of peers) await peer.close();
  rmSync(root, { recursive: true, force: true });
});

function post(route: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: page, ...headers }, body: JSON.stringify(body) });
}

async function signal(sdp: string): Promise<SignalledSdp> {
  const response = await post('/v1/webrtc/offer', { sdp, peer_id: 'node-test' });
  const body = (await response.json()) as SignalledSdp & Record<string, unknown>;
  if (response.status !== 200) throw new Error(`offer refused: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function connect(): Promise<NodePeerClient> {
  const peer = await connectNodePeer(signal);
  peers.push(peer);
  return peer;
}

describe('WebRTC in tabagent serve', () => {
  it('signals over HTTP and streams a chat from the GGUF over the channel, stoppable by request id', async () => {
    const peer = await connect();
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok', service: 'tabagent-server' });
    const chunks: string[] = [];
    for await (const chunk of peer.client.stream('chat.completions', {
      model: 'chat',
      messages: [{ role: 'user', content: 'hello' }],
      stream: true,
      max_tokens: 8,
      ignore_eos: true,
    })) {
      chunks.push(chunk.choices[0]?.delta.content ?? '');
    }
    expect(chunks.join('').length).toBeGreaterThan(0);

    const stopped: unknown[] = [];
    let stopReply: unknown;
    for await (const chunk of peer.client.stream(
      'chat.completions',
      { model: 'chat', messages: [{ role: 'user', content: 'hello' }], stream: true, max_tokens: 1500, ignore_eos: true },
      'long-1',
    )) {
      stopped.push(chunk);
      if (stopped.length === 2) stopReply = await peer.client.call('generation.stop', { request_id: 'long-1' });
    }
    expect(stopReply).toEqual({ status: 'stopped', request_id: 'long-1', stopped: 1 });
    expect(stopped.length).toBeLessThan(1500);

    const session = await fetch(`${base}/v1/webrtc/session/${peer.sessionId}`, { headers: { origin: page } });
    expect(await session.json()).toMatchObject({ session_id: peer.sessionId, peer_id: 'node-test', state: 'connected', data_channel_open: true });
  });

  it('runs the caller-owned rules: a stop from another transport cannot stop a channel call', async () => {
    const peer = await connect();
    const running = peer.client
      .stream('chat.completions', { model: 'chat', messages: [{ role: 'user', content: 'x' }], stream: true, max_tokens: 1500, ignore_eos: true }, 'own-1')
      [Symbol.asyncIterator]();
    await running.next();
    const fromHttp = await post('/v1/generation/stop', { request_id: 'own-1' });
    expect(await fromHttp.json()).toMatchObject({ status: 'not_found', stopped: 0 });
    await expect(peer.client.call('generation.stop', { request_id: 'own-1' })).resolves.toMatchObject({ status: 'stopped' });
    for (let next = await running.next(); next.done !== true; next = await running.next());
  });

  it('holds a session to its pairing token: chat scope cannot open one, and a revoked token ends what it opened', async () => {
    const native = {
      requestId: 'pair',
      signal: new AbortController().signal,
      transport: 'native-messaging' as const,
      caller: { origin: 'chrome-extension://x/' },
    };
    const mint = async (scope: 'chat' | 'full') =>
      (await server.provider.handle('pairing.create', { label: `web app (${scope})`, scope }, native)) as { id: string; token: string };
    const app = 'http://127.0.0.1:7000';
    const offerWith = (token: string, sdp: string) =>
      fetch(`${base}/v1/webrtc/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, origin: app },
        body: JSON.stringify({ sdp }),
      });
    const chat = await mint('chat');
    const refused = await offerWith(chat.token, 'v=0');
    expect([refused.status, ((await refused.json()) as { code: string }).code]).toEqual([403, 'forbidden']);

    const full = await mint('full');
    const peer = await connectNodePeer(async (sdp) => (await offerWith(full.token, sdp)).json() as Promise<SignalledSdp>);
    await expect(peer.client.call('params.get', null)).resolves.toMatchObject({ temperature: expect.any(Number) });
    await server.provider.handle('pairing.revoke', { id: full.id }, native);
    await expect(peer.client.call('params.get', null)).rejects.toMatchObject({
      problem: { code: 'unauthorized', detail: 'The pairing token that opened this WebRTC session was revoked or has expired' },
    });
    await peer.close();
  });

  it('refuses an offer from a page not on the allowlist, garbage SDPs, unknown sessions and bad candidates', async () => {
    const evil = await post('/v1/webrtc/offer', { sdp: 'v=0' }, { origin: 'https://evil.example' });
    expect([evil.status, ((await evil.json()) as { code: string }).code]).toEqual([403, 'forbidden']);
    const garbage = await post('/v1/webrtc/offer', { sdp: 'v=0\r\nthis is not an offer' });
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toMatchObject({
      code: 'invalid_request',
      detail:
        'The SDP offer is not usable: it has no data channel section (m=application ... webrtc-datachannel); it has no a=ice-ufrag; it has no a=ice-pwd; it has no a=fingerprint',
    });
    const unknown = await post('/v1/webrtc/ice', { session_id: 'no-such-session', candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host' });
    expect([unknown.status, ((await unknown.json()) as { detail: string }).detail]).toEqual([404, 'No WebRTC session no-such-session']);
    // A session id longer than any the server makes is refused as invalid, and not echoed back.
    const longId = 's'.repeat(1_000_000);
    for (const [route, body] of [
      ['/v1/webrtc/ice', { session_id: longId, candidate: '' }],
      ['/v1/webrtc/answer', { session_id: longId, sdp: 'v=0' }],
    ] as const) {
      const refused = await post(route, body);
      const text = await refused.text();
      expect([route, refused.status, (JSON.parse(text) as { code: string }).code, text.includes('s'.repeat(100))]).toEqual([
        route,
        400,
        'invalid_request',
        false,
      ]);
    }
    const peer = await connect();
    const bad = await post('/v1/webrtc/ice', { session_id: peer.sessionId, candidate: 'candidate:x' });
    expect(bad.status).toBe(400);
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
  });

  it('bounds sessions: 10,000 offers from five web apps open 32 sessions (8 per app at most), the rest get 429 with Retry-After', async () => {
    const closedIds = peers.map((peer) => peer.sessionId);
    for (const peer of peers.splice(0)) await peer.close();
    // One real browser-like offer, posted 10,000 times by 50 concurrent clients.
    let offerSdp = '';
    const probe = await connectNodePeer(async (sdp) => {
      offerSdp = sdp;
      return signal(sdp);
    });
    await probe.close();
    // Closed channels end their sessions at once: every slot is free again.
    for (const sessionId of closedIds.concat(probe.sessionId)) {
      const state = async () =>
        ((await (await fetch(`${base}/v1/webrtc/session/${sessionId}`, { headers: { origin: page } })).json()) as { state: string }).state;
      expect(await state()).toBe('disconnected');
    }
    const statuses = new Map<number, number>();
    let retryAfter: string | null = null;
    let next = 0;
    const opened: { sessionId: string; origin: string }[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 10_000) {
          next += 1;
          const origin = [page, ...otherPages][next % 5] as string;
          const response = await post('/v1/webrtc/offer', { sdp: offerSdp }, { origin });
          if (response.status === 429) retryAfter = response.headers.get('retry-after');
          const body = (await response.json()) as { session_id?: string };
          if (response.status === 200) opened.push({ sessionId: body.session_id as string, origin });
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        }
      }),
    );
    expect([...statuses.keys()].sort()).toEqual([200, 429]);
    expect(retryAfter).toBe('5');
    // These sessions never connect (their client is gone): on a busy machine the flood outlasts
    // the 30 s connect timeout, which frees slots for more. What must hold is the bound itself:
    // at no moment more than 32 open, nor more than 8 of one app, and the bound was reached.
    const spans = await Promise.all(
      opened.map(async ({ sessionId, origin }) => {
        const session = (await (await fetch(`${base}/v1/webrtc/session/${sessionId}`, { headers: { origin } })).json()) as {
          created_at: string;
          ended_because: string | null;
        };
        const start = Date.parse(session.created_at);
        const endedAfter = session.ended_because === null ? null : Number(/, (\d+) ms after the offer$/u.exec(session.ended_because)?.[1]);
        if (endedAfter !== null) expect(session.ended_because).toMatch(/^it did not connect within 30000 ms \(/u);
        return { origin, start, end: endedAfter === null ? Number.POSITIVE_INFINITY : start + endedAfter };
      }),
    );
    const mostAtOnce = (of: typeof spans): number =>
      Math.max(...of.map((span) => of.filter((other) => other.start <= span.start && other.end > span.start).length));
    expect(mostAtOnce(spans)).toBe(32);
    for (const origin of [page, ...otherPages]) expect([origin, mostAtOnce(spans.filter((span) => span.origin === origin)) <= 8]).toEqual([origin, true]);
    expect(statuses.get(200)).toBe(opened.length);
    expect((statuses.get(200) ?? 0) + (statuses.get(429) ?? 0)).toBe(10_000);
    const health = await fetch(`${base}/v1/health`);
    expect(health.status).toBe(200);
  }, 120_000);

  it('answers a non-JSON message and an unknown route with errors and keeps the channel', async () => {
    // The previous test filled every session slot; they expire after 30 s unless closed, so use a fresh server.
    const other = await startServer(parseServeArguments(['--port', '0', '--data-dir', path.join(root, 'other'), '--gpu', 'off'], {}), {
      logger: pino({ level: 'silent' }),
    });
    try {
      const peer = await connectNodePeer(async (sdp) => {
        const response = await fetch(`${other.httpUrl as string}/v1/webrtc/offer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sdp }),
        });
        return (await response.json()) as SignalledSdp;
      });
      peer.sendRaw('not json at all');
      await expect(peer.client.call('nope' as 'health', null)).rejects.toBeInstanceOf(RouteCallError);
      expect(JSON.parse(peer.received[0] ?? '')).toMatchObject({ request_id: null, ok: false, error: { code: 'invalid_request' } });
      await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
      await peer.close();
    } finally {
      await other.close();
    }
  });

  it('is off with --webrtc off: the routes answer 501 saying so', async () => {
    const off = await startServer(parseServeArguments(['--port', '0', '--data-dir', path.join(root, 'off'), '--gpu', 'off', '--webrtc', 'off'], {}), {
      logger: pino({ level: 'silent' }),
    });
    try {
      const response = await fetch(`${off.httpUrl as string}/v1/webrtc/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({}),
      });
      expect(response.status).toBe(501);
      expect(await response.json()).toMatchObject({
        code: 'not_implemented',
        detail:
          'webrtc.offer is not available: the WebRTC transport is off in this server: it runs in the http and all modes unless started with --webrtc off.',
      });
    } finally {
      await off.close();
    }
  });
});
