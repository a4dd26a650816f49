import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ModelNotFoundError, type AppStateProvider, type CallContext, type CallerIdentity, type RouteId } from '@tabagent/values';
import { createMcpHttpHandler } from './mcp-transports.js';
import { createTabAgentMcpServer } from './tabagent-mcp-server.js';

// The MCP server against a provider that records what it is asked (the routes' own handlers are
// tested with the server; here what matters is which route each tool calls, with what request
// and as whom, and how failures come back).

interface Recorded {
  id: RouteId;
  request: unknown;
  context: CallContext;
}

function recordingProvider(recorded: Recorded[]): AppStateProvider {
  return {
    handle: async (id, request, context) => {
      recorded.push({ id, request, context });
      if (id === 'rag.query') {
        const query = (request as { query: string }).query;
        if (query === 'fail') throw new ModelNotFoundError('No embedding model is registered');
        return {
          query,
          count: 1,
          query_time_ms: 1,
          results: [
            {
              id: 'n1#0',
              content: 'gulls on Tuesdays',
              score: 0.5,
              source: { kind: 'document', id: 'n1', title: 'gulls', url: null, chat_id: null },
              metadata: {},
              indexed: true,
            },
          ],
        };
      }
      if (id === 'documents.ingest') return { status: 'queued', document_id: 'document_1', kind: 'document' };
      throw new Error(`unexpected route ${id}`);
    },
  } as AppStateProvider;
}

async function connected(provider: AppStateProvider, caller: CallerIdentity = {}): Promise<Client> {
  const server = createTabAgentMcpServer({ provider, version: '9.9.9', contextOf: (signal) => ({ requestId: 'r', signal, transport: 'mcp', caller }) });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'unit', version: '1' });
  await client.connect(clientSide);
  return client;
}

describe('the TabAgent MCP server', () => {
  it('maps memory_search and memory_save onto rag.query and documents.ingest, validated, as the caller', async () => {
    const recorded: Recorded[] = [];
    const client = await connected(recordingProvider(recorded));
    const found = await client.callTool({ name: 'memory_search', arguments: { query: 'gulls', k: 3 } });
    expect(found.structuredContent).toEqual({
      query: 'gulls',
      results: [{ id: 'n1#0', kind: 'document', source_id: 'n1', title: 'gulls', url: null, score: 0.5, indexed: true, text: 'gulls on Tuesdays' }],
    });
    await client.callTool({ name: 'memory_save', arguments: { text: 'remember this', tags: ['a'] } });
    expect(recorded.map((entry) => [entry.id, entry.request, entry.context.transport])).toEqual([
      ['rag.query', { query: 'gulls', k: 3, mode: 'hybrid', rerank: false }, 'mcp'],
      ['documents.ingest', { kind: 'document', text: 'remember this', metadata: { source: 'mcp', tags: ['a'] } }, 'mcp'],
    ]);
    await client.close();
  });

  it('falls back to a word search when no embedding model exists, and answers other failures with isError', async () => {
    const recorded: Recorded[] = [];
    const client = await connected(recordingProvider(recorded));
    const failed = await client.callTool({ name: 'memory_search', arguments: { query: 'fail' } });
    expect(recorded.map((entry) => (entry.request as { mode: string }).mode)).toEqual(['hybrid', 'text']);
    expect(failed).toMatchObject({ isError: true, content: [{ type: 'text', text: 'No embedding model is registered (model_not_found)' }] });
    const broken = await client.callTool({ name: 'list_models', arguments: {} });
    expect(broken).toMatchObject({ isError: true, content: [{ text: 'An unexpected error occurred; see the TabAgent server log. (internal_error)' }] });
    await client.close();
  });

  it('applies the pairing scope of the caller: a chat token may search but not save', async () => {
    const recorded: Recorded[] = [];
    const client = await connected(recordingProvider(recorded), { pairing: { id: 'p1', scope: 'chat' } });
    const saved = await client.callTool({ name: 'memory_save', arguments: { text: 'x' } });
    expect(saved).toMatchObject({ isError: true, content: [{ text: expect.stringContaining('documents.ingest needs a token of scope "full"') }] });
    expect(recorded).toEqual([]);
    await client.close();
  });
});

describe('POST /mcp as one JSON-RPC exchange per request', () => {
  let server: Server;
  let url: string;
  const recorded: Recorded[] = [];

  beforeAll(async () => {
    const handler = createMcpHttpHandler({ provider: recordingProvider(recorded), version: '9.9.9' });
    let requests = 0;
    server = createServer((request, response) => {
      // Each HTTP request has its own id, as the HTTP transport gives it.
      const requestId = `req-${++requests}`;
      let text = '';
      request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      request.on('end', () => {
        void handler(request, response, text === '' ? undefined : (JSON.parse(text) as unknown), { origin: 'http://app.test' }, requestId);
      });
    }).listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('serves the SDK client, a call at a time, as the caller the HTTP transport admitted', async () => {
    const client = new Client({ name: 'http-unit', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    expect(client.getServerVersion()).toMatchObject({ name: 'tabagent', version: '9.9.9' });
    await Promise.all([
      client.callTool({ name: 'memory_search', arguments: { query: 'a' } }),
      client.callTool({ name: 'memory_search', arguments: { query: 'b' } }),
    ]);
    expect(recorded.map((entry) => [entry.id, (entry.request as { query: string }).query, entry.context.caller.origin]).sort()).toEqual([
      ['rag.query', 'a', 'http://app.test'],
      ['rag.query', 'b', 'http://app.test'],
    ]);
    expect(new Set(recorded.map((entry) => entry.context.requestId)).size).toBe(2);
    await client.close();
  });

  it('answers a notification with 202, and a body that is not one JSON-RPC message with 400', async () => {
    const post = (body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const notified = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect([notified.status, await notified.text()]).toEqual([202, '']);
    const batch = await post([{ jsonrpc: '2.0', id: 1, method: 'ping' }]);
    expect(batch.status).toBe(400);
    expect(await batch.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'The body is not one JSON-RPC message (batches are not accepted)' },
    });
    const garbage = await post({ hello: 'world' });
    expect(garbage.status).toBe(400);
    const ping = await post({ jsonrpc: '2.0', id: 7, method: 'ping' });
    expect(await ping.json()).toEqual({ jsonrpc: '2.0', id: 7, result: {} });
  });
});
