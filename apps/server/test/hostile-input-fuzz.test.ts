import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { startFakeHub, type FakeHub } from '@tabagent/model-cache/test-support';
import { createSeededRandom } from '@tabagent/onnx-loader/test-support';
import { connectNodePeer, type NodePeerClient, type SignalledSdp } from '@tabagent/webrtc/test-support';
import { ServerProcess, type Reply } from './support/server-process.js';

// A seeded fuzz of the surfaces added lately: Ollama's routes, pulls, the route envelope over
// native messaging and over a WebRTC data channel. Each input is a valid request mutated (a field
// replaced by another type, a huge or deeply nested value, prototype keys, a field dropped, the
// text cut or its bytes flipped). What must hold: no 5xx and no internal error, no crash, no hang
// (every request answered, the process still serving a plain request after). The seed is fixed so
// a failure replays; FUZZ_SEED picks another.

const seed = Number(process.env['FUZZ_SEED'] ?? 20261207);
const origin = 'chrome-extension://nhgeobigjnkldfcdbiinjheboppfafhi';

/** Seeded (mulberry32), so a failing input can be replayed. */
const random = createSeededRandom(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** Values of every awkward kind a field can be given. */
function hostileValue(): unknown {
  const nest = (depth: number): unknown => (depth === 0 ? 'x' : random() < 0.5 ? [nest(depth - 1)] : { a: nest(depth - 1) });
  return pick<() => unknown>([
    () => null,
    () => -1,
    () => 0,
    () => 2 ** 53,
    () => 1e308,
    () => -1e-308,
    () => 3.5,
    () => true,
    () => '',
    () => 'x'.repeat(Math.floor(random() * 20_000)),
    () => '\u0000\uffff\ud800 é 🙂',
    () => '../../../../etc/passwd',
    () => 'hf.co/../..:Q4',
    () => '{{ range(10**9) }}',
    () => [],
    () => Array.from({ length: Math.floor(random() * 300) }, () => 'a'),
    () => ({}),
    () => ({ __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } }),
    () => nest(Math.floor(random() * 80)),
  ])();
}

/** A valid request mutated once or a few times. */
function mutate(valid: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(valid);
  const rounds = 1 + Math.floor(random() * 3);
  for (let round = 0; round < rounds; round++) {
    const keys = Object.keys(copy);
    const choice = random();
    if (choice < 0.5 && keys.length > 0) copy[pick(keys)] = hostileValue();
    else if (choice < 0.65 && keys.length > 0) Reflect.deleteProperty(copy, pick(keys));
    else if (choice < 0.8) copy[pick(['__proto__', 'constructor', 'prototype', 'extra', 'options', 'payload'])] = hostileValue();
    else {
      // One level down: the options, a message, a payload.
      const inner = keys.map((key) => copy[key]).find((value) => typeof value === 'object' && value !== null && !Array.isArray(value)) as
        Record<string, unknown> | undefined;
      if (inner !== undefined) {
        const innerKeys = Object.keys(inner);
        inner[innerKeys.length > 0 && random() < 0.7 ? pick(innerKeys) : 'added'] = hostileValue();
      }
    }
  }
  return copy;
}

/** The request's JSON text, sometimes broken: cut short or a few bytes flipped. */
function textOf(request: Record<string, unknown>): string {
  const text = JSON.stringify(request);
  const choice = random();
  if (choice < 0.08) return text.slice(0, Math.floor(random() * text.length));
  if (choice < 0.14) {
    let flipped = text;
    for (let flip = 0; flip < 3; flip++) {
      const at = Math.floor(random() * flipped.length);
      flipped = `${flipped.slice(0, at)}${pick(['{', '"', '\\', ']', '\u0000', ','])}${flipped.slice(at + 1)}`;
    }
    return flipped;
  }
  return text;
}

const tinyOptions = { temperature: 0.5, num_predict: 2, top_k: 4, stop: ['\n'], num_ctx: 256 };
const httpSeeds: { method: string; path: string; body: Record<string, unknown> }[] = [
  {
    method: 'POST',
    path: '/api/chat',
    body: {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi', images: ['aGk='] }],
      stream: false,
      options: tinyOptions,
      keep_alive: '5m',
      format: 'json',
    },
  },
  { method: 'POST', path: '/api/generate', body: { model: 'tiny', prompt: 'hi', system: 's', stream: false, raw: false, options: tinyOptions } },
  { method: 'POST', path: '/api/embed', body: { model: 'tiny', input: ['a', 'b'], truncate: true } },
  { method: 'POST', path: '/api/embeddings', body: { model: 'tiny', prompt: 'a' } },
  { method: 'POST', path: '/api/show', body: { model: 'tiny', verbose: true } },
  { method: 'POST', path: '/api/copy', body: { source: 'tiny', destination: 'tiny-copy' } },
  { method: 'DELETE', path: '/api/delete', body: { model: 'no-such-model' } },
  { method: 'POST', path: '/api/pull', body: { model: 'hf.co/acme/Tiny-GGUF:Q8_0', stream: false } },
  { method: 'POST', path: '/v1/models/pull', body: { model: 'acme/Tiny-GGUF', variant: 'Q8_0', stream: false } },
  { method: 'DELETE', path: '/v1/models/downloads', body: { repo: 'acme/Tiny-GGUF', file: 'Tiny-Q8_0.gguf', revision: 'main' } },
];
const envelopeSeeds: { id: string; payload: Record<string, unknown> }[] = [
  { id: 'health', payload: {} },
  { id: 'chat.completions', payload: { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0.2 } },
  { id: 'models.pull', payload: { model: 'acme/Tiny-GGUF', variant: 'Q8_0' } },
  { id: 'models.scan', payload: { model: 'acme/Tiny-GGUF' } },
  { id: 'models.downloads.discard', payload: { repo: 'acme/Tiny-GGUF', file: 'Tiny-Q8_0.gguf' } },
  { id: 'sessions.save_message', payload: { session_id: 's1', role: 'user', content: 'hello', metadata: { url: 'https://x' } } },
  { id: 'documents.ingest', payload: { title: 't', text: 'some page text', url: 'https://example.com/a', metadata: { tag: 'x' } } },
  { id: 'memory.settings.set', payload: { enabled: true } },
  { id: 'generation.stop', payload: { request_id: 'r1' } },
  { id: 'embeddings', payload: { model: 'tiny', input: ['a'] } },
];

/** Fails with the inputs that got a server error, so they can be replayed. */
function expectNoServerErrors(kind: string, failures: unknown[]): void {
  expect({ kind, seed, failures: failures.slice(0, 5) }).toEqual({ kind, seed, failures: [] });
}

let root: string;
let hub: FakeHub;
let server: ServerProcess;
let base: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fuzz-'));
  writeTinyLlamaGguf(path.join(root, 'tiny-source.gguf'));
  hub = await startFakeHub();
  await hub.addRepo('acme/Tiny-GGUF', { files: [{ path: 'Tiny-Q8_0.gguf', content: readFileSync(path.join(root, 'tiny-source.gguf')) }] });
  mkdirSync(path.join(root, 'data', 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(root, 'data', 'models', 'tiny.gguf'));
  server = new ServerProcess({
    args: ['--mode', 'all', '--port', '0', '--data-dir', path.join(root, 'data'), '--threads', '1', '--gpu', 'off', '--hf-endpoint', hub.url, origin],
  });
  base = await server.httpUrl();
  await server.ready();
}, 60_000);

afterAll(async () => {
  await server.stop('SIGTERM');
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

it('HTTP: mutated Ollama and pull requests get 2xx or 4xx answers, never a 5xx, and the server keeps serving', async () => {
  const failures: unknown[] = [];
  for (let round = 0; round < 400; round++) {
    const target = pick(httpSeeds);
    const text = textOf(mutate(target.body));
    const response = await fetch(`${base}${target.path}`, {
      method: target.method,
      headers: { 'content-type': 'application/json' },
      body: text,
      signal: AbortSignal.timeout(30_000),
    });
    const answer = await response.text();
    if (response.status >= 500) failures.push({ path: target.path, status: response.status, request: text.slice(0, 300), answer: answer.slice(0, 300) });
  }
  expectNoServerErrors('http', failures);
  expect((await fetch(`${base}/health`)).status).toBe(200);
  expect(server.child.exitCode).toBeNull();
}, 240_000);

it('native messaging: mutated envelopes and legacy actions are answered without an internal error, and the host keeps its session', async () => {
  const failures: unknown[] = [];
  /** Request ids already answered: their stream chunks may still arrive. */
  const answered = new Set<string>();
  for (let round = 0; round < 300; round++) {
    const target = pick(envelopeSeeds);
    const requestId = `fuzz-${round}`;
    const envelope =
      random() < 0.8
        ? { id: target.id, request_id: requestId, payload: mutate(target.payload) }
        : mutate({
            action: pick(['ping', 'get_logs', 'get_model_state', 'get_params', 'update_settings', 'compute_similarity', 'delete_model']),
            messageId: requestId,
          });
    const text = textOf(envelope);
    server.sendBytes(Buffer.concat([Buffer.from(Uint32Array.of(Buffer.byteLength(text)).buffer), Buffer.from(text)]));
    // Each frame gets a reply. Frames go one at a time, so the first reply that is not a late chunk
    // of an earlier stream is this frame's, whatever its id became (cut, or replaced by the mutation).
    const reply = await server
      .reply(
        (candidate) => !answered.has(JSON.stringify(candidate['request_id'] ?? candidate['messageId'] ?? null)) || candidate['request_id'] === requestId,
        10_000,
      )
      .catch(() => null);
    answered.add(JSON.stringify(requestId));
    if (reply === null) {
      failures.push({ request: text.slice(0, 300), reply: 'none within 10 s' });
      continue;
    }
    const error = reply['error'] as { status?: number; code?: string } | undefined;
    if ((error?.status ?? 0) >= 500 || error?.code === 'internal_error' || reply['code'] === 'internal_error')
      failures.push({ request: text.slice(0, 300), reply });
  }
  expectNoServerErrors('native', failures);
  server.send({ action: 'ping', messageId: 'after-fuzz' });
  expect(await server.replyTo('after-fuzz')).toMatchObject({ status: 'success', response: 'pong' });
}, 240_000);

it('WebRTC: mutated envelopes on the data channel are answered without an internal error, and the channel stays open', async () => {
  const signal = async (sdp: string): Promise<SignalledSdp> => {
    const response = await fetch(`${base}/v1/webrtc/offer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ sdp, peer_id: 'fuzz' }),
    });
    return (await response.json()) as SignalledSdp;
  };
  const peer: NodePeerClient = await connectNodePeer(signal);
  try {
    const failures: unknown[] = [];
    for (let round = 0; round < 200; round++) {
      const target = pick(envelopeSeeds.filter((candidate) => candidate.id !== 'models.pull'));
      const text = textOf({ id: target.id, request_id: `w-${round}`, payload: mutate(target.payload) });
      const before = peer.received.length;
      peer.sendRaw(text);
      const deadline = Date.now() + 30_000;
      while (peer.received.length === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      if (peer.received.length === before) failures.push({ request: text.slice(0, 300), reply: 'none within 30 s' });
      for (const message of peer.received.slice(before)) {
        const reply = JSON.parse(message) as Reply;
        const error = reply['error'] as { status?: number; code?: string } | undefined;
        if ((error?.status ?? 0) >= 500 || error?.code === 'internal_error') failures.push({ request: text.slice(0, 300), reply });
      }
    }
    expectNoServerErrors('webrtc', failures);
    await expect(peer.client.call('health', null)).resolves.toMatchObject({ status: 'ok' });
    expect(peer.channel.readyState).toBe('open');
  } finally {
    await peer.close();
  }
}, 240_000);
