// HTTP benchmark: our server against a bare node:http server (and the api package alone), same
// run, same machine, loaded by wrk (a C client: the load generator takes little of the 2 cores).
// Usage (from the repository root):
//   node bench/http/run.mjs [--duration 10] [--connections 32] [--warmup 2] [--ours "<command with {port} and {dataDir}>"]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runWrk } from '../support/bench-support.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = join(here, '..', '..');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : process.argv[index + 1];
}

const duration = Number(option('duration', '10'));
const connections = Number(option('connections', '32'));
const warmup = Number(option('warmup', '2'));
const cliPath = join(repositoryRoot, 'apps', 'server', 'dist', 'cli.js');
const oursCommand = option('ours', existsSync(cliPath) ? `node ${cliPath} serve --host 127.0.0.1 --port {port} --data-dir {dataDir}` : undefined);
if (!(duration > 0) || !(connections > 0) || !(warmup >= 0)) throw new Error('--duration and --connections must be positive numbers');

const chatBody = JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] });
const scenarios = [
  { name: 'GET /v1/health', path: '/v1/health', method: 'GET', expect: 200 },
  {
    name: 'POST /v1/chat/completions (404)',
    path: '/v1/chat/completions',
    method: 'POST',
    body: chatBody,
    headers: { 'content-type': 'application/json' },
    expect: 404,
  },
];

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitForHealth(port, child, label) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${label} exited with code ${child.exitCode} before answering`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/v1/health`);
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${label} did not answer /v1/health within 60 s`);
}

async function startTarget(label, command) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'tabagent-bench-'));
  const expanded = command.replaceAll('{port}', String(port)).replaceAll('{dataDir}', dataDir);
  const [executable, ...args] = splitCommand(expanded);
  const child = spawn(executable === 'node' ? process.execPath : executable, args, {
    cwd: repositoryRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  try {
    await waitForHealth(port, child, label);
  } catch (error) {
    stop(child);
    throw new Error(`${error.message}\n${stderr}`);
  }
  return { label, port, child, dataDir };
}

/** Splits a command line on spaces, keeping "double" or 'single' quoted parts together (no shell, so the child's pid is the server's). */
function splitCommand(command) {
  const parts = [];
  for (const match of command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) parts.push(match[1] ?? match[2] ?? match[3]);
  return parts;
}

/** CPU time (user + system) of a process in microseconds, from /proc (Linux; undefined elsewhere). */
function cpuMicros(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      resolve();
    }
    setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, 5000).unref();
  });
}

async function measure(port, scenario, seconds, pid) {
  const cpuBefore = cpuMicros(pid);
  const result = await runWrk(`http://127.0.0.1:${port}${scenario.path}`, {
    seconds,
    connections,
    threads: 1,
    method: scenario.method,
    body: scenario.body,
    headers: scenario.headers,
  });
  const cpuAfter = cpuMicros(pid);
  // wrk counts answers outside 2xx/3xx; the 404 scenario expects every answer there.
  const expectedStatusCount = scenario.expect === 200 ? result.requests - result.non2xx : result.non2xx;
  return {
    cpuPerRequest: cpuBefore === undefined || cpuAfter === undefined || result.requests === 0 ? undefined : (cpuAfter - cpuBefore) / result.requests,
    requestsPerSecond: result.requestsPerSecond,
    p50: result.p50,
    p99: result.p99,
    errors: result.errors,
    unexpected: result.requests - expectedStatusCount,
  };
}

const targets = [
  { label: 'bare node:http', command: `node ${join(here, 'bare-server.mjs')} --port {port}` },
  { label: 'api package only', command: `node ${join(here, 'api-only-server.mjs')} --port {port}` },
];
if (oursCommand !== undefined) targets.push({ label: 'tabagent server', command: oursCommand });
else process.stderr.write(`apps/server/dist/cli.js not found: measuring the api package only (pass --ours "<command>" to add the server)\n`);

const rows = [];
for (const scenario of scenarios) {
  let bare;
  for (const target of targets) {
    const running = await startTarget(target.label, target.command);
    try {
      if (warmup > 0) await measure(running.port, scenario, warmup, running.child.pid);
      const figures = await measure(running.port, scenario, duration, running.child.pid);
      bare ??= figures;
      const cpuRatio = figures.cpuPerRequest === undefined || bare.cpuPerRequest === undefined ? undefined : bare.cpuPerRequest / figures.cpuPerRequest;
      rows.push({ scenario: scenario.name, target: target.label, ...figures, ratio: figures.requestsPerSecond / bare.requestsPerSecond, cpuRatio });
    } finally {
      await stop(running.child);
      rmSync(running.dataDir, { recursive: true, force: true });
    }
  }
}

const header = [
  'scenario',
  'target',
  'req/s',
  'p50 ms',
  'p99 ms',
  'ratio ours/bare',
  'server CPU us/req',
  'CPU ratio bare/ours',
  'errors',
  'unexpected status',
];
const lines = rows.map((row) => [
  row.scenario,
  row.target,
  row.requestsPerSecond.toFixed(0),
  row.p50.toFixed(2),
  row.p99.toFixed(2),
  row.ratio.toFixed(3),
  row.cpuPerRequest === undefined ? 'n/a' : row.cpuPerRequest.toFixed(0),
  row.cpuRatio === undefined ? 'n/a' : row.cpuRatio.toFixed(3),
  String(row.errors),
  String(row.unexpected),
]);
const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
const format = (cells) => `| ${cells.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
process.stdout.write(`wrk: 1 thread, ${connections} connections, ${warmup} s warm-up, ${duration} s measured, Node ${process.version}\n`);
process.stdout.write(
  'ratio ours/bare compares requests/s (the floor: health >= 0.2 with every check of SECURITY.md on); on a busy or small machine the client can cap the bare server, so the CPU ratio (server CPU time per request) is the steadier figure.\n',
);
process.stdout.write(`${format(header)}\n|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|\n${lines.map(format).join('\n')}\n`);
