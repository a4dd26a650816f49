// Model download throughput and memory: a generated file (200 MB by default) from the local
// fake Hub (resolve → 302 → CDN, as huggingface.co does), pulled by our downloader (stream to
// a partial, sha256 on the way, atomic rename) against `curl -L -o` of the same URL in the same
// run. Floor (model-cache issue): throughput ≥ 0.9 × curl, peak RSS growth < 50 MB.
//
//   npm run bench:models [-- --mb 200 --runs 3]
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { median, option } from '../support/bench-support.mjs';

const megabytes = Number(option('mb', '200'));
const runs = Number(option('runs', '3'));
const root = mkdtempSync(path.join(tmpdir(), 'bench-models-'));
const source = path.join(root, 'source.gguf');
const repo = 'bench/Big-GGUF';
const name = 'Big-Q4_K_M.gguf';

async function writeRandomFile(file, bytes) {
  const out = createWriteStream(file);
  for (let written = 0; written < bytes; written += 4 * 1024 * 1024) {
    if (!out.write(randomBytes(Math.min(4 * 1024 * 1024, bytes - written)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
}

function readLine(child) {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end !== -1) resolve(JSON.parse(text.slice(0, end)));
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before answering`)));
  });
}

function runNode(script, args) {
  const child = spawn(process.execPath, ['--expose-gc', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return readLine(child);
}

try {
  const bytes = megabytes * 1024 * 1024;
  await writeRandomFile(source, bytes);
  const hub = spawn(process.execPath, [path.join(import.meta.dirname, 'fake-hub-server.mjs'), source, repo, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const described = await readLine(hub);
  const url = `${described.url}/${repo}/resolve/main/${name}`;
  const target = path.join(root, 'out');
  mkdirSync(target, { recursive: true });

  const curlSeconds = [];
  const oursSeconds = [];
  const growth = [];
  for (let run = 0; run < runs; run++) {
    // Alternate, so neither gets a warmer page cache every time.
    const curlFile = path.join(root, 'curl.bin');
    const curlStart = performance.now();
    execFileSync('curl', ['-sS', '-L', '-o', curlFile, url]);
    curlSeconds.push((performance.now() - curlStart) / 1000);
    if (statSync(curlFile).size !== bytes) throw new Error('curl fetched a wrong size');
    rmSync(curlFile);

    const result = await runNode(path.join(import.meta.dirname, 'pull-worker.mjs'), [described.url, repo, name, String(bytes), described.sha256, target]);
    oursSeconds.push(result.seconds);
    growth.push((result.peakRss - result.baselineRss) / 1024 / 1024);
    if (statSync(path.join(target, name)).size !== bytes) throw new Error('the downloader fetched a wrong size');
  }
  hub.kill('SIGTERM');

  const curlMbps = megabytes / median(curlSeconds);
  const oursMbps = megabytes / median(oursSeconds);
  const ratio = oursMbps / curlMbps;
  const peakGrowth = Math.max(...growth);
  console.log(`model download, ${megabytes} MB from the fake Hub (302 → CDN), median of ${runs}`);
  console.log(`  curl -L -o          ${curlMbps.toFixed(0).padStart(6)} MB/s   (${curlSeconds.map((s) => s.toFixed(2)).join(', ')} s)`);
  console.log(`  tabagent downloader ${oursMbps.toFixed(0).padStart(6)} MB/s   (${oursSeconds.map((s) => s.toFixed(2)).join(', ')} s), sha256 checked`);
  console.log(`  ratio (ours / curl) ${ratio.toFixed(3)}   floor 0.9 ${ratio >= 0.9 ? 'met' : 'NOT met'}`);
  console.log(
    `  peak RSS growth     ${peakGrowth.toFixed(1)} MB   floor < 50 MB ${peakGrowth < 50 ? 'met' : 'NOT met'}   (${growth.map((g) => g.toFixed(1)).join(', ')})`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
