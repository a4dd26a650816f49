// Metrics overhead: `GET /v1/health` under wrk against two `tabagent serve` processes, one with
// `--metrics on` (every request counted and timed, as Prometheus scrapes it) and one with
// `--metrics off`, alternating rounds in the same run, `--pairs` fresh pairs of them. Floor: metrics cost < 3% of health
// throughput. A scrape of /metrics is timed too.
// Usage (after `npx nx build server`): node bench/metrics/overhead.mjs [--seconds 5] [--rounds 3] [--pairs 3] [--no-pin] [--same] [--json]
// `--same` starts both servers with `--metrics off`: the "cost" it prints is the bench's own bias
// and noise (which server started first, where each landed in memory), the floor to read a real
// difference against.
// Both servers run on core 0 and wrk on core 1 (taskset), so the client does not take the
// server's core: on 2 cores an unpinned run's noise (±5%) hides a 3% difference.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { flag, median, option, repositoryRoot, runWrk, startTabagent } from '../support/bench-support.mjs';

const seconds = Number(option('seconds', '5'));
const rounds = Number(option('rounds', '3'));

const same = flag('same');
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
/** CPU seconds (user + system) a process has used, from /proc: what a request costs, whatever else slows the machine. */
function cpuSecondsOf(pid) {
  // Fields after the command name (which is in parentheses): utime and stime are the 12th and 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}
const pairs = Number(option('pairs', '3'));
const pin = !flag('no-pin');
/** Starts one server of each kind, in the given order, pinned to core 0. */
async function startPair(firstKind) {
  const servers = {};
  for (const kind of firstKind === 'on' ? ['on', 'off'] : ['off', 'on']) {
    servers[kind] = await startTabagent({ args: ['--metrics', kind === 'on' && !same ? 'on' : 'off'] });
    if (pin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(servers[kind].pid)], { stdio: 'ignore' });
  }
  return servers;
}

// Two identical processes differ by several percent for as long as they live (where the heap
// and code landed, what the JIT chose): `--same` shows it. Fresh pairs, started in turn in either
// order, spread that over both sides.
const rates = { on: [], off: [] };
const cpuPerRequest = { on: [], off: [] };
const scrapes = [];
for (let pair = 0; pair < pairs; pair += 1) {
  const servers = await startPair(pair % 2 === 0 ? 'on' : 'off');
  try {
    for (let round = 0; round < rounds; round += 1) {
      // Alternate which goes first so drift (thermal, other load) falls on both.
      const order = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      for (const which of order) {
        const server = servers[which];
        const cpuBefore = cpuSecondsOf(server.pid);
        const result = await runWrk(`${server.baseUrl}/v1/health`, { seconds, connections: 4, ...(pin ? { cpus: '1' } : {}) });
        if (result.non2xx > 0 || result.errors > 0) throw new Error(`${which}: ${result.non2xx} non-2xx, ${result.errors} socket errors`);
        rates[which].push(result.requestsPerSecond);
        cpuPerRequest[which].push(((cpuSecondsOf(server.pid) - cpuBefore) * 1e6) / result.requests);
      }
    }
    for (let n = 0; n < (same || pair > 0 ? 0 : 20); n += 1) {
      const start = performance.now();
      const response = await fetch(`${servers.on.baseUrl}/metrics`);
      await response.text();
      scrapes.push(performance.now() - start);
    }
  } finally {
    await servers.on.stop();
    await servers.off.stop();
  }
}
// What the metrics add to one call, in this process and alone: the wrapper every call goes
// through with metrics on (counter, histogram) and with them off (the request log's timing only).
// Over the server CPU a health request costs, this is the metrics' share without the machine's noise.
const { createServerMetrics, requestLogOnly } = await import(pathToFileURL(join(repositoryRoot, 'apps', 'server', 'dist', 'server-metrics.js')).href);
const echo = { handle: async () => ({ status: 'ok' }) };
const context = { requestId: 'bench', transport: 'http', signal: new AbortController().signal, caller: {} };
const serverMetrics = createServerMetrics({
  loadedModels: () => [],
  activeGenerations: () => 0,
  memoryStatus: async () => ({}),
  downloads: () => ({ activeFiles: 0, bytesReceived: 0 }),
});
const wrapped = { on: serverMetrics.instrument(echo, () => undefined), off: requestLogOnly().instrument(echo, () => undefined) };
const callCost = { on: [], off: [] };
for (let round = 0; round < 5; round += 1) {
  for (const which of ['off', 'on']) {
    const calls = 200_000;
    const start = performance.now();
    for (let n = 0; n < calls; n += 1) await wrapped[which].handle('health.get', {}, context);
    callCost[which].push(((performance.now() - start) * 1000) / calls);
  }
}

const figures = {
  health_rps: { metrics_on: median(rates.on), metrics_off: median(rates.off) },
  cpu_us_per_request: { metrics_on: median(cpuPerRequest.on), metrics_off: median(cpuPerRequest.off) },
  scrape_ms_p50: same ? null : median(scrapes),
  in_process_us_per_call: { metrics_on: median(callCost.on), metrics_off: median(callCost.off) },
};
figures.in_process_us_per_call.added = median(callCost.on.map((cost, round) => cost - callCost.off[round]));
figures.in_process_us_per_call.share_of_request_cpu = figures.in_process_us_per_call.added / figures.cpu_us_per_request.metrics_off;
figures.health_rps.cost = 1 - figures.health_rps.metrics_on / figures.health_rps.metrics_off;
// Each round measures both back to back: the median of the rounds' own ratios is less moved by
// drift over the run (another process, the CPU's clock) than the ratio of the medians.
figures.health_rps.cost_paired = median(rates.on.map((rate, round) => 1 - rate / rates.off[round]));
// Server CPU per request: a slower machine (another VM, a clock change) lowers throughput but
// moves this far less, so it shows the cost of the metrics themselves best.
figures.cpu_us_per_request.cost = median(cpuPerRequest.on.map((cpu, round) => cpu / cpuPerRequest.off[round] - 1));
if (flag('json')) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
else {
  const { health_rps: rps } = figures;
  process.stdout.write(
    `${same ? '(--same: both servers metrics off) ' : ''}health req/s  metrics on ${rps.metrics_on.toFixed(0)}  off ${rps.metrics_off.toFixed(0)}  cost ${(rps.cost * 100).toFixed(1)}% (paired by round ${(rps.cost_paired * 100).toFixed(1)}%; floor < 3%)   ` +
      `rounds on ${rates.on.map((r) => r.toFixed(0)).join('/')} off ${rates.off.map((r) => r.toFixed(0)).join('/')}\n` +
      `server CPU per request  metrics on ${figures.cpu_us_per_request.metrics_on.toFixed(1)} µs  off ${figures.cpu_us_per_request.metrics_off.toFixed(1)} µs  cost ${(figures.cpu_us_per_request.cost * 100).toFixed(1)}% (paired by round)   ` +
      `rounds on ${cpuPerRequest.on.map((c) => c.toFixed(1)).join('/')} off ${cpuPerRequest.off.map((c) => c.toFixed(1)).join('/')}\n` +
      (same ? '' : `GET /metrics p50 ${figures.scrape_ms_p50.toFixed(1)} ms\n`) +
      `in process, per call  metrics on ${figures.in_process_us_per_call.metrics_on.toFixed(2)} µs  off ${figures.in_process_us_per_call.metrics_off.toFixed(2)} µs  ` +
      `added ${figures.in_process_us_per_call.added.toFixed(2)} µs = ${(figures.in_process_us_per_call.share_of_request_cpu * 100).toFixed(1)}% of a health request's server CPU (metrics off)\n`,
  );
}
