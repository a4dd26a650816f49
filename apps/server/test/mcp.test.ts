import { execFile, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';
import { cliPath } from './support/server-process.js';

// TabAgent as an MCP server, driven by the official SDK's client over stdio (`tabagent mcp`, a
// child process as agents start it) and over Streamable HTTP (`POST /mcp`), and by the MCP
// inspector's CLI. The data folder holds a tiny GGUF with a tool-calling template and a tiny ONNX
// embedder.
const run = promisify(execFile);
let root: string;

const serveArgs = (dataDir: string): string[] => ['--data-dir', dataDir, '--threads', '1', '--gpu', 'off', '--keep-alive', '-1'];

async function writeModels(dataDir: string): Promise<void> {
  mkdirSync(path.join(dataDir, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(dataDir, 'models', 'tiny.gguf'), { chatTemplate: chatMlToolsTemplate });
  await writeTinyEmbedderModel(path.join(dataDir, 'models', 'tiny-embedder'));
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'tabagent-mcp-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const textOf = (result: unknown): string => ((result as CallToolResult).content[0] as { text: string }).text;
const memoryTools = ['memory_search', 'memory_save', 'rag_query', 'chat', 'list_models', 'embed', 'rerank', 'system_info'];

describe('tabagent mcp over stdio, with the SDK client', () => {
  let dataDir: string;
  let client: Client;
  let stderr = '';

  beforeAll(async () => {
    dataDir = path.join(root, 'stdio');
    await writeModels(dataDir);
    const transport = new StdioClientTransport({ command: process.execPath, args: [cliPath, 'mcp', ...serveArgs(dataDir)], stderr: 'pipe' });
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    client = new Client({ name: 'tabagent-test', version: '1.0.0' });
    await client.connect(transport);
  }, 60_000);

  afterAll(async () => {
    await client.close();
  });

  it('lists its tools, each with a JSON-Schema input and annotations; no model administration without --mcp-admin', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(memoryTools);
    for (const tool of tools) expect(tool.inputSchema.type).toBe('object');
    expect(tools.find((tool) => tool.name === 'memory_search')?.annotations).toMatchObject({ readOnlyHint: true });
    expect(tools.find((tool) => tool.name === 'memory_save')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(client.getServerVersion()?.name).toBe('tabagent');
  });

  it('saves to memory and finds it by its words at once', async () => {
    const saved = await client.callTool({
      name: 'memory_save',
      arguments: { text: 'The lighthouse keeper counts gulls every Tuesday.', title: 'gulls', tags: ['birds'] },
    });
    const id = (saved.structuredContent as { id: string }).id;
    expect(id).toMatch(/^document_/);
    const found = await client.callTool({ name: 'memory_search', arguments: { query: 'gulls Tuesday', k: 3 } });
    expect(found.isError).toBeUndefined();
    const results = (found.structuredContent as { results: { source_id: string; title: string }[] }).results;
    expect(results[0]).toMatchObject({ source_id: id, title: 'gulls' });
    expect(textOf(found)).toContain('gulls');
    // Readable as a resource, listed under its template.
    const listed = await client.listResources();
    expect(listed.resources.map((resource) => resource.uri)).toContain(`tabagent://documents/${id}`);
    const read = await client.readResource({ uri: `tabagent://documents/${id}` });
    expect(JSON.parse((read.contents[0] as { text: string }).text)).toMatchObject({
      document: { id, title: 'gulls', text: 'The lighthouse keeper counts gulls every Tuesday.' },
    });
  });

  it('chats with a local model, and answers a bad argument or a failing call with isError, never a crash', async () => {
    const answer = await client.callTool({ name: 'chat', arguments: { prompt: 'Say hi', model: 'tiny', max_tokens: 4 } });
    expect(answer.isError).toBeUndefined();
    expect(answer.structuredContent).toMatchObject({ model: 'tiny', usage: { completion_tokens: expect.any(Number) } });
    const bad = await client.callTool({ name: 'memory_search', arguments: { k: 'many' } });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toMatch(/query/);
    const both = await client.callTool({ name: 'chat', arguments: { prompt: 'x', messages: [{ role: 'user', content: 'y' }] } });
    expect([both.isError, textOf(both)]).toEqual([true, 'Give either prompt or messages, not both or neither (invalid_request)']);
    const unknown = await client.callTool({ name: 'chat', arguments: { prompt: 'x', model: 'no-such-model' } });
    expect([unknown.isError, textOf(unknown)]).toEqual([true, expect.stringContaining('(model_not_found)')]);
    // Still serving after all of them.
    expect((await client.callTool({ name: 'list_models', arguments: {} })).structuredContent).toMatchObject({
      models: expect.arrayContaining([expect.objectContaining({ id: 'tiny', task: 'text-generation' })]),
    });
  });

  it('embeds and reranks with the local models', async () => {
    const embedded = await client.callTool({ name: 'embed', arguments: { input: ['a lighthouse', 'a gull'] } });
    const vectors = (embedded.structuredContent as { embeddings: number[][] }).embeddings;
    expect(vectors).toHaveLength(2);
    expect(vectors[0]?.length).toBeGreaterThan(0);
    const ranked = await client.callTool({ name: 'rerank', arguments: { query: 'gull', documents: ['a gull', 'a stone'] } });
    expect((ranked.structuredContent as { results: unknown[] }).results).toHaveLength(2);
  });

  it('offers the rag-answer prompt and the two resource templates', async () => {
    const { prompts } = await client.listPrompts();
    expect(prompts.map((prompt) => prompt.name)).toEqual(['rag-answer']);
    const prompt = await client.getPrompt({ name: 'rag-answer', arguments: { question: 'When are gulls counted?' } });
    expect((prompt.messages[0]?.content as { text: string }).text).toContain('When are gulls counted?');
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((template) => template.uriTemplate).sort()).toEqual(['tabagent://conversations/{id}', 'tabagent://documents/{id}']);
  });

  it('keeps its logs on stderr', () => {
    expect(stderr).toContain('"msg":"server ready"');
  });
});

describe('tabagent mcp stdout', () => {
  it('carries only JSON-RPC, one message a line, while a model loads and a memory item is saved, with debug logging', async () => {
    const dataDir = path.join(root, 'purity');
    await writeModels(dataDir);
    const child = spawn(process.execPath, [cliPath, 'mcp', ...serveArgs(dataDir), '--log-level', 'debug'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_DEBUG: 'http,net' },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.resume();
    const send = (message: Record<string, unknown>): void => {
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
    };
    const responses = async (count: number): Promise<void> => {
      for (let waited = 0; stdout.split('\n').filter((line) => line.includes('"id"')).length < count; waited += 50) {
        if (waited > 60_000) throw new Error(`no answer: ${stdout}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    send({ id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    await responses(1);
    send({ method: 'notifications/initialized' });
    send({ id: 2, method: 'tools/call', params: { name: 'chat', arguments: { prompt: 'hello', model: 'tiny', max_tokens: 3 } } });
    send({ id: 3, method: 'tools/call', params: { name: 'memory_save', arguments: { text: 'a saved note about tides' } } });
    await responses(3);
    child.stdin.end();
    const exit = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    expect(exit).toBe(0);
    const lines = stdout.split('\n').filter((line) => line !== '');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
    const answers = lines.map((line) => JSON.parse(line) as { id?: number; result?: { isError?: boolean } });
    expect(answers.filter((message) => message.id === 2 || message.id === 3).map((message) => message.result?.isError)).toEqual([undefined, undefined]);
  }, 90_000);
});

describe('POST /mcp on the HTTP server', () => {
  let server: RunningServer;
  let keyed: RunningServer;
  const key = 'mcp-test-key-0123456789';

  beforeAll(async () => {
    const dataDir = path.join(root, 'http');
    await writeModels(dataDir);
    server = await startServer(parseServeArguments(['--port', '0', ...serveArgs(dataDir)], {}), { logger: pino({ level: 'silent' }) });
    const keyedDir = path.join(root, 'http-keyed');
    await writeModels(keyedDir);
    keyed = await startServer(parseServeArguments(['--port', '0', '--api-key', key, '--mcp-admin', ...serveArgs(keyedDir)], {}), {
      logger: pino({ level: 'silent' }),
    });
  }, 60_000);

  afterAll(async () => {
    await server.close();
    await keyed.close();
  });

  const connect = async (base: string, headers: Record<string, string> = {}): Promise<Client> => {
    const client = new Client({ name: 'tabagent-http-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers } }));
    return client;
  };

  it('serves the same tools statelessly, and a saved item is found', async () => {
    const client = await connect(server.httpUrl as string);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(memoryTools);
    const saved = await client.callTool({ name: 'memory_save', arguments: { text: 'The ferry leaves at dawn on Fridays.' } });
    const id = (saved.structuredContent as { id: string }).id;
    const found = await client.callTool({ name: 'memory_search', arguments: { query: 'ferry dawn' } });
    expect((found.structuredContent as { results: { source_id: string }[] }).results[0]?.source_id).toBe(id);
    await client.close();
  });

  it('answers from memory with citations (rag_query), and serves a saved conversation as a resource', async () => {
    const base = server.httpUrl as string;
    const post = async (url: string, body: unknown): Promise<Record<string, unknown>> =>
      (await (await fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as Record<
        string,
        unknown
      >;
    const { conversation } = (await post('/v1/conversations', { title: 'Lighthouse log' })) as { conversation: { id: string } };
    await post(`/v1/conversations/${conversation.id}/messages`, { messages: [{ role: 'user', content: 'The lamp was cleaned on Monday.' }] });
    const client = await connect(base);
    const saved = await client.callTool({ name: 'memory_save', arguments: { text: 'The lamp oil is stored in the north shed.', title: 'oil' } });
    const id = (saved.structuredContent as { id: string }).id;
    const answered = await client.callTool({ name: 'rag_query', arguments: { question: 'Where is the lamp oil?', k: 3, model: 'tiny' } });
    expect(answered.isError).toBeUndefined();
    const structured = answered.structuredContent as { answer: string; model: string; citations: { n: number; id: string; title: string | null }[] };
    expect(structured.model).toBe('tiny');
    expect(structured.citations).toContainEqual({ n: expect.any(Number), id, title: 'oil', url: null });
    expect(textOf(answered)).toContain(`[${structured.citations.find((citation) => citation.id === id)?.n ?? 0}] oil`);
    const listed = await client.listResources();
    expect(listed.resources).toContainEqual({
      uri: `tabagent://conversations/${conversation.id}`,
      name: 'Lighthouse log',
      title: 'Saved conversation',
      description: 'A conversation the user saved, with its messages',
      mimeType: 'application/json',
    });
    const read = await client.readResource({ uri: `tabagent://conversations/${conversation.id}` });
    const body = JSON.parse((read.contents[0] as { text: string }).text) as { messages: { content: string }[] };
    expect(body.messages.map((message) => message.content)).toEqual(['The lamp was cleaned on Monday.']);
    const info = await client.callTool({ name: 'system_info', arguments: {} });
    expect(info.isError).toBeUndefined();
    await client.close();
  });

  it('refuses a foreign Origin or Host (403), answers GET with 405, and keeps non-browser clients in', async () => {
    const initialize = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    });
    const post = (headers: Record<string, string>) =>
      fetch(`${server.httpUrl as string}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: initialize,
      });
    expect((await post({ origin: 'http://evil.example' })).status).toBe(403);
    // fetch does not let a caller set Host: a DNS-rebinding page's request, made with node:http.
    const rebound = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${server.httpUrl as string}/mcp`);
      const sent = httpRequest(
        { host: url.hostname, port: url.port, path: '/mcp', method: 'POST', headers: { host: 'attacker.example', 'content-type': 'application/json' } },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      sent.on('error', reject);
      sent.end(initialize);
    });
    expect(rebound).toBe(403);
    expect((await post({})).status).toBe(200);
    expect((await fetch(`${server.httpUrl as string}/mcp`)).status).toBe(405);
  });

  it('requires the API key when the server has one, and offers model administration with --mcp-admin', async () => {
    await expect(connect(keyed.httpUrl as string)).rejects.toThrow(/401/);
    const client = await connect(keyed.httpUrl as string, { authorization: `Bearer ${key}` });
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual([...memoryTools, 'load_model', 'unload_model', 'pull_model', 'delete_model']);
    expect((await client.listTools()).tools.find((tool) => tool.name === 'delete_model')?.annotations).toMatchObject({ destructiveHint: true });
    const loaded = await client.callTool({ name: 'load_model', arguments: { model: 'tiny', context_size: 512 } });
    expect(loaded.isError).toBeUndefined();
    await client.close();
  });

  it('queues concurrent chat calls on the generation slots: all five finish, none deadlocks', async () => {
    const client = await connect(server.httpUrl as string);
    const calls = await Promise.all(
      Array.from({ length: 5 }, (_unused, index) => client.callTool({ name: 'chat', arguments: { prompt: `count ${index}`, model: 'tiny', max_tokens: 16 } })),
    );
    expect(calls.map((result) => result.isError)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    await client.close();
  });
});

describe('tabagent mcp beside a running tabagent serve on the same data directory', () => {
  it('leaves indexing to the server, saves into the shared store, and the server indexes what it saved', async () => {
    const dataDir = path.join(root, 'shared');
    await writeModels(dataDir);
    const server = await startServer(parseServeArguments(['--port', '0', ...serveArgs(dataDir)], {}), { logger: pino({ level: 'silent' }) });
    const transport = new StdioClientTransport({ command: process.execPath, args: [cliPath, 'mcp', ...serveArgs(dataDir)], stderr: 'pipe' });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const client = new Client({ name: 'shared', version: '1.0.0' });
    try {
      await client.connect(transport);
      const saved = await client.callTool({ name: 'memory_save', arguments: { text: 'Harbour pilots meet at the red buoy at noon.', title: 'pilots' } });
      const id = (saved.structuredContent as { id: string }).id;
      expect(stderr).toContain('another TabAgent process indexes this data directory');
      // The server's weaver indexes it: found by meaning (a vector search) over HTTP, indexed.
      let hit: { indexed: boolean; source: { id: string } } | undefined;
      for (let waited = 0; hit?.indexed !== true; waited += 200) {
        if (waited > 30_000) throw new Error('the server never indexed what tabagent mcp saved');
        await new Promise((resolve) => setTimeout(resolve, 200));
        const response = await fetch(`${server.httpUrl as string}/v1/rag/query`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: 'harbour pilots buoy', k: 3, mode: 'vector' }),
        });
        const body = (await response.json()) as { results: { indexed: boolean; source: { id: string } }[] };
        hit = body.results.find((result) => result.source.id === id);
      }
      expect(hit.indexed).toBe(true);
    } finally {
      await client.close();
      await server.close();
    }
  }, 90_000);
});

describe('the MCP inspector CLI', () => {
  it('lists and calls tools of `tabagent mcp`', async () => {
    const dataDir = path.join(root, 'inspector');
    await writeModels(dataDir);
    const inspector = fileURLToPath(new URL('../../../node_modules/@modelcontextprotocol/inspector-cli/build/cli.js', import.meta.url));
    // The inspector finds its own package.json relative to the working directory's parent: run it from here.
    const cwd = fileURLToPath(new URL('.', import.meta.url));
    const target = ['--cli', process.execPath, cliPath, 'mcp', ...serveArgs(dataDir)];
    const listed = await run(process.execPath, [inspector, ...target, '--method', 'tools/list'], { cwd, timeout: 60_000 });
    expect((JSON.parse(listed.stdout) as { tools: { name: string }[] }).tools.map((tool) => tool.name)).toEqual(memoryTools);
    const called = await run(process.execPath, [inspector, ...target, '--method', 'tools/call', '--tool-name', 'memory_search', '--tool-arg', 'query=test'], {
      cwd,
      timeout: 60_000,
    });
    expect(JSON.parse(called.stdout)).toMatchObject({ structuredContent: { query: 'test', results: [] } });
  }, 120_000);
});
