import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { AppStateProvider, CallContext, CallerIdentity } from '@tabagent/values';
import { createTabAgentMcpServer } from './tabagent-mcp-server.js';

/** What both MCP transports need. */
export interface McpServeOptions {
  provider: AppStateProvider;
  version: string;
  /** Model loading, unloading, pulling and deleting as tools (`--mcp-admin`). */
  admin?: boolean;
}

/** A running stdio MCP server. */
export interface McpStdioSession {
  /** Resolves when the client closes the session (stdin ends). */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/**
 * Serves MCP over stdio (`tabagent mcp`): JSON-RPC messages one per line on stdout, nothing else
 * (the caller must keep every log off stdout). The caller is the local program that started the
 * process, as the extension is for native messaging.
 */
export async function serveMcpOverStdio(options: McpServeOptions & { input?: Readable; output?: Writable }): Promise<McpStdioSession> {
  let calls = 0;
  const server = createTabAgentMcpServer({
    ...options,
    contextOf: (signal): CallContext => ({ requestId: `mcp-${++calls}`, signal, transport: 'mcp', caller: {} }),
  });
  const input = options.input ?? process.stdin;
  const transport = new StdioServerTransport(input, options.output);
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
  });
  await server.connect(transport);
  // An MCP client ends a stdio session by closing the server's stdin; the SDK's transport does
  // not watch for that, so the session would outlive its client.
  input.once('end', () => {
    void server.close();
  });
  return { closed, close: () => server.close() };
}

/** Idle MCP servers kept for the next HTTP request: building one (eight tools, their schemas) takes about a millisecond. */
const maxIdleServers = 8;

const jsonRpcError = (code: number, message: string) => ({ jsonrpc: '2.0' as const, id: null, error: { code, message } });

/**
 * One HTTP exchange of stateless Streamable HTTP as an MCP transport: the request's message goes
 * to the server, and the server's answer to it is the response. The SDK's own HTTP transport
 * converts each Node request to a web Request and back, which costs more than a memory search's
 * own overhead; this one hands the body the HTTP transport already read straight to the server.
 * It answers as the SDK's does with `enableJsonResponse`: JSON for a request, 202 for a
 * notification; nothing is pushed (no sessions, no server-to-client requests).
 */
class HttpExchangeTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private answer: ((message: JSONRPCMessage) => void) | null = null;

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if ('id' in message && ('result' in message || 'error' in message)) this.answer?.(message);
  }

  async close(): Promise<void> {
    this.onclose?.();
  }

  /** Delivers one message; resolves with the answer to a request, or null for a notification or a response. */
  exchange(message: JSONRPCMessage): Promise<JSONRPCMessage | null> {
    if (!('method' in message) || !('id' in message)) {
      this.onmessage?.(message);
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      this.answer = resolve;
      this.onmessage?.(message);
    });
  }
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  if (response.headersSent || response.destroyed) return;
  const text = value === undefined ? '' : JSON.stringify(value);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  response.end(text);
}

/**
 * The handler of `POST /mcp` (Streamable HTTP, stateless: no session to keep, every request
 * answered as JSON). The HTTP transport calls it once its request guard has admitted the request
 * (Host, Origin, key, pairing) and read the body; the tool calls then run as that caller, under
 * its pairing scope, and are aborted when the client goes away. A server serves one request at a
 * time and is kept for a later one.
 */
export function createMcpHttpHandler(
  options: McpServeOptions,
): (request: IncomingMessage, response: ServerResponse, body: unknown, caller: CallerIdentity, requestId: string) => Promise<void> {
  interface Pooled {
    server: ReturnType<typeof createTabAgentMcpServer>;
    /** The request it serves now: whose calls they are, and the signal of its connection. */
    current: { caller: CallerIdentity; requestId: string; calls: number; signal: AbortSignal };
  }
  const idle: Pooled[] = [];
  const create = (): Pooled => {
    const pooled: Pooled = {
      current: { caller: {}, requestId: '', calls: 0, signal: new AbortController().signal },
      server: createTabAgentMcpServer({
        ...options,
        contextOf: (signal): CallContext => ({
          requestId: `${pooled.current.requestId}-${++pooled.current.calls}`,
          signal: AbortSignal.any([signal, pooled.current.signal]),
          transport: 'mcp',
          caller: pooled.current.caller,
        }),
      }),
    };
    return pooled;
  };
  return async (_request, response, body, caller, requestId) => {
    const parsed = JSONRPCMessageSchema.safeParse(body);
    if (!parsed.success) {
      sendJson(response, 400, jsonRpcError(Array.isArray(body) ? -32600 : -32700, 'The body is not one JSON-RPC message (batches are not accepted)'));
      return;
    }
    const gone = new AbortController();
    response.once('close', () => gone.abort());
    const pooled = idle.pop() ?? create();
    pooled.current = { caller, requestId, calls: 0, signal: gone.signal };
    const transport = new HttpExchangeTransport();
    await pooled.server.connect(transport);
    try {
      const answer = await transport.exchange(parsed.data);
      if (answer === null) sendJson(response, 202, undefined);
      else sendJson(response, 200, answer);
    } finally {
      await pooled.server.close();
      if (idle.length < maxIdleServers) idle.push(pooled);
    }
  };
}
