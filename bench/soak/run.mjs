// Endurance: a day of extension use compressed into a mixed load from several clients against one
// `tabagent serve --mode all` process (HTTP, native messaging on its stdio, and WebRTC), with model
// load/unload cycles, sampled every few seconds: RSS, heap, external and array buffers, open file
// descriptors, event-loop delay p99, request and error rates. Writes samples.csv and chart.svg
// (vega) and prints the floors: after the warm-up RSS growth < 30 MB, heap growth < 5 MB, fds
// flat (± 5), zero 5xx, zero crashes, zero stuck requests, event-loop p99 < 20 ms throughout (a 10 ms
// timer, from the first second), RSS and heap slopes over the last third <= 0.5 MB/min, and the
// weaver's progress (chunks indexed during the run) > 0. Every client counts every failure it can
// meet: refused connections, statuses it did not expect, SSE error frames, streams that end without
// [DONE], requests stuck past 30 s.
// Beside the server runs an idle probe process that measures its own event-loop delay over the
// same windows: what the machine's scheduling alone costs a Node process at that moment (another
// job on the cores raises it), the baseline the server's delay is judged against.
// Usage (after `npx nx build server`):
//   node bench/soak/run.mjs [--duration-s 600] [--warmup-s 120] [--sample-s 10] [--cycles 100] [--out bench/soak/out]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vega from 'vega';
import { createFrameDecoder, encodeFrame } from '@tabagent/native-messaging';
import { createContinuationReassembler } from '@tabagent/route-envelope';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { connectNodePeer } from '@tabagent/webrtc/test-support';
import { freePort, option, repositoryRoot } from '../support/bench-support.mjs';

const durationS = Number(option('duration-s', '600'));
const warmupS = Number(option('warmup-s', '120'));
const sampleS = Number(option('sample-s', '10'));
const cycles = Number(option('cycles', '100'));
const outDir = option('out', join(repositoryRoot, 'bench', 'soak', 'out'));
const requestTimeoutMs = 30_000;
// "day": each client pauses between requests as a person and the extension do (a chat turn is
// read before the next, pages are embedded as they are opened), which leaves the server headroom
// as a day of use does; "stress": no pauses, so every client runs as fast as the server answers
// and the event loop is saturated by design (its delay then measures queueing, not a fault).
const pace = option('pace', 'day');
if (pace !== 'day' && pace !== 'stress') throw new Error('--pace is day or stress');
const think = (ms) => (pace === 'stress' ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms)));
// Extra Node flags for the server process, e.g. --node-args "--cpu-prof --cpu-prof-dir /tmp/prof" to see what holds its event loop.
const nodeArgs = option('node-args', '').split(' ').filter(Boolean);

const dataDir = mkdtempSync(join(tmpdir(), 'tabagent-soak-'));
mkdirSync(join(dataDir, 'models'), { recursive: true });
writeTinyLlamaGguf(join(dataDir, 'models', 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
await writeTinyEmbedderModel(join(dataDir, 'models', 'embedder'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const cli = join(repositoryRoot, 'apps', 'server', 'dist', 'cli.js');
const child = spawn(
  process.execPath,
  [...nodeArgs, cli, 'serve', '--mode', 'all', '--port', String(port), '--data-dir', dataDir, '--threads', '1', '--gpu', 'off', '--log-level', 'error'],
  {
    stdio: ['pipe', 'pipe', 'inherit'],
  },
);
let crashed = null;
child.once('exit', (code, signal) => (crashed = { code, signal }));

// The baseline of the event-loop delay: an idle Node process beside the server, measuring its own
// loop as the server's metric does (same timer resolution, the resolution subtracted), over the
// same windows (both are read at each sample). Whatever the machine's other work does to a Node
// process's scheduling shows in it; what the server adds on top is its own.
const probeResolutionMs = 10;
const probe = spawn(
  process.execPath,
  [
    '-e',
    `const { monitorEventLoopDelay } = require('node:perf_hooks');
const delays = monitorEventLoopDelay({ resolution: ${probeResolutionMs} });
delays.enable();
const alone = (nanoseconds) => (delays.count === 0 ? 0 : Math.max(0, nanoseconds / 1e6 - ${probeResolutionMs}));
process.on('message', () => {
  process.send({ p99_ms: alone(delays.percentile(99)), max_ms: alone(delays.max) });
  delays.reset();
});
process.on('disconnect', () => process.exit(0));`,
  ],
  { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
);
/** The probe's delay since the previous read. */
const readProbe = () =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the event-loop probe did not answer in 10 s')), 10_000);
    probe.once('message', (message) => {
      clearTimeout(timer);
      resolve(message);
    });
    probe.send('read');
  });

let started;
const stats = {
  requests: 0,
  errors: 0,
  fiveXx: 0,
  stuck: 0,
  stuckWhere: [],
  aborted: 0,
  refusedConnections: 0,
  connectionErrors: [],
  sampleFailures: [],
  webrtcConnectFailures: [],
  webrtcErrors: [],
  nativeErrors: [],
  errorFrame: 0,
  truncated: 0,
  streamFailures: [],
  byKind: {},
};
/** A request that neither answered nor failed within the guard: counted, and the first few named. */
const stuckAt = (where) => {
  stats.stuck += 1;
  if (stats.stuckWhere.length < 20) stats.stuckWhere.push(`${where} at ${Math.round((Date.now() - (started ?? Date.now())) / 1000)} s`);
};
/** A request that failed without any HTTP status (refused, reset, closed early): an unexpected status 0 of its kind. */
const connectionError = (kind, error) => {
  count(kind, 0);
  stats.byKind[kind].bad += 1;
  if (stats.connectionErrors.length < 20) stats.connectionErrors.push(`${kind}: ${String(error?.cause ?? error)}`);
};
const count = (kind, status) => {
  stats.requests += 1;
  const entry = (stats.byKind[kind] ??= { n: 0, bad: 0, statuses: {} });
  entry.n += 1;
  entry.statuses[status] = (entry.statuses[status] ?? 0) + 1;
  if (status >= 500) stats.fiveXx += 1;
  if (status >= 400) stats.errors += 1;
};

/**
 * What a finished SSE body says: an error frame (`data: {"error"...}`) or no `[DONE]` terminator
 * is a failure of its kind, counted and named (the status line was 200, so only the body tells).
 */
const streamVerdict = (kind, text) => {
  const failure = text.split('\n').some((line) => line.startsWith('data: {"error"')) ? 'errorFrame' : text.includes('data: [DONE]') ? null : 'truncated';
  if (failure === null) return true;
  stats[failure] += 1;
  stats.byKind[kind].bad += 1;
  if (stats.streamFailures.length < 20) stats.streamFailures.push(`${kind} ${failure} at ${Math.round((Date.now() - started) / 1000)} s: ${text.slice(-200)}`);
  return false;
};

/** fetch with the soak's stuck-request guard: a request that neither answers nor fails in 30 s is stuck. */
async function call(kind, path, init = {}, expected = [200]) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('stuck')), requestTimeoutMs);
  try {
    const response = await fetch(`${base}${path}`, { ...init, signal: init.signal ?? controller.signal });
    const body = await response.arrayBuffer();
    count(kind, response.status);
    if (!expected.includes(response.status)) stats.byKind[kind].bad += 1;
    return { status: response.status, body: Buffer.from(body) };
  } catch (error) {
    if (controller.signal.aborted) stuckAt(`${kind} ${path}`);
    else if (init.signal?.aborted) stats.aborted += 1;
    // A server that answers 413 closes the connection while a large body is still uploading: fetch sees a reset.
    else if (kind === 'bad') stats.refusedConnections += 1;
    else connectionError(kind, error);
    return { status: 0, body: Buffer.alloc(0) };
  } finally {
    clearTimeout(timer);
  }
}
const json = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

for (let attempt = 0; ; attempt += 1) {
  if (attempt > 300) throw new Error('server did not start');
  try {
    if ((await fetch(`${base}/v1/health`)).ok) break;
  } catch {
    /* not yet */
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}

// The server's own start (modules, stores, transports) is not under load: one scrape and probe
// read now closes that window, so the first sample covers the first second of load, model loads
// included.
const startup = await Promise.all([fetch(`${base}/metrics`).then((response) => response.text()), readProbe()]);
const startupDelayMs = Number(/^tabagent_event_loop_delay_seconds\{quantile="0\.99"\} ([\d.eE+-]+)$/m.exec(startup[0])?.[1] ?? Number.NaN) * 1000;
started = Date.now();
const deadline = started + durationS * 1000;
const running = () => Date.now() < deadline && crashed === null;

async function chatClient(id) {
  let history = [];
  for (let turn = 0; running(); turn += 1) {
    history.push({ role: 'user', content: `client ${id} turn ${turn}: tell me about tabs` });
    const disconnect = turn % 5 === 4;
    const controller = new AbortController();
    const stuck = new AbortController();
    const timer = setTimeout(() => {
      stuck.abort(new Error('stuck'));
      controller.abort();
    }, requestTimeoutMs);
    let text = '';
    try {
      let response;
      try {
        response = await fetch(`${base}/v1/chat/completions`, {
          ...json({ model: 'chat', messages: history, max_tokens: 12, stream: true }),
          signal: controller.signal,
        });
      } catch (error) {
        if (stuck.signal.aborted) stuckAt('chat (no response)');
        else connectionError('chat', error);
        await think(1000);
        continue;
      }
      count('chat', response.status);
      try {
        for await (const bytes of response.body) {
          text += Buffer.from(bytes).toString('utf8');
          if (disconnect) {
            controller.abort();
            break;
          }
        }
        if (!disconnect) streamVerdict('chat', text);
      } catch (error) {
        if (stuck.signal.aborted) stuckAt('chat (stream)');
        else if (disconnect) stats.aborted += 1;
        else connectionError('chat', error);
      }
    } finally {
      clearTimeout(timer);
    }
    history.push({ role: 'assistant', content: text.slice(0, 200) || 'ok' });
    if (history.length > 12) history = [];
    await think(1000);
  }
}

async function embedClient() {
  while (running()) {
    await call('embeddings', '/v1/embeddings', json({ model: 'embedder', input: ['a tab about cats', 'a tab about dogs', 'notes'] }));
    await think(200);
  }
}

async function memoryClient(id) {
  await call('memory', '/v1/conversations', json({ id: `soak-${id}`, title: `Soak ${id}` }), [200, 409]);
  for (let n = 0; running(); n += 1) {
    await call('memory', `/v1/conversations/soak-${id}/messages`, json({ messages: [{ role: 'user', content: `saved note ${n} about topic ${n % 7}` }] }));
    await call('memory', '/v1/documents', json({ text: `page ${n} text about topic ${n % 7}`, url: `https://example.org/${id}/${n}` }));
    await call('memory', '/v1/conversations/search', json({ query: `topic ${n % 7}` }));
    // An extension saves a few things a second at most, not as fast as the loop can go.
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function healthAndBadClient() {
  let oversizedAt = 0;
  while (running()) {
    await call('health', '/v1/health');
    await call(
      'bad',
      '/v1/chat/completions',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "chat", "messages": [' },
      [400],
    );
    await call('bad', '/v1/chat/completions', json({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), [404]);
    if (Date.now() - oversizedAt > 30_000) {
      oversizedAt = Date.now();
      await call('bad', '/v1/embeddings', json({ input: ['x'.repeat(33 * 1024 * 1024)] }), [413]);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    await think(150);
  }
}

async function stopClient() {
  for (let n = 0; running(); n += 1) {
    const requestId = `stop-${n}`;
    const stuck = new AbortController();
    const timer = setTimeout(() => stuck.abort(new Error('stuck')), requestTimeoutMs);
    try {
      const response = await fetch(`${base}/v1/chat/completions`, {
        ...json({ model: 'chat', messages: [{ role: 'user', content: 'long story' }], max_tokens: 200, stream: true, ignore_eos: true }),
        headers: { 'content-type': 'application/json', 'x-request-id': requestId },
        signal: stuck.signal,
      });
      count('stop', response.status);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const first = await reader.read();
      text += decoder.decode(first.value ?? new Uint8Array(), { stream: true });
      // A stream that already ended answers its stop with 404 not_found.
      await call('stop', n % 10 === 9 ? '/v1/generation/halt' : '/v1/generation/stop', json(n % 10 === 9 ? {} : { request_id: requestId }), [200, 404]);
      for (let next = await reader.read(); !next.done; next = await reader.read()) text += decoder.decode(next.value, { stream: true });
      // A stopped stream still ends properly: its last chunk, then [DONE].
      streamVerdict('stop', text);
    } catch (error) {
      if (stuck.signal.aborted) stuckAt('stop (stream)');
      else connectionError('stop', error);
    } finally {
      clearTimeout(timer);
    }
    await think(1000);
  }
}

async function nativeClient() {
  const decoder = createFrameDecoder();
  const reassembler = createContinuationReassembler();
  const waiting = new Map();
  child.stdout.on('data', (bytes) => {
    for (const frame of decoder.push(bytes)) {
      if (frame.kind !== 'message') continue;
      const message = reassembler.accept(frame.value);
      if (message === undefined) continue;
      const resolve = waiting.get(String(message.request_id ?? message.messageId));
      if (resolve && !('chunk' in message)) resolve(message);
    }
  });
  const send = (message, key) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        stuckAt(`native ${message.id ?? message.action}`);
        waiting.delete(key);
        resolve(null);
      }, requestTimeoutMs);
      waiting.set(key, (reply) => {
        clearTimeout(timer);
        waiting.delete(key);
        resolve(reply);
      });
      child.stdin.write(encodeFrame(message));
    });
  for (let n = 0; running(); n += 1) {
    const kinds = [
      { id: 'health', payload: null },
      { id: 'embeddings', payload: { model: 'embedder', input: ['native'] } },
      { id: 'chat.completions', payload: { model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 } },
    ];
    const request = kinds[n % kinds.length];
    const reply = await send({ ...request, request_id: `n${n}` }, `n${n}`);
    if (reply !== null) {
      count('native', reply.ok === true ? 200 : (reply.error?.status ?? 500));
      if (reply.ok !== true && stats.nativeErrors.length < 20)
        stats.nativeErrors.push(`${request.id}: ${reply.error?.status ?? '?'} ${reply.error?.detail ?? JSON.stringify(reply.error)}`);
    }
    if (n % 7 === 0) {
      const legacy = await send({ action: 'ping', messageId: `m${n}` }, `m${n}`);
      if (legacy !== null) count('native', legacy.status === 'success' ? 200 : 500);
    }
    await think(100);
  }
}

async function webrtcClient() {
  while (running()) {
    let peer;
    let sessionId;
    try {
      peer = await connectNodePeer(async (sdp) => {
        const answer = await (await fetch(`${base}/v1/webrtc/offer`, json({ sdp }))).json();
        sessionId = answer.session_id;
        return answer;
      }, 30_000);
    } catch (error) {
      // Counted as an unexpected webrtc status (0) and in the figures, with the server's view of
      // the session; the client tries again.
      const server =
        sessionId === undefined
          ? 'no session'
          : await fetch(`${base}/v1/webrtc/session/${sessionId}`).then(
              async (response) => `server: ${response.status} ${await response.text()}`,
              (failure) => `server: ${String(failure)}`,
            );
      stats.webrtcConnectFailures.push(`${Math.round((Date.now() - started) / 1000)} s: ${String(error)}; ${server}`);
      count('webrtc', 0);
      stats.byKind.webrtc.bad += 1;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    const until = Date.now() + 60_000;
    for (let n = 0; running() && Date.now() < until; n += 1) {
      let timer;
      try {
        const work = async () => {
          if (n % 3 === 0) await peer.client.call('health', null);
          else if (n % 3 === 1) await peer.client.call('embeddings', { model: 'embedder', input: ['over webrtc'] });
          else {
            const chunks = [];
            for await (const chunk of peer.client.stream('chat.completions', {
              model: 'chat',
              messages: [{ role: 'user', content: 'rtc' }],
              max_tokens: 8,
              stream: true,
            }))
              chunks.push(chunk);
            if (chunks.length === 0) throw new Error('an empty stream');
          }
        };
        // The same stuck guard as every other client: a call that neither answers nor fails in 30 s.
        const stuck = await Promise.race([
          work().then(() => false),
          new Promise((resolve) => {
            timer = setTimeout(() => resolve(true), requestTimeoutMs);
          }),
        ]);
        if (stuck) {
          stuckAt(`webrtc call ${n % 3}`);
          break;
        }
        count('webrtc', 200);
      } catch (error) {
        // An error without a problem document (the channel closed, a call timed out) is the client's 500.
        if (stats.webrtcErrors.length < 20) stats.webrtcErrors.push(String(error?.problem?.detail ?? error));
        count('webrtc', error?.problem?.status ?? 500);
      } finally {
        clearTimeout(timer);
      }
      await think(100);
    }
    await peer.close();
  }
}

async function loadCycler() {
  const period = (durationS * 1000) / cycles;
  for (let n = 0; n < cycles && running(); n += 1) {
    const model = n % 2 === 0 ? 'chat' : 'embedder';
    await call('cycle', '/v1/models/unload', json({ model }), [200]);
    await call('cycle', '/v1/models/load', json({ model }), [200]);
    await new Promise((resolve) => setTimeout(resolve, period));
  }
}

// Sampling
const samples = [];
let fdPeak = null;
function openFilesByFolder() {
  const byFolder = {};
  for (const fd of readdirSync(`/proc/${child.pid}/fd`)) {
    let target;
    try {
      target = readlinkSync(`/proc/${child.pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const folder = target.includes('/') ? target.slice(0, target.lastIndexOf('/') + 1).replace(dataDir, '<data>') : target.replace(/:\[\d+\]$/, '');
    byFolder[folder] = (byFolder[folder] ?? 0) + 1;
  }
  return Object.fromEntries(
    Object.entries(byFolder)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8),
  );
}
let lastRequests = 0;
let lastErrors = 0;
async function sample() {
  const [response, probed, memory] = await Promise.all([fetch(`${base}/metrics`), readProbe(), fetch(`${base}/v1/memory/status`)]);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  if (memory.status !== 200) throw new Error(`GET /v1/memory/status answered ${memory.status}`);
  const memoryStatus = await memory.json();
  const text = await response.text();
  const metric = (name) => Number(new RegExp(`^${name} ([\\d.eE+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const entry = {
    t_s: Math.round((Date.now() - started) / 1000),
    rss_mb: rssKb / 1024,
    heap_used_mb: metric('nodejs_heap_size_used_bytes') / 1048576,
    external_mb: metric('nodejs_external_memory_bytes') / 1048576,
    array_buffers_mb: metric('tabagent_process_array_buffers_bytes') / 1048576,
    open_fds: readdirSync(`/proc/${child.pid}/fd`).length,
    // The delay alone: prom-client's nodejs_eventloop_lag_p99_seconds counts its 50 ms sampling period in.
    event_loop_p99_ms: Number(/^tabagent_event_loop_delay_seconds\{quantile="0\.99"\} ([\d.eE+-]+)$/m.exec(text)?.[1] ?? Number.NaN) * 1000,
    event_loop_utilization: metric('tabagent_event_loop_utilization'),
    probe_event_loop_p99_ms: probed.p99_ms,
    // The weaver's progress: chunks in the vector index, and saved items not in it yet.
    indexed_chunks: memoryStatus.models.reduce((sum, model) => sum + model.indexed_chunks, 0),
    unindexed: memoryStatus.unindexed,
    requests_per_s: (stats.requests - lastRequests) / sampleS,
    errors_per_s: (stats.errors - lastErrors) / sampleS,
  };
  lastRequests = stats.requests;
  lastErrors = stats.errors;
  samples.push(entry);
  // What the process held open at its peak, by folder: a transient peak names its owner (LanceDB's fragments live under the data directory's index folder).
  if (entry.open_fds > (fdPeak?.count ?? 0)) fdPeak = { t_s: entry.t_s, count: entry.open_fds, by_folder: openFilesByFolder() };
  process.stderr.write(`${JSON.stringify(entry)}\n`);
}

// One sample at a time; a sample that fails (the scrape refused, an error status, the probe
// silent) or is skipped because the previous one still runs is counted and named.
let sampling = null;
const takeSample = () => {
  sampling = sample()
    .catch((error) => void stats.sampleFailures.push(`${Math.round((Date.now() - started) / 1000)} s: ${String(error?.cause ?? error)}`))
    .finally(() => (sampling = null));
  return sampling;
};
// The first sample one second in: the start (module loading, the first model loads) is measured too.
setTimeout(() => {
  if (sampling === null) void takeSample();
}, 1000);
const sampler = setInterval(() => {
  if (sampling === null) void takeSample();
  else stats.sampleFailures.push(`${Math.round((Date.now() - started) / 1000)} s: skipped, the previous sample had not finished`);
}, sampleS * 1000);
const workers = [
  chatClient(1),
  chatClient(2),
  embedClient(),
  memoryClient(1),
  memoryClient(2),
  healthAndBadClient(),
  stopClient(),
  nativeClient(),
  webrtcClient(),
  loadCycler(),
];
const failures = (await Promise.allSettled(workers)).filter((result) => result.status === 'rejected').map((result) => String(result.reason));
clearInterval(sampler);
await sampling;
await takeSample();

// Figures
const after = samples.filter((entry) => entry.t_s >= warmupS);
// Growth of the low-water mark, what survives garbage collection: the lowest sample of the last
// third of the run after the warm-up against the lowest of its first third. A single sample lands
// anywhere in a GC cycle (tens of MB of heap apart); the lows follow what is retained.
const third = Math.max(1, Math.floor(after.length / 3));
const low = (entries, key) => Math.min(...entries.map((entry) => entry[key]));
const growth = (key) => (after.length < 2 ? Number.NaN : low(after.slice(-third), key) - low(after.slice(0, third), key));
const fds = after.map((entry) => entry.open_fds);
// Least-squares slope (MB per minute) over the last third of the run after the warm-up, and its
// standard error from the residuals: whether memory has levelled off, judged with its own noise.
// Samples of the run itself: the last one, taken after the clients stopped (peers closing), is not load.
const during = samples.filter((entry) => entry.t_s <= durationS);
const fit = (entries, key) => {
  const points = entries.map((entry) => [entry.t_s / 60, entry[key]]);
  if (points.length < 3) return { slope: Number.NaN, standard_error: Number.NaN };
  const n = points.length;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  const sxx = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  const slope = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0) / sxx;
  const residuals = points.reduce((sum, [x, y]) => sum + (y - meanY - slope * (x - meanX)) ** 2, 0);
  return { slope, standard_error: Math.sqrt(residuals / (n - 2) / sxx) };
};
const duringAfter = during.filter((entry) => entry.t_s >= warmupS);
const slopeOf = (key) => fit(duringAfter.slice(-Math.max(3, Math.floor(duringAfter.length / 3))), key);
const figures = {
  duration_s: durationS,
  warmup_s: warmupS,
  requests: stats.requests,
  rss_growth_mb: growth('rss_mb'),
  heap_growth_mb: growth('heap_used_mb'),
  rss_slope_last_third_mb_per_min: slopeOf('rss_mb'),
  heap_slope_last_third_mb_per_min: slopeOf('heap_used_mb'),
  // Levelling off, against the same run's start: the slope after the warm-up against the slope of
  // the warm-up itself (a short run's baseline; a leak keeps the slope, a server that warms up sheds it).
  rss_slope_warmup_mb_per_min: fit(
    during.filter((entry) => entry.t_s <= warmupS),
    'rss_mb',
  ),
  rss_slope_after_warmup_mb_per_min: fit(duringAfter, 'rss_mb'),
  heap_slope_warmup_mb_per_min: fit(
    during.filter((entry) => entry.t_s <= warmupS),
    'heap_used_mb',
  ),
  heap_slope_after_warmup_mb_per_min: fit(duringAfter, 'heap_used_mb'),
  // Chunks the weaver put in the vector index during the run (it must not starve under the load).
  weaver_indexed_chunks: (samples.at(-1)?.indexed_chunks ?? 0) - (samples[0]?.indexed_chunks ?? 0),
  weaver_unindexed_at_end: samples.at(-1)?.unindexed ?? null,
  fd_range: [Math.min(...fds), Math.max(...fds)],
  // Transient peaks (LanceDB opens every fragment while it compacts) are in fd_range; a leak
  // raises the low-water mark.
  fd_low_growth: growth('open_fds'),
  fd_peak: fdPeak,
  pace,
  // Throughout: from the first second, the start (module loading, first model loads) included.
  event_loop_p99_max_ms: Math.max(...samples.map((entry) => entry.event_loop_p99_ms)),
  event_loop_p99_max_after_warmup_ms: Math.max(...after.map((entry) => entry.event_loop_p99_ms)),
  // The baseline, and the server's delay beyond it in the same window (the worst such window), throughout.
  probe_event_loop_p99_max_ms: Math.max(...samples.map((entry) => entry.probe_event_loop_p99_ms)),
  event_loop_p99_excess_max_ms: Math.max(...samples.map((entry) => entry.event_loop_p99_ms - entry.probe_event_loop_p99_ms)),
  event_loop_p99_excess_max_after_warmup_ms: Math.max(...after.map((entry) => entry.event_loop_p99_ms - entry.probe_event_loop_p99_ms)),
  // Before the load started: the server's own start-up, not judged.
  event_loop_p99_startup_ms: startupDelayMs,
  event_loop_utilization_mean: after.reduce((sum, entry) => sum + entry.event_loop_utilization, 0) / Math.max(1, after.length),
  five_xx: stats.fiveXx,
  stuck: stats.stuck,
  stuck_where: stats.stuckWhere,
  crashed,
  worker_failures: failures,
  webrtc_connect_failures: stats.webrtcConnectFailures,
  webrtc_errors: stats.webrtcErrors,
  native_errors: stats.nativeErrors,
  stream_error_frames: stats.errorFrame,
  streams_truncated: stats.truncated,
  stream_failures: stats.streamFailures,
  refused_connections: stats.refusedConnections,
  connection_errors: stats.connectionErrors,
  sample_failures: stats.sampleFailures,
  unexpected_statuses: Object.fromEntries(Object.entries(stats.byKind).map(([kind, entry]) => [kind, `${entry.bad}/${entry.n}`])),
  statuses: Object.fromEntries(Object.entries(stats.byKind).map(([kind, entry]) => [kind, entry.statuses])),
};
mkdirSync(outDir, { recursive: true });
const columns = Object.keys(samples[0] ?? {});
writeFileSync(join(outDir, 'samples.csv'), `${columns.join(',')}\n${samples.map((entry) => columns.map((key) => entry[key]).join(',')).join('\n')}\n`);
writeFileSync(join(outDir, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);

// Chart: one line per series against time (vega, rendered to SVG without a browser).
const series = [
  'rss_mb',
  'heap_used_mb',
  'external_mb',
  'array_buffers_mb',
  'open_fds',
  'event_loop_p99_ms',
  'probe_event_loop_p99_ms',
  'requests_per_s',
  'unindexed',
];
const values = samples.flatMap((entry) => series.map((name) => ({ t: entry.t_s, series: name, value: entry[name] })));
const spec = {
  $schema: 'https://vega.github.io/schema/vega/v5.json',
  width: 900,
  height: 420,
  padding: 10,
  title: { text: `tabagent soak: ${durationS} s, ${stats.requests} requests` },
  data: [{ name: 'samples', values }],
  scales: [
    { name: 'x', type: 'linear', domain: { data: 'samples', field: 't' }, range: 'width' },
    { name: 'y', type: 'linear', domain: { data: 'samples', field: 'value' }, range: 'height', nice: true, zero: true },
    { name: 'color', type: 'ordinal', domain: { data: 'samples', field: 'series' }, range: 'category' },
  ],
  axes: [
    { orient: 'bottom', scale: 'x', title: 'seconds' },
    { orient: 'left', scale: 'y', title: 'MB, count, ms, req/s' },
  ],
  legends: [{ fill: 'color', title: 'series' }],
  marks: [
    {
      type: 'group',
      from: { facet: { name: 'line', data: 'samples', groupby: 'series' } },
      marks: [
        {
          type: 'line',
          from: { data: 'line' },
          encode: {
            enter: { x: { scale: 'x', field: 't' }, y: { scale: 'y', field: 'value' }, stroke: { scale: 'color', field: 'series' }, strokeWidth: { value: 2 } },
          },
        },
      ],
    },
  ],
};
const view = new vega.View(vega.parse(spec), { renderer: 'none' });
writeFileSync(join(outDir, 'chart.svg'), await view.toSVG());
view.finalize();

const ok = (pass) => (pass ? 'ok' : 'NOT MET');
process.stdout.write(
  [
    `soak ${durationS} s (warm-up ${warmupS} s), ${stats.requests} requests, samples every ${sampleS} s -> ${outDir}/samples.csv, chart.svg`,
    `RSS growth after warm-up  ${figures.rss_growth_mb.toFixed(1)} MB (floor < 30) ${ok(figures.rss_growth_mb < 30)}`,
    `heap growth after warm-up ${figures.heap_growth_mb.toFixed(1)} MB (floor < 5) ${ok(figures.heap_growth_mb < 5)}`,
    `RSS slope, last third     ${figures.rss_slope_last_third_mb_per_min.slope.toFixed(2)} ± ${figures.rss_slope_last_third_mb_per_min.standard_error.toFixed(2)} MB/min (floor <= 0.5) ${ok(figures.rss_slope_last_third_mb_per_min.slope <= 0.5)}`,
    `heap slope, last third    ${figures.heap_slope_last_third_mb_per_min.slope.toFixed(2)} ± ${figures.heap_slope_last_third_mb_per_min.standard_error.toFixed(2)} MB/min (floor <= 0.5) ${ok(figures.heap_slope_last_third_mb_per_min.slope <= 0.5)}`,
    `weaver                    ${figures.weaver_indexed_chunks} chunks indexed during the run (floor > 0) ${ok(figures.weaver_indexed_chunks > 0)}; ${figures.weaver_unindexed_at_end} saved items not indexed at the end`,
    `open fds after warm-up    ${figures.fd_range[0]}..${figures.fd_range[1]} (floor ± 5) ${ok(figures.fd_range[1] - figures.fd_range[0] <= 10)}; low-water mark growth ${figures.fd_low_growth}`,
    `event-loop p99 max        ${figures.event_loop_p99_max_ms.toFixed(1)} ms throughout, from the first second (floor < 20) ${ok(figures.event_loop_p99_max_ms < 20)}; ${figures.event_loop_p99_max_after_warmup_ms.toFixed(1)} ms after the warm-up; 10 ms timer; pace ${pace}, loop busy ${(figures.event_loop_utilization_mean * 100).toFixed(0)}% on average`,
    `event-loop baseline       an idle Node process beside it: p99 up to ${figures.probe_event_loop_p99_max_ms.toFixed(1)} ms; the server's p99 beyond it in the same window: ${figures.event_loop_p99_excess_max_ms.toFixed(1)} ms at worst (${figures.event_loop_p99_excess_max_after_warmup_ms.toFixed(1)} ms after the warm-up)`,
    `5xx ${stats.fiveXx}, error frames ${stats.errorFrame}, truncated streams ${stats.truncated}, stuck ${stats.stuck}, crashed ${crashed === null ? 'no' : JSON.stringify(crashed)}, worker failures ${failures.length}, webrtc connections that failed ${stats.webrtcConnectFailures.length}, connection errors ${stats.connectionErrors.length}, failed samples ${stats.sampleFailures.length}`,
    `unexpected statuses by kind ${JSON.stringify(figures.unexpected_statuses)}; statuses ${JSON.stringify(figures.statuses)}`,
    // What went wrong, named, so that a failed run can be read without running it again.
    ...Object.entries({
      'webrtc connections that failed': figures.webrtc_connect_failures,
      'webrtc call errors': figures.webrtc_errors,
      'native messaging errors': figures.native_errors,
      'connection errors': figures.connection_errors,
      'stream failures': figures.stream_failures,
      'stuck requests': figures.stuck_where,
      'failed samples': figures.sample_failures,
      'worker failures': figures.worker_failures,
    })
      .filter(([, list]) => list.length > 0)
      .map(([what, list]) => `${what}:\n  ${list.join('\n  ')}`),
    '',
  ].join('\n'),
);
probe.kill();
child.kill('SIGTERM');
await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve()));
rmSync(dataDir, { recursive: true, force: true });
// Whatever a client left open (a peer that failed to connect, a socket in TIME_WAIT) must not keep the run alive.
process.exit(0);
