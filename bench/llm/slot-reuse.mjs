// A conversation's cache across another conversation (issue 32, slot choice): time to first token
// of a chat prompt sent again right away (its cache is there) against the same prompt sent again
// after another conversation ran in between, same server, same run, on the medium model with 4
// sequences. With llama-server's slot choice the other conversation takes an unused sequence and
// the ratio is ~1; the old choice gave it the first conversation's sequence (~13x).
// Usage (from the repository root, after `npx nx run server:build`):
//   node bench/llm/slot-reuse.mjs [--rounds 6]
// Every failure (an error status, a stream without [DONE]) is counted and shown.
import { chatMlToolsTemplate } from '@tabagent/gguf-loader/test-support';
import { ensureBenchModel, median, option, startTabagent } from '../support/bench-support.mjs';

const rounds = Number(option('rounds', '6'));
const model = 'chat-bench-medium';
const path = await ensureBenchModel(model, 'medium', { chatTemplate: chatMlToolsTemplate });
const server = await startTabagent({ models: [path], args: ['--threads', '1'] });
const failures = { status: 0, truncated: 0 };
await fetch(`${server.baseUrl}/v1/models/load`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, context_size: 2048, keep_alive: -1 }),
});

/** A streamed chat of 2 tokens; its time to the first text, or null on a failure (counted). */
async function ttft(content) {
  const started = performance.now();
  const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: 2, stream: true, ignore_eos: true, seed: 1 }),
  });
  if (!response.ok) {
    failures.status += 1;
    await response.text();
    return null;
  }
  let first = null;
  let text = '';
  for await (const bytes of response.body) {
    text += new TextDecoder().decode(bytes);
    if (first === null && text.includes('"content":"') && /"content":"[^"]/.test(text)) first = performance.now();
  }
  if (!text.includes('[DONE]')) {
    failures.truncated += 1;
    return null;
  }
  return (first ?? performance.now()) - started;
}

const topics = ['the tides of the northern coast', 'keeping bees on a windy island', 'repairing an old lighthouse lamp', 'charting the stars in winter'];
const long = (topic) => `Tell me everything about ${topic}. ${'Please be thorough and careful, and cover history, practice and common mistakes. '.repeat(12)}`;
const direct = [];
const afterOther = [];
for (let round = 0; round < rounds; round++) {
  const mine = long(`${topics[round % topics.length]} (round ${round})`);
  await ttft(mine); // first time: evaluated whole
  const again = await ttft(mine); // at once: cached
  await ttft(long(`${topics[(round + 1) % topics.length]} (other ${round})`)); // another conversation
  const later = await ttft(mine); // after it: still cached?
  if (again !== null) direct.push(again);
  if (later !== null) afterOther.push(later);
}
await server.stop();
console.log(`model ${model} (medium, 1 thread, 4 sequences), ${rounds} rounds; failures: status ${failures.status}, truncated ${failures.truncated}`);
console.log(`TTFT of a cached prompt sent again at once:         ${median(direct).toFixed(1)} ms`);
console.log(`TTFT of the same prompt after another conversation: ${median(afterOther).toFixed(1)} ms`);
console.log(`ratio: ${(median(afterOther) / median(direct)).toFixed(2)} (floor, against llama-server's same figure: <= 1.1)`);
