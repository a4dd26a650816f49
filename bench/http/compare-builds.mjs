#!/usr/bin/env node
// GET /v1/health: this checkout's build against another checkout's (an earlier commit, built in a
// worktree), with a bare node:http server answering the same body beside them in the same run.
// Servers run on core 0 and wrk (1 thread, -c32) on core 1 (taskset), so the client does not take
// the servers' core; rounds alternate their order, and `--pairs` fresh sets of servers spread the
// few-percent difference two identical processes keep for their lifetime over both sides.
// `--same` runs this checkout's build on both sides: the difference it prints is the bench's noise.
// Every wrk run's non-2xx answers and socket errors are counted and shown.
// Usage: node bench/http/compare-builds.mjs --before /path/to/checkout [--seconds 5] [--rounds 4] [--pairs 3] [--same]
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flag, freePort, median, option, repositoryRoot, runWrk, startTabagent, untilHealthy } from '../support/bench-support.mjs';

const seconds = Number(option('seconds', '5'));
const rounds = Number(option('rounds', '4'));
const pairs = Number(option('pairs', '3'));
const same = flag('same');
const beforeRoot = option('before', '');
if (!same && beforeRoot === '') throw new Error('--before <checkout with apps/server/dist built> is required (or --same)');
const clis = {
  before: join(same ? repositoryRoot : beforeRoot, 'apps', 'server', 'dist', 'cli.js'),
  after: join(repositoryRoot, 'apps', 'server', 'dist', 'cli.js'),
};
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSecondsOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}
const pin = (pid) => execFileSync('taskset', ['-a', '-p', '-c', '0', String(pid)], { stdio: 'ignore' });

async function startBare() {
  const port = await freePort();
  const child = spawn(process.execPath, [join(repositoryRoot, 'bench', 'http', 'bare-server.mjs'), '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await untilHealthy(child, baseUrl, 10);
  return {
    baseUrl,
    pid: child.pid,
    stop: async () => (child.kill('SIGTERM'), new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve()))),
  };
}

const kinds = ['bare', 'before', 'after'];
const rates = { bare: [], before: [], after: [] };
const cpu = { bare: [], before: [], after: [] };
const failures = { bare: 0, before: 0, after: 0 };
for (let pair = 0; pair < pairs; pair += 1) {
  const servers = {};
  for (const kind of pair % 2 === 0 ? ['before', 'after'] : ['after', 'before']) servers[kind] = await startTabagent({ cli: clis[kind] });
  servers.bare = await startBare();
  for (const kind of kinds) pin(servers[kind].pid);
  try {
    // A first, uncounted run warms each server's JIT.
    for (const kind of kinds) await runWrk(`${servers[kind].baseUrl}/v1/health`, { seconds: 2, connections: 32, cpus: '1' });
    for (let round = 0; round < rounds; round += 1) {
      const order = (round + pair) % 2 === 0 ? ['bare', 'before', 'after'] : ['bare', 'after', 'before'];
      for (const kind of order) {
        const server = servers[kind];
        const cpuBefore = cpuSecondsOf(server.pid);
        const result = await runWrk(`${server.baseUrl}/v1/health`, { seconds, connections: 32, cpus: '1' });
        failures[kind] += result.non2xx + result.errors;
        rates[kind].push(result.requestsPerSecond);
        cpu[kind].push(((cpuSecondsOf(server.pid) - cpuBefore) * 1e6) / result.requests);
      }
    }
  } finally {
    for (const kind of kinds) await servers[kind].stop();
  }
}
const paired = (values, against) => median(values.map((value, index) => value / against[index]));
const row = (kind) =>
  `| ${kind === 'bare' ? 'bare node:http' : kind === 'before' ? `before${same ? ' (this build)' : ''}` : 'after (this build)'} | ${median(rates[kind]).toFixed(0)} | ${rates[kind].map((rate) => rate.toFixed(0)).join(' / ')} | ${median(cpu[kind]).toFixed(1)} | ${kind === 'bare' ? '1' : paired(rates[kind], rates.bare).toFixed(3)} | ${failures[kind]} |`;
console.log(
  `${same ? '--same: this build on both sides (the bench noise)\n' : ''}${pairs} pairs × ${rounds} rounds of ${seconds} s, wrk -t1 -c32 on core 1, servers on core 0\n`,
);
console.log('| server | req/s median | per round | CPU µs/req median | ratio to bare (paired by round) | non-2xx + socket errors |');
console.log('|---|---|---|---|---|---|');
for (const kind of kinds) console.log(row(kind));
const throughputCost = 1 - paired(rates.after, rates.before);
const cpuCost = paired(cpu.after, cpu.before) - 1;
console.log(
  `\nafter / before, paired by round: throughput ${paired(rates.after, rates.before).toFixed(3)}× (cost ${(throughputCost * 100).toFixed(1)}%), CPU per request ${paired(cpu.after, cpu.before).toFixed(3)}× (cost ${(cpuCost * 100).toFixed(1)}%)`,
);
process.exitCode = Object.values(failures).some((count) => count > 0) ? 1 : 0;
