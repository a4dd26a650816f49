// Metrics overhead: `GET /v1/health` under wrk against two `tabagent serve` processes, one with
// `--metrics on` (every request counted and timed, as Prometheus scrapes it) and one with
// `--metrics off`, alternating rounds in the same run. Floor: metrics cost < 3% of health
// throughput. A scrape of /metrics is timed too.
// Usage (after `npx nx build server`): node bench/metrics/overhead.mjs [--seconds 5] [--rounds 3] [--no-pin] [--same] [--json]
// `--same` starts both servers with `--metrics off`: the "cost" it prints is the bench's own bias
// and noise (which server started first, where each landed in memory), the floor to read a real
// difference against.
// Both servers run on core 0 and wrk on core 1 (taskset), so the client does not take the
// server's core: on 2 cores an unpinned run's noise (±5%) hides a 3% difference.
import { execFileSync } from 'node:child_process';
import { flag, median, option, runWrk, startTabagent } from '../support/bench-support.mjs';

const seconds = Number(option('seconds', '5'));
const rounds = Number(option('rounds', '3'));

const same = flag('same');
const on = await startTabagent({ args: ['--metrics', same ? 'off' : 'on'] });
const off = await startTabagent({ args: ['--metrics', 'off'] });
const pin = !flag('no-pin');
if (pin) for (const server of [on, off]) execFileSync('taskset', ['-a', '-p', '-c', '0', String(server.pid)], { stdio: 'ignore' });
try {
  const rates = { on: [], off: [] };
  for (let round = 0; round < rounds; round += 1) {
    // Alternate which goes first so drift (thermal, other load) falls on both.
    const order = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
    for (const which of order) {
      const server = which === 'on' ? on : off;
      const result = await runWrk(`${server.baseUrl}/v1/health`, { seconds, connections: 4, ...(pin ? { cpus: '1' } : {}) });
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${which}: ${result.non2xx} non-2xx, ${result.errors} socket errors`);
      rates[which].push(result.requestsPerSecond);
    }
  }
  const scrapes = [];
  for (let n = 0; n < (same ? 0 : 20); n += 1) {
    const start = performance.now();
    const response = await fetch(`${on.baseUrl}/metrics`);
    await response.text();
    scrapes.push(performance.now() - start);
  }
  const figures = {
    health_rps: { metrics_on: median(rates.on), metrics_off: median(rates.off) },
    scrape_ms_p50: same ? null : median(scrapes),
  };
  figures.health_rps.cost = 1 - figures.health_rps.metrics_on / figures.health_rps.metrics_off;
  // Each round measures both back to back: the median of the rounds' own ratios is less moved by
  // drift over the run (another process, the CPU's clock) than the ratio of the medians.
  figures.health_rps.cost_paired = median(rates.on.map((rate, round) => 1 - rate / rates.off[round]));
  if (flag('json')) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  else {
    const { health_rps: rps } = figures;
    process.stdout.write(
      `${same ? '(--same: both servers metrics off) ' : ''}health req/s  metrics on ${rps.metrics_on.toFixed(0)}  off ${rps.metrics_off.toFixed(0)}  cost ${(rps.cost * 100).toFixed(1)}% (paired by round ${(rps.cost_paired * 100).toFixed(1)}%; floor < 3%)   ` +
        `rounds on ${rates.on.map((r) => r.toFixed(0)).join('/')} off ${rates.off.map((r) => r.toFixed(0)).join('/')}\n` +
        (same ? '' : `GET /metrics p50 ${figures.scrape_ms_p50.toFixed(1)} ms\n`),
    );
  }
} finally {
  await on.stop();
  await off.stop();
}
