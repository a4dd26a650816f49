// Helpers the benchmark scripts share: options, percentiles, the server as a child process, SSE
// reading and wrk. Benchmarks print figures beside a baseline measured in the same run.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const benchModelsDir = join(repositoryRoot, 'bench', '.models');

/** `--name value` from the command line, or the fallback. */
export function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : process.argv[index + 1];
}

/** Whether `--name` is on the command line. */
export const flag = (name) => process.argv.includes(`--${name}`);

/** The p-th percentile (nearest rank) of some numbers. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const median = (values) => percentile(values, 50);

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * `tabagent serve` as a child process on a fresh data directory whose models folder links the
 * given model files or folders (by name). Resolves once /v1/health answers.
 */
export async function startTabagent({ models = [], args = [], keepDataDir = false, cli = join(repositoryRoot, 'apps', 'server', 'dist', 'cli.js') } = {}) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build the server first (npx nx build server)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'tabagent-bench-'));
  mkdirSync(join(dataDir, 'models'), { recursive: true });
  for (const model of models) symlinkSync(model, join(dataDir, 'models', basename(model)));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [cli, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--keep-alive', '-1', '--log-level', 'warn', '--gpu', 'off', ...args],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  await untilHealthy(child, baseUrl, 60);
  return {
    baseUrl,
    pid: child.pid,
    dataDir,
    /** Stops the server; its data directory is removed unless `keepDataDir` was given (then the caller removes it). */
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve()));
      if (!keepDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until the server `child` runs answers GET /v1/health; throws if it exits or takes over `seconds`. */
export async function untilHealthy(child, baseUrl, seconds) {
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (attempt > seconds * 10) throw new Error(`server did not answer /v1/health in ${seconds} s`);
    try {
      if ((await fetch(`${baseUrl}/v1/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** POSTs JSON; throws with the body on a non-2xx answer. */
export async function postJson(url, body) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`);
  return response;
}

/** Reads an SSE response, calling `onData(parsed JSON, arrival time)` for each data event but [DONE], and `onDone()` for [DONE]. */
export async function readSse(response, onData, onDone = () => undefined) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of response.body) {
    const now = performance.now();
    buffer += decoder.decode(bytes, { stream: true });
    let boundary;
    while ((boundary = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') onDone();
        else onData(JSON.parse(data), now);
      }
    }
  }
}

/** wrk's Lua request script for a method, body and headers (written to a temporary file). */
function wrkScript({ method, body, headers }) {
  const lua = (value) => JSON.stringify(value); // a JSON string is a valid Lua string literal for ASCII text
  const lines = [`wrk.method = ${lua(method ?? 'GET')}`];
  if (body !== undefined) lines.push(`wrk.body = ${lua(body)}`);
  for (const [name, value] of Object.entries(headers ?? {})) lines.push(`wrk.headers[${lua(name)}] = ${lua(value)}`);
  const folder = mkdtempSync(join(tmpdir(), 'wrk-'));
  const file = join(folder, 'request.lua');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { file, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

/**
 * Runs wrk (Debian's package: a C client, so the load generator takes little of the server's CPU)
 * and parses its latency percentiles, request count, non-2xx answers and socket errors.
 */
export function runWrk(url, { seconds = 5, connections = 2, threads = 1, method, body, headers, cpus } = {}) {
  const script = method === undefined && body === undefined && headers === undefined ? undefined : wrkScript({ method, body, headers });
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency', ...(script ? ['-s', script.file] : []), url];
  return new Promise((resolve, reject) => {
    // `cpus` ("1"): wrk on those cores only (taskset), apart from a server pinned elsewhere.
    const child =
      cpus === undefined
        ? spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] })
        : spawn('taskset', ['-c', cpus, 'wrk', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.once('error', (error) => {
      script?.remove();
      reject(new Error(`wrk could not start (apt-get install -y wrk): ${error.message}`));
    });
    child.once('exit', (code) => {
      script?.remove();
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${output}`));
      const toMs = (value, unit) => Number(value) * { us: 0.001, ms: 1, s: 1000 }[unit];
      const latency = (label) => {
        const match = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)`, 'm').exec(output);
        return match ? toMs(match[1], match[2]) : Number.NaN;
      };
      const rate = /Requests\/sec:\s+([\d.]+)/.exec(output);
      const total = /(\d+) requests in/.exec(output);
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
      resolve({
        p50: latency('50%'),
        p90: latency('90%'),
        p99: latency('99%'),
        requestsPerSecond: rate ? Number(rate[1]) : Number.NaN,
        requests: total ? Number(total[1]) : 0,
        non2xx: non2xx ? Number(non2xx[1]) : 0,
        errors: socket ? socket.slice(1).reduce((sum, count) => sum + Number(count), 0) : 0,
        output,
      });
    });
  });
}

/** Shapes of the synthetic llama GGUFs the benchmarks write (random F16 weights, seeded). */
export const benchModelShapes = {
  // ~125M parameters: per-token cost dominates, as with a real small model.
  medium: { embeddingLength: 768, blockCount: 12, headCount: 12, headCountKv: 4, feedForwardLength: 2048, vocabularySize: 32000 },
  // ~7M parameters: quick trial runs and latency measurements where overheads should show.
  small: { embeddingLength: 256, blockCount: 4, headCount: 8, headCountKv: 4, feedForwardLength: 768, vocabularySize: 8000 },
};

/** Writes (once) a synthetic llama GGUF of a shape into bench/.models and returns its path. */
export async function ensureBenchModel(name, size, extra = {}) {
  const shape = benchModelShapes[size];
  if (!shape) throw new Error(`size must be one of ${Object.keys(benchModelShapes).join(', ')}`);
  const path = join(benchModelsDir, `${name}.gguf`);
  if (!existsSync(path)) {
    const { writeTinyLlamaGguf } = await import('@tabagent/gguf-loader/test-support');
    mkdirSync(benchModelsDir, { recursive: true });
    const started = performance.now();
    const info = writeTinyLlamaGguf(path, { ...shape, tensorType: 'F16', contextLength: 4096, seed: 7, name, ...extra });
    console.error(`wrote ${path}: ${(info.parameters / 1e6).toFixed(1)}M parameters in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return path;
}

/**
 * For `ensureBenchModel`'s `mapTensors`: zeroes the output rows of the first three tokens (<unk>,
 * <s>, </s>), so their logit is 0, below every top-k candidate: every run generates its whole budget.
 */
export function withoutEndOfGeneration(tensors) {
  return tensors.map((tensor) => {
    if (tensor.name !== 'output.weight') return tensor;
    const width = tensor.dims[0];
    return {
      ...tensor,
      data: () => {
        const bytes = tensor.data();
        bytes.fill(0, 0, 3 * width * 2);
        return bytes;
      },
    };
  });
}
