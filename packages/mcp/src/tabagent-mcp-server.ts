import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  assertPairingScope,
  InvalidRequestError,
  isChunkStream,
  parseRouteRequest,
  toTabAgentError,
  type AppStateProvider,
  type CallContext,
  type RouteId,
  type RouteRequestInput,
  type RouteResponse,
} from '@tabagent/values';

/** What the MCP server needs: the provider every transport calls, and the context of each call. */
export interface TabAgentMcpOptions {
  provider: AppStateProvider;
  version: string;
  /**
   * The context of one MCP request (its transport, caller and abort signal): over HTTP the
   * caller the request guard admitted, over stdio the local program that launched the server.
   */
  contextOf: (signal: AbortSignal) => CallContext;
  /** Loading, unloading, pulling and deleting models as tools (`--mcp-admin`); off by default. */
  admin?: boolean;
}

/** A tool's answer: its text for the model, its structured data for programs. */
function answer(text: string, structured?: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text }], ...(structured === undefined ? {} : { structuredContent: structured }) };
}

/** A failed call as a tool result the agent can read (`isError`), never a protocol error or a crash. */
function failure(error: unknown): CallToolResult {
  const problem = toTabAgentError(error);
  const message = problem.code === 'internal_error' ? 'An unexpected error occurred; see the TabAgent server log.' : problem.message;
  return { isError: true, content: [{ type: 'text', text: `${message} (${problem.code})` }] };
}

/** Chat answers through MCP are bounded: a tool call holds a generation slot while it runs. */
const maxChatTokens = 4096;

/**
 * TabAgent as an MCP server: the user's memory, RAG and local models as tools, the saved
 * conversations and documents as resources, and a `rag-answer` prompt. Every tool calls catalogue
 * routes on the same provider as HTTP, native messaging and WebRTC, in process, with the same
 * validation, pairing scopes and queue bounds. One server per MCP session (stdio) or per request
 * (stateless Streamable HTTP).
 */
export function createTabAgentMcpServer(options: TabAgentMcpOptions): McpServer {
  const server = new McpServer(
    { name: 'tabagent', title: 'TabAgent', version: options.version },
    {
      instructions:
        "TabAgent is the user's local AI server: memory_search finds what the user saved (pages, documents, conversations); rag_query answers from it with citations; chat hands a task to a local model.",
    },
  );

  /** Calls one catalogue route as every transport does: scope check, validation, the provider. */
  const call = async <K extends RouteId>(id: K, raw: RouteRequestInput<K>, signal: AbortSignal): Promise<RouteResponse<K>> => {
    const context = options.contextOf(signal);
    assertPairingScope(context.caller.pairing, id);
    const result = await options.provider.handle(id, parseRouteRequest(id, raw), context);
    if (isChunkStream(result)) throw new Error(`${id} streamed where one answer was asked for`);
    return result;
  };

  /**
   * Hybrid search over the memory; with no embedding model on this machine, full-text search
   * alone (what the user saved is still found by its words).
   */
  const searchMemory = async (query: string, k: number, signal: AbortSignal): Promise<RouteResponse<'rag.query'>> => {
    try {
      return await call('rag.query', { query, k, mode: 'hybrid' }, signal);
    } catch (error) {
      if (toTabAgentError(error).code !== 'model_not_found') throw error;
      return call('rag.query', { query, k, mode: 'text' }, signal);
    }
  };

  /** Registers a tool whose handler's failures become `isError` results. */
  const tool = <Shape extends z.ZodRawShape>(
    name: string,
    config: {
      title: string;
      description: string;
      inputSchema: Shape;
      annotations: { readOnlyHint: boolean; destructiveHint?: boolean; idempotentHint?: boolean };
    },
    run: (args: z.infer<z.ZodObject<Shape>>, signal: AbortSignal) => Promise<CallToolResult>,
  ): void => {
    server.registerTool(name, { ...config, annotations: { openWorldHint: false, ...config.annotations } }, (async (
      args: z.infer<z.ZodObject<Shape>>,
      extra: { signal: AbortSignal },
    ) => {
      try {
        return await run(args, extra.signal);
      } catch (error) {
        return failure(error);
      }
    }) as never);
  };

  tool(
    'memory_search',
    {
      title: 'Search the memory',
      description:
        'Hybrid (vector and full-text) search over what the user saved: web pages, documents, bookmarks and conversation messages. Items saved moments ago are found by their words before they are indexed.',
      inputSchema: { query: z.string().min(1).describe('What to look for'), k: z.number().int().min(1).max(50).default(10).describe('How many results') },
      annotations: { readOnlyHint: true },
    },
    async ({ query, k }, signal) => {
      const found = await searchMemory(query, k, signal);
      const results = found.results.map((hit) => ({
        id: hit.id,
        kind: hit.source.kind,
        source_id: hit.source.id,
        title: hit.source.title,
        url: hit.source.url,
        score: hit.score,
        indexed: hit.indexed,
        text: hit.content,
      }));
      const text =
        results.length === 0
          ? `Nothing in memory matches "${query}".`
          : results
              .map((hit, index) => `[${index + 1}] ${hit.title ?? hit.kind}${hit.url === null ? '' : ` <${hit.url}>`} (${hit.source_id})\n${hit.text}`)
              .join('\n\n');
      return answer(text, { query, results });
    },
  );

  tool(
    'memory_save',
    {
      title: 'Save to memory',
      description:
        "Saves a text to the user's memory and returns its id at once; it is findable by its words at once and by meaning once indexed in the background.",
      inputSchema: {
        text: z.string().min(1).describe('The text to remember'),
        title: z.string().max(10_000).optional(),
        tags: z.array(z.string().max(100)).max(50).optional(),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
    },
    async ({ text, title, tags }, signal) => {
      const saved = await call(
        'documents.ingest',
        { kind: 'document', text, ...(title === undefined ? {} : { title }), metadata: { source: 'mcp', ...(tags === undefined ? {} : { tags }) } },
        signal,
      );
      return answer(`Saved as ${saved.document_id}.`, { id: saved.document_id, status: saved.status });
    },
  );

  tool(
    'rag_query',
    {
      title: 'Answer from memory',
      description: "Answers a question from the user's memory with a local model, citing the saved items it used as [n].",
      inputSchema: {
        question: z.string().min(1),
        k: z.number().int().min(1).max(20).default(5).describe('How many saved items to give the model'),
        model: z.string().optional().describe('A loaded or registered text model; default: the selected one'),
      },
      annotations: { readOnlyHint: true },
    },
    async ({ question, k, model }, signal) => {
      const found = await searchMemory(question, k, signal);
      const sources = found.results.map((hit, index) => ({ n: index + 1, id: hit.source.id, title: hit.source.title, url: hit.source.url, text: hit.content }));
      const context = sources.map((source) => `[${source.n}] ${source.title ?? ''}\n${source.text}`).join('\n\n');
      const completion = await call(
        'chat.completions',
        {
          ...(model === undefined ? {} : { model }),
          max_tokens: 1024,
          messages: [
            { role: 'system', content: 'Answer the question from the numbered sources only, citing them as [n]. Say so when they do not hold the answer.' },
            { role: 'user', content: `Sources:\n\n${context === '' ? '(none)' : context}\n\nQuestion: ${question}` },
          ],
        },
        signal,
      );
      const text = completion.choices[0]?.message.content ?? '';
      return answer(
        `${text}\n\n${sources.map((source) => `[${source.n}] ${source.title ?? source.id}${source.url === null ? '' : ` <${source.url}>`}`).join('\n')}`,
        {
          answer: text,
          model: completion.model,
          citations: sources.map(({ text: _text, ...source }) => source),
        },
      );
    },
  );

  tool(
    'chat',
    {
      title: 'Ask a local model',
      description: 'Hands a prompt (or a conversation) to a local model and returns its answer. It waits for a free generation slot.',
      inputSchema: {
        prompt: z.string().min(1).optional().describe('A single user message'),
        messages: z
          .array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() }))
          .min(1)
          .optional()
          .describe('A conversation, instead of prompt'),
        model: z.string().optional(),
        max_tokens: z.number().int().min(1).max(maxChatTokens).default(512),
      },
      annotations: { readOnlyHint: true },
    },
    async ({ prompt, messages, model, max_tokens: maxTokens }, signal) => {
      if ((prompt === undefined) === (messages === undefined)) return failure(new InvalidRequestError('Give either prompt or messages, not both or neither'));
      const completion = await call(
        'chat.completions',
        { ...(model === undefined ? {} : { model }), max_tokens: maxTokens, messages: messages ?? [{ role: 'user', content: prompt ?? '' }] },
        signal,
      );
      const choice = completion.choices[0];
      return answer(choice?.message.content ?? '', { model: completion.model, finish_reason: choice?.finish_reason ?? null, usage: completion.usage });
    },
  );

  tool(
    'list_models',
    {
      title: 'List models',
      description: 'The models on this machine: text generation, embedding and reranking.',
      inputSchema: {},
      annotations: { readOnlyHint: true },
    },
    async (_args, signal) => {
      const listed = await call('models.list', {}, signal);
      const models = listed.data.map((model) => ({ id: model.id, task: model.task, format: model.format, size_bytes: model.size_bytes }));
      return answer(models.map((model) => `${model.id} (${model.task}, ${model.format})`).join('\n') || 'No models.', { models });
    },
  );

  tool(
    'embed',
    {
      title: 'Embed texts',
      description: 'Embedding vectors of texts, from a local embedding model.',
      inputSchema: { input: z.union([z.string(), z.array(z.string()).min(1).max(256)]), model: z.string().optional() },
      annotations: { readOnlyHint: true },
    },
    async ({ input, model }, signal) => {
      const result = await call('embeddings', { input, ...(model === undefined ? {} : { model }) }, signal);
      const embeddings = result.data.map((item) => item.embedding);
      return answer(JSON.stringify(embeddings), { model: result.model, embeddings });
    },
  );

  tool(
    'rerank',
    {
      title: 'Rerank documents',
      description: 'Orders documents by relevance to a query (a cross-encoder, or embedding similarity when none is configured).',
      inputSchema: { query: z.string().min(1), documents: z.array(z.string()).min(1).max(1000), model: z.string().optional() },
      annotations: { readOnlyHint: true },
    },
    async ({ query, documents, model }, signal) => {
      const result = await call('rerank', { query, documents, ...(model === undefined ? {} : { model }) }, signal);
      const ranked = result.results.map((item) => ({ index: item.index, score: item.relevance_score, document: documents[item.index] ?? '' }));
      return answer(ranked.map((item) => `${item.score.toFixed(4)}  [${item.index}] ${item.document}`).join('\n'), { model: result.model, results: ranked });
    },
  );

  tool(
    'system_info',
    { title: 'System information', description: "This machine's hardware and the server's state.", inputSchema: {}, annotations: { readOnlyHint: true } },
    async (_args, signal) => {
      const info = await call('system.info', {}, signal);
      return answer(JSON.stringify(info, null, 2), info);
    },
  );

  if (options.admin === true) {
    tool(
      'load_model',
      {
        title: 'Load a model',
        description: 'Loads a model into memory (optionally with a context size).',
        inputSchema: { model: z.string().min(1), context_size: z.number().int().min(256).optional() },
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true },
      },
      async ({ model, context_size: contextSize }, signal) => {
        const loaded = await call('models.load', { model, ...(contextSize === undefined ? {} : { context_size: contextSize }) }, signal);
        return answer(`${model}: ${loaded.status}`, loaded);
      },
    );
    // The model routes that take just a model name, as tools: one row each.
    const byName: readonly [name: string, title: string, description: string, id: 'models.unload' | 'models.pull' | 'models.delete', destructive: boolean][] = [
      ['unload_model', 'Unload a model', 'Releases a loaded model.', 'models.unload', false],
      [
        'pull_model',
        'Download a model',
        'Downloads a model from Hugging Face (hf.co/owner/repo[:quantization]) and waits until it is verified.',
        'models.pull',
        false,
      ],
      ['delete_model', 'Delete a model', "Deletes a model's files from this machine.", 'models.delete', true],
    ];
    for (const [name, title, description, id, destructive] of byName) {
      tool(
        name,
        {
          title,
          description,
          inputSchema: { model: z.string().min(1) },
          annotations: { readOnlyHint: false, destructiveHint: destructive, idempotentHint: true },
        },
        async ({ model }, signal) => {
          const done = await call(id, { model }, signal);
          return answer(JSON.stringify(done), done);
        },
      );
    }
  }

  const abortNever = new AbortController().signal;
  const readJson = (uri: URL, value: unknown): ReadResourceResult => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }],
  });

  server.registerResource(
    'conversation',
    new ResourceTemplate('tabagent://conversations/{id}', {
      list: async () => {
        const listed = await call('conversations.list', { limit: 100 }, abortNever);
        return {
          resources: listed.conversations.map((conversation) => ({
            uri: `tabagent://conversations/${encodeURIComponent(conversation.id)}`,
            name: conversation.title === '' ? conversation.id : conversation.title,
            mimeType: 'application/json',
          })),
        };
      },
    }),
    { title: 'Saved conversation', description: 'A conversation the user saved, with its messages', mimeType: 'application/json' },
    async (uri, variables) => readJson(uri, await call('conversations.get', { conversation_id: decodeURIComponent(String(variables['id'])) }, abortNever)),
  );

  server.registerResource(
    'document',
    new ResourceTemplate('tabagent://documents/{id}', {
      list: async () => {
        const listed = await call('documents.list', { limit: 100 }, abortNever);
        return {
          resources: listed.documents.map((document) => ({
            uri: `tabagent://documents/${encodeURIComponent(document.id)}`,
            name: document.title ?? document.url ?? document.id,
            mimeType: 'application/json',
          })),
        };
      },
    }),
    { title: 'Saved document', description: 'A web page, document or bookmark the user saved, with its text', mimeType: 'application/json' },
    async (uri, variables) => readJson(uri, await call('documents.get', { document_id: decodeURIComponent(String(variables['id'])) }, abortNever)),
  );

  server.registerPrompt(
    'rag-answer',
    {
      title: 'Answer from my memory',
      description: "Answer a question from the user's saved pages and conversations, with citations.",
      argsSchema: { question: z.string() },
    },
    ({ question }) => ({
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: `Use TabAgent's rag_query tool (or memory_search, then read the items) to answer from my saved pages and conversations, citing what you used.\n\nQuestion: ${question}`,
          },
        },
      ],
    }),
  );

  return server;
}
