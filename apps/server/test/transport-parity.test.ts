import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createApiApp } from '@tabagent/api';
import { createFrameDecoder, createNativeMessagingHost, encodeFrame } from '@tabagent/native-messaging';
import { createContinuationReassembler } from '@tabagent/route-envelope';
import { RouteCallError } from '@tabagent/route-envelope';
import { createWebRtcTransport, type WebRtcTransport } from '@tabagent/webrtc';
import { connectNodePeer, type NodePeerClient } from '@tabagent/webrtc/test-support';
import { ModelNotFoundError, createAppStateProvider, routeIds, routeList, type AppStateProvider, type HandlerMap, type RouteId } from '@tabagent/values';

// Parity is structural: every transport validates with the same catalogue and calls the same
// provider. This test proves it for every route: the same request gives the same data (or the same
// problem) over HTTP, over native messaging's route envelope, and over a WebRTC data channel.

/**
 * The routes every transport serves alike. Ollama's (/api/chat) answer HTTP clients in Ollama's
 * shapes (NDJSON, `{"error"}`): the Ollama client's tests cover them. Anthropic's and the
 * Responses API's answer the same data everywhere (over HTTP as typed SSE events); Anthropic's
 * errors over HTTP are Anthropic-shaped, so they are left out of the bad-input comparison.
 */
const servedAlike = routeList.filter((route) => route.dialect !== 'ollama').map((route) => route.id);

/** A valid request for every route (path parameters included). */
const sampleRequests: Record<Exclude<RouteId, 'ollama.chat' | 'ollama.generate'>, Record<string, unknown>> = {
  health: {},
  'routes.list': {},
  'system.logs': { lines: 5 },
  'system.info': {},
  'hardware.info': {},
  'hardware.feasibility': { model_size_mb: 1200 },
  'hardware.recommendations': {},
  'resources.get': {},
  'resources.estimate': { model: 'tiny' },
  'resources.compatibility': { model: 'tiny' },
  'stats.get': {},
  'chat.completions': { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 },
  completions: { model: 'tiny', prompt: 'Once', max_tokens: 3 },
  'generation.stop': { request_id: 'r-1' },
  'generation.halt_status': {},
  'generation.halt': {},
  'params.get': {},
  'params.set': { temperature: 0.5 },
  'models.list': {},
  'models.loaded': {},
  'models.get': { model: 'tiny' },
  'models.load': { model: 'tiny', context_size: 512 },
  'models.unload': { model: 'tiny' },
  'models.select': { model: 'tiny' },
  'models.pull': { model: 'owner/name' },
  'models.scan': { model: 'owner/name' },
  'models.recommended': {},
  'models.downloads': {},
  'models.downloads.discard': { repo: 'owner/name', file: 'x.gguf' },
  'models.register': { path: '/models/x.gguf' },
  'models.delete': { model: 'tiny' },
  'models.alias': { model: 'tiny', alias: 'gpt-4o-mini' },
  'upstreams.list': {},
  'upstreams.refresh': {},
  'hf.token.set': { token: 'hf_abcdefgh' },
  'hf.token.status': {},
  'hf.token.clear': {},
  'pairing.create': { label: 'web app' },
  'pairing.list': {},
  'pairing.revoke': { id: 'p1' },
  embeddings: { input: ['a', 'b'] },
  rerank: { query: 'q', documents: ['a', 'b'] },
  similarity: { text1: 'a', text2: 'b' },
  semantic_search: { query: 'q', documents: ['a'] },
  'embeddings.evaluate': { queries: ['q'], documents: ['d'] },
  cluster: { texts: ['a', 'b', 'c'] },
  recommend: { query: 'q', candidates: ['a'] },
  'embedding_models.list': {},
  'rag.query': { query: 'q' },
  'sessions.history': { session_id: 's1', limit: 10 },
  'sessions.save_message': { session_id: 's1', message: { role: 'user', content: 'hello' } },
  'conversations.create': { title: 'T' },
  'conversations.list': { limit: 5 },
  'conversations.search': { query: 'q' },
  'conversations.get': { conversation_id: 'c1' },
  'conversations.delete': { conversation_id: 'c1' },
  'conversations.add_messages': { conversation_id: 'c1', messages: [{ role: 'user', content: 'x' }] },
  'sync.push': { conversations: [] },
  'sync.pull': { since: '2026-01-01T00:00:00Z' },
  'documents.ingest': { text: 'page', url: 'https://e.org' },
  'documents.list': { limit: 5 },
  'documents.get': { document_id: 'd1' },
  'memory.status': {},
  'memory.settings.get': {},
  'memory.settings.set': { embedding_model: 'e' },
  'webrtc.offer': { sdp: 'v=0' },
  'webrtc.answer': { session_id: 'w1', sdp: 'v=0' },
  'webrtc.ice': { session_id: 'w1', candidate: 'c' },
  'webrtc.session': { session_id: 'w1' },
  'legacy.generate': { messages: [{ role: 'user', content: 'hi' }], settings: { max_new_tokens: 4 } },
  'anthropic.messages': { model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] },
  'anthropic.count_tokens': { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] },
  'responses.create': { model: 'tiny', input: 'hi', max_output_tokens: 4 },
  'responses.input_tokens': { model: 'tiny', input: 'hi' },
  'responses.get': { response_id: 'resp_1' },
  'responses.delete': { response_id: 'resp_1' },
  'responses.input_items': { response_id: 'resp_1', limit: 5 },
};

/** Every handler echoes its route and validated request; chat streams three chunks; models.get fails. */
function echoProvider(): AppStateProvider {
  const handlers = Object.fromEntries(
    routeIds.map((id) => [
      id,
      async (request: Record<string, unknown>) => {
        if (id === 'models.get') throw new ModelNotFoundError(`No model named ${String(request['model'])}`, { details: { available: ['a', 'b'] } });
        if (request['stream'] === true) {
          return (async function* chunks() {
            for (let n = 0; n < 3; n += 1) yield { route: id, n };
          })();
        }
        return { route: id, request };
      },
    ]),
  ) as unknown as HandlerMap;
  return createAppStateProvider(handlers);
}

interface Outcome {
  ok: boolean;
  data?: unknown;
  chunks?: unknown[];
  problem?: { code: unknown; status: unknown; title: unknown; detail: unknown; issues?: unknown };
}

let server: Server;
let base: string;
const input = new PassThrough();
const output = new PassThrough();
const pending = new Map<string, (message: Record<string, unknown>) => void>();
const streams = new Map<string, unknown[]>();
let webrtc: WebRtcTransport;
let peer: NodePeerClient;

beforeAll(async () => {
  const provider = echoProvider();
  server = createApiApp(provider, { allowedOrigins: [] }).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  createNativeMessagingHost({ input, output, provider, version: '0.0.0' });
  // The echo provider answers the signalling routes too, so the real ones come from their own transport.
  webrtc = createWebRtcTransport({ provider, network: 'loopback' });
  const signalling = { requestId: 'signal', signal: new AbortController().signal, transport: 'http' as const, caller: {} };
  peer = await connectNodePeer(async (sdp) => webrtc.handlers['webrtc.offer']({ sdp }, signalling));
  const decoder = createFrameDecoder({ maxFrameBytes: 64 * 1024 * 1024 });
  const reassembler = createContinuationReassembler();
  output.on('data', (bytes: Buffer) => {
    for (const frame of decoder.push(bytes)) {
      if (frame.kind !== 'message') throw new Error(`bad frame ${frame.kind}`);
      const message = reassembler.accept(frame.value) as Record<string, unknown> | undefined;
      if (!message) continue;
      const id = String(message['request_id']);
      if ('chunk' in message) streams.set(id, [...(streams.get(id) ?? []), message['chunk']]);
      else pending.get(id)?.(message);
    }
  });
});

afterAll(async () => {
  await webrtc.close();
  await peer.close();
  input.end();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let counter = 0;
async function overNativeMessaging(id: RouteId, payload: Record<string, unknown>): Promise<Outcome> {
  const requestId = `p${(counter += 1)}`;
  const reply = new Promise<Record<string, unknown>>((resolve) => pending.set(requestId, resolve));
  input.write(encodeFrame({ id, request_id: requestId, payload }));
  const message = await reply;
  if (message['done'] === true) return { ok: true, chunks: streams.get(requestId) ?? [] };
  if (message['ok'] === true) return { ok: true, data: message['data'] };
  const error = message['error'] as Record<string, unknown>;
  return { ok: false, problem: { code: error['code'], status: error['status'], title: error['title'], detail: error['detail'], issues: error['issues'] } };
}

function outcomeOfError(error: unknown): Outcome {
  if (!(error instanceof RouteCallError)) throw error;
  const { code, status, title, detail, issues } = error.problem as unknown as Record<string, unknown>;
  return { ok: false, problem: { code, status, title, detail, issues } };
}

async function overWebRtc(id: RouteId, payload: Record<string, unknown>): Promise<Outcome> {
  try {
    if (payload['stream'] !== true) return { ok: true, data: await peer.client.call(id, payload) };
    const chunks: unknown[] = [];
    for await (const chunk of peer.client.stream(id, payload)) chunks.push(chunk);
    return { ok: true, chunks };
  } catch (error) {
    return outcomeOfError(error);
  }
}

async function overHttp(id: RouteId, payload: Record<string, unknown>): Promise<Outcome> {
  const route = routeList.find((entry) => entry.id === id);
  if (!route) throw new Error(id);
  const pathNames = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
  const rest = Object.fromEntries(Object.entries(payload).filter(([name]) => !pathNames.includes(name)));
  const path = route.path.replace(/\{(\w+)\}/g, (_match, name: string) => encodeURIComponent(String(payload[name])));
  const inQuery = route.method === 'GET';
  const query = inQuery ? `?${new URLSearchParams(Object.entries(rest).map(([key, value]): [string, string] => [key, String(value)])).toString()}` : '';
  const response = await fetch(`${base}${path}${query}`, {
    method: route.method,
    ...(inQuery ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(rest) }),
  });
  const text = await response.text();
  if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
    const frames = text.split('\n\n').filter((frame) => frame.length > 0);
    // Anthropic's and the Responses API's events: an `event:` line each, and no [DONE].
    if (route.dialect !== undefined) {
      return { ok: true, chunks: frames.map((frame) => JSON.parse(frame.slice(frame.indexOf('\ndata: ') + 7)) as unknown) };
    }
    const events = frames.filter((event) => event.startsWith('data: ')).map((event) => event.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    return { ok: true, chunks: events.slice(0, -1).map((event) => JSON.parse(event) as unknown) };
  }
  const body = JSON.parse(text) as Record<string, unknown>;
  if (response.ok) return { ok: true, data: body };
  expect(response.status).toBe(body['status']);
  return { ok: false, problem: { code: body['code'], status: body['status'], title: body['title'], detail: body['detail'], issues: body['issues'] } };
}

/** Routes whose bad input is compared: the writes, less Anthropic's (its HTTP errors are Anthropic-shaped). */
const writesCompared = servedAlike.filter((id) => {
  const route = routeList.find((entry) => entry.id === id);
  return route !== undefined && route.method !== 'GET' && route.dialect !== 'anthropic';
});

describe('HTTP, native messaging and WebRTC answer the same', () => {
  it('has a sample request for every route', () => {
    expect(Object.keys(sampleRequests).sort()).toEqual([...servedAlike].sort());
  });

  it.each(servedAlike)('%s with a valid request', async (id) => {
    const [http, native, channel] = await Promise.all([
      overHttp(id, sampleRequests[id as keyof typeof sampleRequests]),
      overNativeMessaging(id, sampleRequests[id as keyof typeof sampleRequests]),
      overWebRtc(id, sampleRequests[id as keyof typeof sampleRequests]),
    ]);
    expect(native).toEqual(http);
    expect(channel).toEqual(http);
    if (id === 'models.get') expect(http.problem).toMatchObject({ code: 'model_not_found', status: 404 });
    else expect(http).toMatchObject({ ok: true, data: { route: id } });
  });

  it.each(['chat.completions', 'completions', 'anthropic.messages', 'responses.create'] as const)('%s streams the same chunks', async (id) => {
    const request = { ...sampleRequests[id], stream: true };
    const [http, native, channel] = await Promise.all([overHttp(id, request), overNativeMessaging(id, request), overWebRtc(id, request)]);
    expect(native).toEqual(http);
    expect(channel).toEqual(http);
    expect(http.chunks).toEqual([0, 1, 2].map((n) => ({ route: id, n })));
  });

  it.each(writesCompared)('%s rejects the same bad input with the same problem', async (id) => {
    const bad = { ...sampleRequests[id as keyof typeof sampleRequests], temperature: 'hot', messages: 'none', query: 42, model_size_mb: -1, limit: 0 };
    const [http, native, channel] = await Promise.all([overHttp(id, bad), overNativeMessaging(id, bad), overWebRtc(id, bad)]);
    expect(native).toEqual(http);
    expect(channel).toEqual(http);
  });
});
