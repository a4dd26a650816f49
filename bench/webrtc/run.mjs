// WebRTC benchmark: the server's data channel (`tabagent serve`, real provider, route envelope)
// against werift alone (bare-echo-peer.mjs, configured the same), in the same run, one Node client
// (werift) for both. Figures:
//   - round trips/s of `health` over our channel vs a bare echo of the same message (floor >= 0.5);
//   - bulk: a ~16 MiB reply (conversations.get of 17 messages of 1,000,000 characters) vs werift
//     sending as many bytes in 256 KiB messages, MB/s (floor >= 0.5);
//   - offer to open channel through HTTP signalling, p50 and p95 (floor p50 < 200 ms).
// Usage (from the repository root, after `npx nx build server`):
//   node bench/webrtc/run.mjs [--duration-ms 3000] [--rounds 3] [--connects 20] [--json]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectNodePeer } from '@tabagent/webrtc/test-support';
import { flag, median, option, percentile, postJson, startTabagent } from '../support/bench-support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const durationMs = Number(option('duration-ms', '3000'));
const rounds = Number(option('rounds', '3'));
const connects = Number(option('connects', '20'));
const bulkMessages = 17;
const bulkChars = 1_000_000;

async function startBare() {
  const child = spawn(process.execPath, [path.join(here, 'bare-echo-peer.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => child.stdout.once('data', (data) => resolve(Number(String(data).trim()))));
  return { baseUrl: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

async function signal(baseUrl, path_, sdp) {
  const response = await postJson(`${baseUrl}${path_}`, { sdp });
  return response.json();
}

/** Sequential round trips for `ms`: send, wait for the reply, repeat. */
async function roundTrips(ms, once) {
  const latencies = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const start = performance.now();
    await once();
    latencies.push(performance.now() - start);
  }
  return { perSecond: latencies.length / (ms / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** Resolves with the next message on a bare peer's channel. */
function nextMessage(peer) {
  return new Promise((resolve) => peer.channel.onMessage.once(resolve));
}

async function bareBulk(peer, bytes) {
  let received = 0;
  const start = performance.now();
  await new Promise((resolve) => {
    const subscription = peer.channel.onMessage.subscribe((message) => {
      received += message.length;
      if (received >= bytes) {
        subscription.unSubscribe();
        resolve();
      }
    });
    peer.channel.send(`bulk ${bytes}`);
  });
  return { bytes: received, seconds: (performance.now() - start) / 1000 };
}

async function ourBulk(peer) {
  const before = peer.received.reduce((sum, text) => sum + text.length, 0);
  const start = performance.now();
  const reply = await peer.client.call('conversations.get', { conversation_id: 'bulk' });
  const seconds = (performance.now() - start) / 1000;
  if (reply.messages.length !== bulkMessages) throw new Error(`expected ${bulkMessages} messages, got ${reply.messages.length}`);
  const bytes = peer.received.reduce((sum, text) => sum + text.length, 0) - before;
  return { bytes, seconds };
}

const log = (message) => flag('verbose') && process.stderr.write(`${new Date().toISOString()} ${message}\n`);
const server = await startTabagent({ args: ['--log-level', 'error'] });
const bare = await startBare();
try {
  // The bulk conversation: 17 messages of 1,000,000 characters, saved over HTTP.
  await postJson(`${server.baseUrl}/v1/conversations`, { id: 'bulk', title: 'bulk' });
  for (let n = 0; n < bulkMessages; n += 1) {
    await postJson(`${server.baseUrl}/v1/conversations/bulk/messages`, { messages: [{ role: 'user', content: String(n % 10).repeat(bulkChars) }] });
  }
  log('saved the bulk conversation');
  const ours = await connectNodePeer((sdp) => signal(server.baseUrl, '/v1/webrtc/offer', sdp));
  const plain = await connectNodePeer((sdp) => signal(bare.baseUrl, '/offer', sdp));
  const healthRequest = JSON.stringify({ id: 'health', request_id: 'h', payload: null });

  const results = { ours: [], bare: [], oursBulk: [], bareBulk: [] };
  for (let round = 0; round < rounds; round += 1) {
    log(`round ${round}`);
    results.bare.push(
      await roundTrips(durationMs, async () => {
        const reply = nextMessage(plain);
        plain.channel.send(healthRequest);
        await reply;
      }),
    );
    results.ours.push(await roundTrips(durationMs, () => ours.client.call('health', null)));
    log('bulk');
    results.bareBulk.push(await bareBulk(plain, 17_000_000));
    log('our bulk');
    results.oursBulk.push(await ourBulk(ours));
  }
  await ours.close();
  await plain.close();

  const openTimes = [];
  for (let n = 0; n < connects; n += 1) {
    const start = performance.now();
    const peer = await connectNodePeer((sdp) => signal(server.baseUrl, '/v1/webrtc/offer', sdp));
    openTimes.push(performance.now() - start);
    await peer.close();
  }

  const best = (list, key) => Math.max(...list.map((entry) => entry[key]));
  const mbps = (list) => median(list.map(({ bytes, seconds }) => bytes / 1e6 / seconds));
  const figures = {
    health_round_trips_per_s: { ours: best(results.ours, 'perSecond'), bare_echo: best(results.bare, 'perSecond') },
    health_p50_ms: { ours: median(results.ours.map((r) => r.p50)), bare_echo: median(results.bare.map((r) => r.p50)) },
    bulk_mb_per_s: { ours: mbps(results.oursBulk), bare: mbps(results.bareBulk), reply_bytes: results.oursBulk[0].bytes },
    offer_to_open_ms: { p50: percentile(openTimes, 50), p95: percentile(openTimes, 95), n: openTimes.length },
  };
  figures.health_round_trips_per_s.ratio = figures.health_round_trips_per_s.ours / figures.health_round_trips_per_s.bare_echo;
  figures.bulk_mb_per_s.ratio = figures.bulk_mb_per_s.ours / figures.bulk_mb_per_s.bare;
  if (flag('json')) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  else {
    const f = (value, digits = 1) => value.toFixed(digits);
    const { health_round_trips_per_s: rt, health_p50_ms: p50, bulk_mb_per_s: bulk, offer_to_open_ms: open } = figures;
    process.stdout.write(
      [
        `health round trips/s   ours ${f(rt.ours, 0)}  bare echo ${f(rt.bare_echo, 0)}  ratio ${f(rt.ratio, 2)} (floor 0.5)   p50 ${f(p50.ours, 2)} ms vs ${f(p50.bare_echo, 2)} ms`,
        `bulk reply MB/s        ours ${f(bulk.ours)}  bare ${f(bulk.bare)}  ratio ${f(bulk.ratio, 2)} (floor 0.5)   (${(bulk.reply_bytes / 1e6).toFixed(1)} MB reply)`,
        `offer to open channel  p50 ${f(open.p50)} ms  p95 ${f(open.p95)} ms over ${open.n} connects (floor p50 < 200 ms)`,
        '',
      ].join('\n'),
    );
  }
} finally {
  bare.stop();
  await server.stop();
}
