// The agent dialects against the chat completions route, same server, same model, same run:
// time to first byte of the stream (the status line and the first event) and decode speed of
// /v1/messages (Anthropic) and /v1/responses (OpenAI Responses) as a ratio of /v1/chat/completions.
// Usage (from the repository root, after `npx nx run server:build`):
//   node bench/llm/dialects.mjs [--rounds 12] [--decode-tokens 96] [--decode-rounds 4]
// The three routes get the same conversation (one user message, no system prompt), so the
// rendered prompt is the same; the server's default seed (params.set) makes them sample the same
// tokens. The model is the medium synthetic llama with a ChatML template with tools, its
// end-of-generation rows zeroed so that top-k sampling never picks them: every run generates
// exactly its budget. Rounds alternate the routes' order.
// Floors (issue "Agents on local models"): TTFB <= 1.05 x chat completions; decode >= 0.97 x.
// Every failure (refused connection, error status, error event, a stream without its end event,
// a run shorter than its budget) is counted and shown; a round with one is left out of the figures.
import { chatMlToolsTemplate } from '@tabagent/gguf-loader/test-support';
import { ensureBenchModel, withoutEndOfGeneration, median, option, percentile, startTabagent } from '../support/bench-support.mjs';

const rounds = Number(option('rounds', '12'));
const decodeTokens = Number(option('decode-tokens', '96'));
const decodeRounds = Number(option('decode-rounds', '4'));
const ttfbTokens = 4;
const model = 'dialect-bench-medium';

const path = await ensureBenchModel(model, 'medium', { chatTemplate: chatMlToolsTemplate, mapTensors: withoutEndOfGeneration });
const server = await startTabagent({ models: [path], args: ['--threads', '1'] });
const failures = { refused: 0, status: 0, errorEvent: 0, truncated: 0, short: 0 };

const post = (url, body) => fetch(`${server.baseUrl}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
await post('/v1/models/load', { model, context_size: 2048, keep_alive: -1 });
await post('/v1/params', { seed: 42 });

const messages = [{ role: 'user', content: 'Write a short note to the lighthouse keeper about the storm tonight and the supplies.' }];
const routes = {
  chat: { url: '/v1/chat/completions', body: (tokens) => ({ model, messages, max_tokens: tokens, stream: true }), done: (data) => data === '[DONE]' },
  messages: { url: '/v1/messages', body: (tokens) => ({ model, messages, max_tokens: tokens, stream: true }), done: (data) => data?.type === 'message_stop' },
  responses: {
    url: '/v1/responses',
    body: (tokens) => ({ model, input: messages[0].content, max_output_tokens: tokens, stream: true, store: false }),
    done: (data) => data?.type === 'response.completed' || data?.type === 'response.incomplete',
  },
};

/** The text of an event, by route (the content delta only). */
function textOf(name, data) {
  if (name === 'chat') return data?.choices?.[0]?.delta?.content ?? '';
  if (name === 'messages') return data?.type === 'content_block_delta' && data.delta.type === 'text_delta' ? data.delta.text : '';
  return data?.type === 'response.output_text.delta' ? data.delta : '';
}

function outputTokensOf(name, data) {
  if (name === 'chat') return data?.usage?.completion_tokens;
  if (name === 'messages') return data?.type === 'message_delta' ? data.usage.output_tokens : undefined;
  return data?.response?.usage?.output_tokens;
}

/** One streamed request: time to first byte, time of the first and last text, output tokens; null on any failure (counted). */
async function run(name, tokens) {
  const route = routes[name];
  const started = performance.now();
  let response;
  try {
    response = await post(route.url, route.body(tokens));
  } catch {
    failures.refused += 1;
    return null;
  }
  if (response.status !== 200) {
    failures.status += 1;
    await response.text();
    return null;
  }
  const decoder = new TextDecoder();
  let buffer = '';
  let firstByte = null;
  let firstText = null;
  let lastText = null;
  let outputTokens;
  let ended = false;
  let failed = false;
  for await (const bytes of response.body) {
    const now = performance.now();
    firstByte ??= now;
    buffer += decoder.decode(bytes, { stream: true });
    let boundary;
    while ((boundary = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const line = frame.split('\n').find((entry) => entry.startsWith('data: '));
      if (line === undefined) continue;
      const text = line.slice(6);
      const data = text === '[DONE]' ? text : JSON.parse(text);
      if (data?.error !== undefined || data?.type === 'error' || data?.type === 'response.failed') failed = true;
      if (route.done(data)) ended = true;
      if (textOf(name, data).length > 0) {
        firstText ??= now;
        lastText = now;
      }
      outputTokens = outputTokensOf(name, data) ?? outputTokens;
    }
  }
  if (failed) failures.errorEvent += 1;
  else if (!ended) failures.truncated += 1;
  else if (outputTokens !== tokens) failures.short += 1;
  if (failed || !ended || outputTokens !== tokens) return null;
  return { ttfb: firstByte - started, decode: ((outputTokens - 1) * 1000) / (lastText - firstText) };
}

const names = Object.keys(routes);
const ttfb = Object.fromEntries(names.map((name) => [name, []]));
const decode = Object.fromEntries(names.map((name) => [name, []]));
for (const name of names) await run(name, ttfbTokens); // warm-up: first rendering, first sequence use
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  for (const name of order) {
    const result = await run(name, ttfbTokens);
    if (result) ttfb[name].push(result.ttfb);
  }
}
for (let round = 0; round < decodeRounds; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  for (const name of order) {
    const result = await run(name, decodeTokens);
    if (result) decode[name].push(result.decode);
  }
}
await server.stop();

const fmt = (value, unit) => `${value.toFixed(2).padStart(8)} ${unit}`;
console.log(`model ${model} (medium, 1 thread), ${rounds} rounds of ${ttfbTokens} tokens for TTFB, ${decodeRounds} of ${decodeTokens} for decode`);
console.log(
  `failures: ${Object.entries(failures)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ')}`,
);
console.log('route                 TTFB p50     TTFB p90   ratio (p50)   decode tok/s   ratio');
for (const name of names) {
  const p50 = median(ttfb[name]);
  const rate = median(decode[name]);
  console.log(
    `${routes[name].url.padEnd(20)} ${fmt(p50, 'ms')} ${fmt(percentile(ttfb[name], 90), 'ms')}   ${(p50 / median(ttfb.chat)).toFixed(3).padStart(8)}   ${fmt(rate, 'tok/s')}   ${(rate / median(decode.chat)).toFixed(3)}`,
  );
}
const worstTtfb = Math.max(median(ttfb.messages) / median(ttfb.chat), median(ttfb.responses) / median(ttfb.chat));
const worstDecode = Math.min(median(decode.messages) / median(decode.chat), median(decode.responses) / median(decode.chat));
console.log(
  `TTFB <= 1.05 x chat: ${worstTtfb <= 1.05 ? 'met' : 'NOT met'} (worst ${worstTtfb.toFixed(3)}); decode >= 0.97 x chat: ${worstDecode >= 0.97 ? 'met' : 'NOT met'} (worst ${worstDecode.toFixed(3)})`,
);
