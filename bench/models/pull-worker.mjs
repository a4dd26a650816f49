// One pull with the real downloader (no model inspection: the bench file is random bytes),
// reporting wall time and resident memory sampled every 5 ms, as one JSON line.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { createHubClient, createModelDownloader } from '@tabagent/model-cache';

const [endpoint, repo, name, size, sha256, folder] = process.argv.slice(2);
const client = createHubClient({ endpoint });
const downloader = createModelDownloader({ client, stagingDir: path.join(folder, '.downloads') });
const destination = path.join(folder, name);
rmSync(destination, { force: true });
globalThis.gc?.();
const baseline = process.memoryUsage.rss();
let peak = baseline;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 5);
const started = performance.now();
await downloader.download({ repo, revision: 'main', file: { path: name, size: Number(size), sha256, gitOid: null }, destination });
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage.rss());
process.stdout.write(`${JSON.stringify({ seconds, baselineRss: baseline, peakRss: peak })}\n`);
