// Native-messaging benchmark: round trips per second and p50/p99 latency through the real server
// process (`tabagent serve --mode native`) against a bare echo host (Buffer operations only), in
// the same run, alternating short rounds between the two. Cases: `ping`, and a ~100 KB round trip
// (request: get_logs with 100 KB of padding; reply: the last 1000 lines of a prepared ~100 KB log;
// the bare host echoes the same 100 KB request). Floor: server ping throughput >= 0.5 of bare.
// Usage (from the repository root, after `npx nx build server`):
//   node bench/native-messaging/run.mjs [--duration-ms 3000] [--server-cli apps/server/dist/cli.js] [--json]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFrameDecoder, encodeFrame } from '@tabagent/native-messaging';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function option(name, fallback) {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : process.argv[index + 1];
}
const durationMs = Number(option('--duration-ms', '3000'));
const serverCli = path.resolve(root, option('--server-cli', 'apps/server/dist/cli.js'));
const asJson = process.argv.includes('--json');
const payloadBytes = 100 * 1024;
const logLineCount = 1000;
const logLine = (index) => `${String(index).padStart(6, '0')} ${'l'.repeat(93)}`; // 100 bytes + newline

if (!existsSync(serverCli)) {
  process.stderr.write(`${serverCli} does not exist: build the server first (npx nx build server)\n`);
  process.exit(2);
}

/** Starts a host process and returns a sequential request/response client over its stdio. */
function startHost(command, args) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const decoder = createFrameDecoder();
  let waiting = null;
  const queue = [];
  child.stdout.on('data', (chunk) => {
    for (const frame of decoder.push(chunk)) {
      if (frame.kind !== 'message') throw new Error(`bad frame from host: ${frame.kind}`);
      if (waiting) {
        const resolve = waiting;
        waiting = null;
        resolve(frame.value);
      } else queue.push(frame.value);
    }
  });
  return {
    request(frame) {
      return new Promise((resolve) => {
        if (queue.length > 0) {
          resolve(queue.shift());
          return;
        }
        waiting = resolve;
        child.stdin.write(frame);
      });
    },
    async stop() {
      child.stdin.end();
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

function percentile(sorted, fraction) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

/**
 * Measures two hosts on the same request, alternating short rounds between them so that load from
 * other processes on the machine falls on both alike. Each round trip is one request, one reply.
 */
async function measurePair(first, second, frame, checkFirst, checkSecond) {
  for (let index = 0; index < 50; index += 1) {
    checkFirst(await first.request(frame));
    checkSecond(await second.request(frame));
  }
  const rounds = 10;
  const roundMs = durationMs / rounds;
  const stats = [
    { latencies: [], elapsed: 0 },
    { latencies: [], elapsed: 0 },
  ];
  for (let round = 0; round < rounds; round += 1) {
    for (const [slot, host, check] of [
      [0, first, checkFirst],
      [1, second, checkSecond],
    ]) {
      const started = performance.now();
      while (performance.now() - started < roundMs) {
        const sent = performance.now();
        const reply = await host.request(frame);
        stats[slot].latencies.push(performance.now() - sent);
        check(reply);
      }
      stats[slot].elapsed += performance.now() - started;
    }
  }
  return stats.map(({ latencies, elapsed }) => {
    latencies.sort((a, b) => a - b);
    return {
      round_trips: latencies.length,
      round_trips_per_second: Math.round((latencies.length * 1000) / elapsed),
      p50_ms: Number(percentile(latencies, 0.5).toFixed(3)),
      p99_ms: Number(percentile(latencies, 0.99).toFixed(3)),
    };
  });
}

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tabagent-nm-bench-'));
mkdirSync(path.join(dataDir, 'logs'), { recursive: true });
// The server's echo-sized case: get_logs returns the last 1000 lines of a prepared ~100 KB log.
writeFileSync(path.join(dataDir, 'logs', 'tabagent.log'), `${Array.from({ length: logLineCount }, (_, index) => logLine(index)).join('\n')}\n`);
const padding = 'p'.repeat(payloadBytes);

const results = {};
const bare = startHost(process.execPath, [path.join(here, 'bare-echo-host.mjs')]);
const server = startHost(process.execPath, [
  serverCli,
  'serve',
  '--mode',
  'native',
  '--data-dir',
  dataDir,
  '--log-level',
  'warn',
  'chrome-extension://nhgeobigjnkldfcdbiinjheboppfafhi/',
]);
try {
  const pingFrame = encodeFrame({ action: 'ping', messageId: 'bench' });
  [results.bare_ping, results.server_ping] = await measurePair(
    bare,
    server,
    pingFrame,
    (reply) => {
      if (reply.action !== 'ping') throw new Error('bare echo host answered wrongly');
    },
    (reply) => {
      if (reply.status !== 'success' || reply.messageId !== 'bench') throw new Error(`server ping failed: ${JSON.stringify(reply)}`);
    },
  );
  const bigFrame = encodeFrame({ action: 'get_logs', lines: logLineCount, messageId: 'bench-100k', padding });
  let replyBytes = 0;
  [results.bare_100kb, results.server_100kb] = await measurePair(
    bare,
    server,
    bigFrame,
    (reply) => {
      if (reply.padding.length !== payloadBytes) throw new Error('bare echo host answered wrongly');
    },
    (reply) => {
      if (reply.status !== 'success' || typeof reply.lines !== 'string') throw new Error(`server get_logs failed: ${JSON.stringify(reply).slice(0, 300)}`);
      replyBytes = Buffer.byteLength(JSON.stringify(reply));
    },
  );
  results.server_100kb.reply_bytes = replyBytes;
  results.request_bytes_100kb = bigFrame.length - 4;
} finally {
  await Promise.all([bare.stop(), server.stop()]);
  rmSync(dataDir, { recursive: true, force: true });
}

const pingRatio = results.server_ping.round_trips_per_second / results.bare_ping.round_trips_per_second;
const bigRatio = results.server_100kb.round_trips_per_second / results.bare_100kb.round_trips_per_second;
const summary = {
  node: process.version,
  cpus: os.cpus().length,
  duration_ms_per_case: durationMs,
  ...results,
  ping_throughput_ratio: Number(pingRatio.toFixed(3)),
  payload_100kb_throughput_ratio: Number(bigRatio.toFixed(3)),
  floor: 'ping throughput >= 0.5 of the bare host',
  floor_met: pingRatio >= 0.5,
};
if (asJson) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
else {
  const row = (name, result) =>
    `${name.padEnd(22)} ${String(result.round_trips_per_second).padStart(8)} rt/s   p50 ${result.p50_ms.toFixed(3)} ms   p99 ${result.p99_ms.toFixed(3)} ms`;
  process.stdout.write(
    [
      `native messaging round trips (${durationMs} ms per case, ${process.version}, ${os.cpus().length} CPUs)`,
      row('bare echo, ping', results.bare_ping),
      row('tabagent, ping', results.server_ping),
      row('bare echo, 100 KB', results.bare_100kb),
      row('tabagent, 100 KB', results.server_100kb),
      `ping ratio ${pingRatio.toFixed(3)} (floor 0.5: ${pingRatio >= 0.5 ? 'met' : 'NOT met'}), 100 KB ratio ${bigRatio.toFixed(3)}; server 100 KB case: ${results.request_bytes_100kb}-byte request, ${results.server_100kb.reply_bytes}-byte reply`,
      '',
    ].join('\n'),
  );
}
process.exitCode = pingRatio >= 0.5 ? 0 : 1;
