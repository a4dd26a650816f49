// A TabAgent front in front of an upstream engine, same machine, same run: streamed chat through
// the front (`NAME/MODEL`) against the same request sent to the upstream directly, alternating.
// Figures: time to first token (p50, p90) and the front's added p50; decode speed and its ratio.
// Upstreams: another TabAgent server (always), and llama.cpp's own llama-server when it was built
// with bench/engines/build-llama-server.sh (or --llama-server PATH names one).
// Usage (from the repository root, after `npx nx run server:build`):
//   node bench/upstream/proxy.mjs [--rounds 20] [--decode-tokens 64] [--llama-server PATH]
// The model is the medium synthetic llama with its end-of-generation rows zeroed (every run
// generates exactly its budget), 1 thread per engine. Floors (issue "Beyond one machine"):
// added TTFT < 5 ms p50, decode >= 0.95 x direct.
// Every failure (refused connection, error status, error event, a stream without [DONE], a run
// shorter than its budget) is counted and shown; a run with one is left out of the figures.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chatMlToolsTemplate } from '@tabagent/gguf-loader/test-support';
import {
  ensureBenchModel,
  withoutEndOfGeneration,
  freePort,
  median,
  option,
  percentile,
  readSse,
  repositoryRoot,
  startTabagent,
} from '../support/bench-support.mjs';

const rounds = Number(option('rounds', '20'));
const decodeTokens = Number(option('decode-tokens', '64'));
const ttftTokens = 2;
const llamaServer = option('llama-server', join(repositoryRoot, 'bench', '.engines', 'llama.cpp', 'build', 'bin', 'llama-server'));
const model = 'upstream-bench-medium';

const modelPath = await ensureBenchModel(model, 'medium', { chatTemplate: chatMlToolsTemplate, mapTensors: withoutEndOfGeneration });
const messages = [{ role: 'user', content: 'Write a short note to the lighthouse keeper about the storm tonight and the supplies.' }];

/** One streamed chat: time to the first text and decode speed; null on a failure (counted). */
async function run(baseUrl, modelId, tokens, failures) {
  const started = performance.now();
  let response;
  try {
    response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: modelId, messages, max_tokens: tokens, stream: true, seed: 42, temperature: 0.8, stream_options: { include_usage: true } }),
    });
  } catch {
    failures.refused += 1;
    return null;
  }
  if (response.status !== 200) {
    failures.status += 1;
    console.error(`${baseUrl} ${modelId}: ${response.status} ${await response.text()}`);
    return null;
  }
  let firstText = null;
  let lastText = null;
  let pieces = 0;
  let usageTokens;
  let done = false;
  let failed = false;
  await readSse(
    response,
    (data, now) => {
      if (data.error !== undefined) failed = true;
      if ((data.choices?.[0]?.delta?.content ?? '') !== '') {
        firstText ??= now;
        lastText = now;
        pieces += 1;
      }
      usageTokens = data.usage?.completion_tokens ?? usageTokens;
    },
    () => (done = true),
  );
  if (failed) failures.errorEvent += 1;
  else if (!done) failures.truncated += 1;
  else if (usageTokens !== tokens) failures.short += 1;
  if (failed || !done || usageTokens !== tokens) return null;
  return { ttft: firstText - started, decode: pieces > 1 ? ((usageTokens - 1) * 1000) / (lastText - firstText) : null };
}

/** Direct against through the front, alternating which goes first; the figures of both. */
async function compare(label, direct, through) {
  const failures = {
    direct: { refused: 0, status: 0, errorEvent: 0, truncated: 0, short: 0 },
    through: { refused: 0, status: 0, errorEvent: 0, truncated: 0, short: 0 },
  };
  const sides = { direct, through };
  const ttft = { direct: [], through: [] };
  const decode = { direct: [], through: [] };
  for (const side of ['direct', 'through']) for (let warm = 0; warm < 2; warm++) await run(sides[side].baseUrl, sides[side].model, ttftTokens, failures[side]);
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 === 0 ? ['direct', 'through'] : ['through', 'direct']) {
      const result = await run(sides[side].baseUrl, sides[side].model, ttftTokens, failures[side]);
      if (result) ttft[side].push(result.ttft);
    }
  }
  for (let round = 0; round < Math.max(4, Math.round(rounds / 4)); round++) {
    for (const side of round % 2 === 0 ? ['direct', 'through'] : ['through', 'direct']) {
      const result = await run(sides[side].baseUrl, sides[side].model, decodeTokens, failures[side]);
      if (result?.decode) decode[side].push(result.decode);
    }
  }
  const added = median(ttft.through) - median(ttft.direct);
  const ratio = median(decode.through) / median(decode.direct);
  const lines = [
    `### ${label}`,
    '',
    `${rounds} rounds of ${ttftTokens} tokens for time to first token, ${decode.direct.length} of ${decodeTokens} for decode, alternating.`,
    '',
    '| path | TTFT p50 | TTFT p90 | decode tok/s (median) | failures |',
    '|---|---|---|---|---|',
    ...['direct', 'through'].map(
      (side) =>
        `| ${side === 'direct' ? `${sides[side].baseUrl} (${sides[side].model})` : `front (${sides[side].model})`} | ${median(ttft[side]).toFixed(2)} ms | ${percentile(ttft[side], 90).toFixed(2)} ms | ${median(decode[side]).toFixed(2)} | ${Object.entries(
          failures[side],
        )
          .map(([kind, count]) => `${kind} ${count}`)
          .join(', ')} |`,
    ),
    '',
    `Added TTFT p50: ${added.toFixed(2)} ms (floor < 5 ms: ${added < 5 ? 'met' : 'NOT met'}); decode through / direct: ${ratio.toFixed(3)} (floor >= 0.95: ${ratio >= 0.95 ? 'met' : 'NOT met'}).`,
    '',
  ];
  console.log(lines.join('\n'));
}

// A TabAgent upstream, and a front that serves it as `up/…`.
const upstream = await startTabagent({ models: [modelPath], args: ['--threads', '1', '--webrtc', 'off', '--metrics', 'off'] });
await fetch(`${upstream.baseUrl}/v1/models/load`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, context_size: 2048, keep_alive: -1 }),
});
const front = await startTabagent({ args: ['--threads', '1', '--webrtc', 'off', '--metrics', 'off', '--upstream', `up=${upstream.baseUrl}/v1`] });
console.log(`## Upstream proxy bench, ${new Date().toISOString().slice(0, 10)}, model ${model} (medium, 1 thread)\n`);
try {
  await compare('TabAgent upstream', { baseUrl: upstream.baseUrl, model }, { baseUrl: front.baseUrl, model: `up/${model}` });
} finally {
  await front.stop();
  await upstream.stop();
}

if (existsSync(llamaServer)) {
  const port = await freePort();
  const child = spawn(llamaServer, ['-m', modelPath, '--alias', model, '--host', '127.0.0.1', '--port', String(port), '-t', '1', '-c', '2048', '-np', '1'], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    // llama-server answers /health (503 while it loads the model), not /v1/health.
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null || attempt > 600) throw new Error('llama-server did not start');
      try {
        if ((await fetch(`${baseUrl}/health`)).ok) break;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const llamaFront = await startTabagent({ args: ['--threads', '1', '--webrtc', 'off', '--metrics', 'off', '--upstream', `ls=${baseUrl}/v1`] });
    try {
      await compare("llama.cpp's llama-server upstream", { baseUrl, model }, { baseUrl: llamaFront.baseUrl, model: `ls/${model}` });
    } finally {
      await llamaFront.stop();
    }
  } finally {
    child.kill('SIGTERM');
  }
} else {
  console.log(`(llama-server not built: run bench/engines/build-llama-server.sh for the llama-server rows; looked for ${llamaServer})`);
}
