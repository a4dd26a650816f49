#!/usr/bin/env node
// How long a large JSON request body holds the event loop while it is parsed: safeParseJson (one
// JSON.parse, what every body went through before) against parseJsonYielding (slices of about
// 2 ms), on the same texts in the same run. Prints, per body, the parse's wall time and the longest
// the event loop went without a turn (a setImmediate ticker running beside the parse), p50 and max
// over the runs, and the ratios. Every parse is checked to give the same value as JSON.parse.
//   node bench/json/parse-stall.mjs [--runs 15]
// Needs packages/values built (npx nx run values:build).
import { isDeepStrictEqual } from 'node:util';
import { parseJsonYielding, safeParseJson } from '../../packages/values/dist/index.js';

const runsIndex = process.argv.indexOf('--runs');
const runs = runsIndex === -1 ? 15 : Number(process.argv[runsIndex + 1]);

const bodies = {
  'chat with a 12 MiB image (16 MiB route)': JSON.stringify({
    model: 'llava',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this picture?' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${'iVBORw0KGgo'.repeat(1_200_000)}` } },
        ],
      },
    ],
  }),
  'sync.push of 60,000 small records (32 MiB route)': JSON.stringify({
    items: Array.from({ length: 60_000 }, (_, index) => ({
      id: `m-${index}`,
      kind: 'message',
      session_id: `s-${index % 50}`,
      role: 'user',
      content: `some saved text number ${index} \u00e9\u2014`,
      metadata: { url: `https://example.com/${index}`, n: index },
    })),
  }),
  'documents.ingest of a 3 MiB page with escapes (16 MiB route)': JSON.stringify({
    title: 'A long page',
    url: 'https://example.com/a',
    text: 'Line "quoted" \\ back\tslash\n\u2028'.repeat(100_000),
  }),
};

/** Runs `parse` with a ticker beside it; returns [wall ms, longest gap between ticks in ms]. */
async function measure(parse) {
  let longest = 0;
  let last = performance.now();
  let ticking = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  await new Promise((resolve) => setImmediate(resolve));
  const started = performance.now();
  const result = await parse();
  const wall = performance.now() - started;
  ticking = false;
  await new Promise((resolve) => setImmediate(resolve));
  longest = Math.max(longest, performance.now() - last);
  return { wall, longest, result };
}

const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length - 1) * p))];
const ms = (value) => `${value.toFixed(1)} ms`;
const failures = [];
const lines = [
  `| body | size | JSON.parse wall p50 | JSON.parse longest stall p50 / max | sliced wall p50 | sliced longest stall p50 / max | stall ratio (p50) | wall ratio (p50) |`,
  `|---|---|---|---|---|---|---|---|`,
];
for (const [name, text] of Object.entries(bodies)) {
  const expected = JSON.parse(text);
  const figures = { native: { wall: [], longest: [] }, sliced: { wall: [], longest: [] } };
  for (let run = 0; run < runs; run += 1) {
    for (const [kind, parse] of [
      ['native', async () => safeParseJson(text, { subject: 'body' })],
      ['sliced', () => parseJsonYielding(text, { subject: 'body' })],
    ]) {
      const { wall, longest, result } = await measure(parse);
      if (!result.success || !isDeepStrictEqual(result.value, expected))
        failures.push(`${kind} ${name}: ${result.success ? 'a different value' : result.error.message}`);
      figures[kind].wall.push(wall);
      figures[kind].longest.push(longest);
    }
  }
  const native = figures.native;
  const sliced = figures.sliced;
  lines.push(
    `| ${name} | ${(text.length / 1048576).toFixed(1)} MiB | ${ms(percentile(native.wall, 0.5))} | ${ms(percentile(native.longest, 0.5))} / ${ms(Math.max(...native.longest))} | ${ms(percentile(sliced.wall, 0.5))} | ${ms(percentile(sliced.longest, 0.5))} / ${ms(Math.max(...sliced.longest))} | ${(percentile(sliced.longest, 0.5) / percentile(native.longest, 0.5)).toFixed(2)}× | ${(percentile(sliced.wall, 0.5) / percentile(native.wall, 0.5)).toFixed(2)}× |`,
  );
}
console.log(`Node ${process.version}, ${runs} runs per body and parser, alternating\n`);
console.log(lines.join('\n'));
console.log(`\nfailures (a parse that failed or gave another value than JSON.parse): ${failures.length}`);
for (const failure of failures.slice(0, 10)) console.log(`  ${failure}`);
process.exitCode = failures.length === 0 ? 0 : 1;
