// memory_search over MCP against the same search over HTTP, same server, same run: p50 and p90
// latency of `tools/call memory_search` (the official SDK client over Streamable HTTP, POST /mcp)
// and of `POST /v1/rag/query` (hybrid, the same k), over a memory of --items saved items, indexed
// by the tiny ONNX embedder. Also `tabagent mcp` over stdio (a second process on the same data
// directory), for reference.
// Usage (from the repository root, after `npx nx run server:build`):
//   node bench/mcp/memory-search.mjs [--items 10000] [--queries 200]
// Floor (issue "MCP server mode"): MCP p50 <= 1.1 x HTTP p50.
// Every failure (an error status, an isError result, a refused connection, a search that finds
// nothing it should) is counted and shown.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { benchModelsDir, median, option, percentile, repositoryRoot, startTabagent } from '../support/bench-support.mjs';

const items = Number(option('items', '10000'));
const queries = Number(option('queries', '200'));
const k = 10;

const embedderDir = join(benchModelsDir, 'mcp-bench-embedder');
mkdirSync(benchModelsDir, { recursive: true });
await writeTinyEmbedderModel(embedderDir);
const server = await startTabagent({ models: [embedderDir], keepDataDir: true, args: ['--threads', '1'] });
const failures = { status: 0, refused: 0, toolError: 0, empty: 0 };

// Seeded words: each item mentions a topic word, so every query has matches.
let seed = 7;
const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const vocabulary = Array.from({ length: 3000 }, (_unused, index) => `w${index.toString(36)}`);
const topics = Array.from({ length: 200 }, (_unused, index) => `topic${index}`);
const sentence = (topic) => [topic, ...Array.from({ length: 24 }, () => vocabulary[Math.floor(random() * vocabulary.length)])].join(' ');

/** Saves the items through the sync route (batches of 500 messages in conversations), then waits until all are indexed. */
async function seedMemory() {
  const started = performance.now();
  for (let offset = 0; offset < items; offset += 500) {
    const count = Math.min(500, items - offset);
    const conversation = {
      id: `bench-${offset}`,
      title: `bench ${offset}`,
      messages: Array.from({ length: count }, (_unused, index) => ({ role: 'user', content: sentence(topics[(offset + index) % topics.length]) })),
    };
    const response = await fetch(`${server.baseUrl}/v1/conversations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: conversation.title }),
    });
    const { conversation: created } = await response.json();
    const added = await fetch(`${server.baseUrl}/v1/conversations/${created.id}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: conversation.messages }),
    });
    if (!added.ok) throw new Error(`seeding: ${added.status} ${await added.text()}`);
  }
  for (;;) {
    const status = await (await fetch(`${server.baseUrl}/v1/memory/status`)).json();
    if (status.unindexed === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const seconds = (performance.now() - started) / 1000;
  // The weaver's last index optimisation settles before anything is timed.
  await new Promise((resolve) => setTimeout(resolve, 5000));
  return seconds;
}

async function overHttp(query) {
  const started = performance.now();
  let response;
  try {
    response = await fetch(`${server.baseUrl}/v1/rag/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, k, mode: 'hybrid' }),
    });
  } catch {
    failures.refused += 1;
    return null;
  }
  const body = await response.json();
  const elapsed = performance.now() - started;
  if (!response.ok) {
    failures.status += 1;
    return null;
  }
  if (body.results.length === 0) failures.empty += 1;
  return elapsed;
}

async function overMcp(client, query) {
  const started = performance.now();
  let result;
  try {
    result = await client.callTool({ name: 'memory_search', arguments: { query, k } });
  } catch {
    failures.refused += 1;
    return null;
  }
  const elapsed = performance.now() - started;
  if (result.isError) {
    failures.toolError += 1;
    return null;
  }
  if (result.structuredContent.results.length === 0) failures.empty += 1;
  return elapsed;
}

const seedSeconds = await seedMemory();
const http = new Client({ name: 'bench', version: '1' });
await http.connect(new StreamableHTTPClientTransport(new URL(`${server.baseUrl}/mcp`)));
const stdio = new Client({ name: 'bench-stdio', version: '1' });
await stdio.connect(
  new StdioClientTransport({
    command: process.execPath,
    args: [
      join(repositoryRoot, 'apps', 'server', 'dist', 'cli.js'),
      'mcp',
      '--data-dir',
      server.dataDir,
      '--threads',
      '1',
      '--gpu',
      'off',
      '--log-level',
      'warn',
    ],
    stderr: 'ignore',
  }),
);

const times = { http: [], mcp: [], stdio: [] };
const record = (name, value) => {
  if (value !== null) times[name].push(value);
};
for (let index = 0; index < 20; index++) {
  record('http', await overHttp(topics[index]));
  record('mcp', await overMcp(http, topics[index]));
  record('stdio', await overMcp(stdio, topics[index]));
}
for (const name of Object.keys(times)) times[name] = []; // warm-up discarded
for (let index = 0; index < queries; index++) {
  const query = `${topics[index % topics.length]} ${vocabulary[index % vocabulary.length]}`;
  // Alternating order, so neither side always follows the other.
  if (index % 2 === 0) {
    record('http', await overHttp(query));
    record('mcp', await overMcp(http, query));
  } else {
    record('mcp', await overMcp(http, query));
    record('http', await overHttp(query));
  }
  record('stdio', await overMcp(stdio, query));
}
await http.close();
await stdio.close();
await server.stop();
rmSync(server.dataDir, { recursive: true, force: true });

const fmt = (value) => `${value.toFixed(2).padStart(7)} ms`;
console.log(`${items} items indexed in ${seedSeconds.toFixed(1)} s; ${queries} queries each, k = ${k}, hybrid`);
console.log(
  `failures: ${Object.entries(failures)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ')}`,
);
console.log('path                                p50        p90     ratio (p50)');
const rows = [
  ['HTTP POST /v1/rag/query', times.http],
  ['MCP memory_search (POST /mcp)', times.mcp],
  ['MCP memory_search (stdio process)', times.stdio],
];
for (const [name, values] of rows)
  console.log(`${name.padEnd(34)} ${fmt(median(values))} ${fmt(percentile(values, 90))}   ${(median(values) / median(times.http)).toFixed(3)}`);
const ratio = median(times.mcp) / median(times.http);
console.log(`MCP p50 <= 1.1 x HTTP p50: ${ratio <= 1.1 ? 'met' : 'NOT met'} (${ratio.toFixed(3)})`);
