import type { MemoryIndex, MemorySearchFilters, MemorySearchHit } from '@tabagent/indexing';
import type { Storage, SyncNode } from '@tabagent/storage';
import {
  InvalidRequestError,
  ModelNotFoundError,
  NotFoundError,
  PayloadTooLargeError,
  TabAgentError,
  type MemoryNode,
  type MemoryNodeOf,
  type RouteRequest,
  type RouteResponse,
} from '@tabagent/values';
import type { Weaver } from '@tabagent/weaver';
import type { HandlerGroup } from './handler-group.js';

/** Routes served by `createMemoryHandlers`. */
export type MemoryRouteId =
  | 'sessions.history'
  | 'sessions.save_message'
  | 'conversations.create'
  | 'conversations.list'
  | 'conversations.get'
  | 'conversations.delete'
  | 'conversations.add_messages'
  | 'conversations.search'
  | 'sync.push'
  | 'sync.pull'
  | 'documents.ingest'
  | 'documents.list'
  | 'documents.get'
  | 'memory.status'
  | 'memory.settings.get'
  | 'memory.settings.set'
  | 'rag.query';

/** What the memory routes need; the server composes them from `<dataDir>`. */
export interface MemoryHandlerDeps {
  storage: Storage;
  index: MemoryIndex;
  weaver: Weaver;
  /** Size limits, characters (defaults: 1,000,000 per message, 10,000,000 per document). */
  limits?: { messageChars?: number; documentChars?: number };
}

type ConversationJson = RouteResponse<'conversations.create'>['conversation'];
type StoredMessageJson = RouteResponse<'sessions.history'>['messages'][number];
type MessageInput = RouteRequest<'conversations.add_messages'>['messages'][number];

/** One source that memory retrieval put into a prompt. */
export interface MemorySourceJson {
  id: string;
  kind: string;
  title: string | null;
  url: string | null;
  score: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** RFC 3339 or Unix milliseconds to ms; anything else is an InvalidRequestError naming the field. */
function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms))
    throw new InvalidRequestError(`${field} is not an RFC 3339 time or Unix milliseconds: ${value}`, { issues: [{ path: field, message: 'invalid time' }] });
  return ms;
}

type DocumentKindName = 'webpage' | 'document' | 'bookmark';
const documentKinds: ReadonlySet<string> = new Set<DocumentKindName>(['webpage', 'document', 'bookmark']);

/** A saved page, document or bookmark as the API shows it. */
function toDocument(node: MemoryNode) {
  return {
    id: node.id,
    kind: node.kind as DocumentKindName,
    url: node.url,
    title: node.title,
    text: node.text,
    metadata: node.metadata,
    created_at: iso(node.created_at),
    updated_at: iso(node.updated_at),
  };
}

function toConversation(chat: MemoryNodeOf<'chat'>, messageCount: number): ConversationJson {
  return {
    id: chat.id,
    user_id: chat.props.user_id,
    title: chat.title ?? '',
    topic: chat.props.topic,
    domain: chat.props.domain,
    metadata: chat.metadata,
    tier: chat.tier,
    message_count: messageCount,
    created_at: iso(chat.created_at),
    updated_at: iso(chat.updated_at),
  };
}

function toStoredMessage(node: MemoryNode): StoredMessageJson {
  if (node.kind !== 'message') throw new Error(`Node ${node.id} is not a message`);
  return {
    id: node.id,
    chat_id: node.chat_id ?? '',
    role: node.props.role,
    content: node.text,
    name: node.props.name,
    metadata: node.metadata,
    tier: node.tier,
    created_at: iso(node.created_at),
    updated_at: iso(node.updated_at),
  };
}

class MemoryRoutes {
  readonly messageChars: number;
  readonly documentChars: number;

  constructor(private readonly deps: MemoryHandlerDeps) {
    this.messageChars = deps.limits?.messageChars ?? 1_000_000;
    this.documentChars = deps.limits?.documentChars ?? 10_000_000;
  }

  private get storage(): Storage {
    return this.deps.storage;
  }

  requireChat(id: string): MemoryNodeOf<'chat'> {
    const chat = this.storage.getNodeOf('chat', id);
    if (chat === undefined) throw new NotFoundError(`Conversation ${id} not found`, { details: { conversation_id: id } });
    return chat;
  }

  checkMessage(content: string, field: string): void {
    if (content.length > this.messageChars) {
      throw new PayloadTooLargeError(`${field} has ${content.length} characters; the limit is ${this.messageChars}`, {
        details: { limit: this.messageChars, length: content.length },
      });
    }
  }

  saveMessages(chatId: string, messages: readonly MessageInput[]): MemoryNodeOf<'message'>[] {
    messages.forEach((message, i) => this.checkMessage(message.content, `messages.${i}.content`));
    const saved = this.storage.transaction(() =>
      messages.map((message, i) =>
        this.storage.upsertNode({
          kind: 'message',
          ...(message.id === undefined ? {} : { id: message.id }),
          chat_id: chatId,
          text: message.content,
          props: { role: message.role, name: message.name ?? null },
          metadata: message.metadata ?? {},
          ...(message.created_at === undefined ? {} : { created_at: parseTime(message.created_at, `messages.${i}.created_at`) }),
        }),
      ),
    );
    for (const message of saved) this.deps.weaver.notifySaved(message.id, chatId);
    return saved;
  }

  allMessages(chatId: string): MemoryNode[] {
    const messages: MemoryNode[] = [];
    let cursor: string | undefined;
    do {
      const page = this.storage.listByChat(chatId, { limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      messages.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return messages;
  }

  /** The settings as stored, with the embedding model in use in place of an unset one. */
  async settings(): Promise<RouteResponse<'memory.settings.get'>> {
    return { ...this.storage.getMemorySettings(), embedding_model: await this.deps.weaver.embeddingModelId().catch(() => null) };
  }

  conversation(chat: MemoryNodeOf<'chat'>): ConversationJson {
    return toConversation(chat, this.storage.countChatMessages(chat.id));
  }

  async search(request: RouteRequest<'rag.query'>): Promise<MemorySearchHit[]> {
    return this.deps.index.search({
      query: request.query,
      k: request.k,
      mode: request.mode,
      rerank: request.rerank,
      ...(request.filters === undefined ? {} : { filters: request.filters }),
    });
  }
}

/** Handlers of the memory routes: SQLite storage, the LanceDB index and the weaver. */
export function createMemoryHandlers(deps: MemoryHandlerDeps): HandlerGroup<MemoryRouteId> {
  const routes = new MemoryRoutes(deps);
  const { storage, weaver } = deps;
  return {
    'sessions.history': async (request) => {
      // Sessions are created by their first saved message: an unknown one simply has no history yet.
      const page =
        storage.getNodeOf('chat', request.session_id) === undefined
          ? { items: [], nextCursor: null }
          : storage.listByChat(request.session_id, { limit: request.limit, ...(request.cursor === undefined ? {} : { cursor: request.cursor }) });
      const messages = page.items.map(toStoredMessage);
      return { session_id: request.session_id, messages, count: messages.length, next_cursor: page.nextCursor };
    },
    'sessions.save_message': async (request) => {
      routes.checkMessage(request.message.content, 'message.content');
      const saved = storage.transaction(() => {
        if (storage.getNode(request.session_id) === undefined)
          storage.createNode({ kind: 'chat', id: request.session_id, title: `Session ${request.session_id}`, props: {} });
        else routes.requireChat(request.session_id);
        return routes.saveMessages(request.session_id, [request.message]);
      });
      return { status: 'saved', session_id: request.session_id, message_id: saved[0]?.id ?? '' };
    },
    'conversations.create': async (request) => {
      const chat = storage.createNode({
        kind: 'chat',
        ...(request.id === undefined ? {} : { id: request.id }),
        title: request.title,
        props: { user_id: request.user_id, topic: request.topic ?? null, domain: request.domain ?? null },
        metadata: request.metadata ?? {},
      });
      return { conversation: toConversation(chat, 0) };
    },
    'conversations.list': async (request) => {
      const page = storage.listChats({
        limit: request.limit,
        ...(request.user_id === undefined ? {} : { userId: request.user_id }),
        ...(request.cursor === undefined ? {} : { cursor: request.cursor }),
      });
      const conversations = page.items.map((chat) => routes.conversation(chat));
      return { conversations, count: conversations.length, next_cursor: page.nextCursor };
    },
    'conversations.get': async (request) => {
      const chat = routes.requireChat(request.conversation_id);
      const messages = routes.allMessages(chat.id).map(toStoredMessage);
      return { conversation: toConversation(chat, messages.length), messages, message_count: messages.length };
    },
    'conversations.delete': async (request) => {
      routes.requireChat(request.conversation_id);
      const messages = storage.countChatMessages(request.conversation_id);
      storage.deleteNode(request.conversation_id);
      weaver.notify();
      return { status: 'deleted', conversation_id: request.conversation_id, deleted_messages: messages };
    },
    'conversations.add_messages': async (request) => {
      routes.requireChat(request.conversation_id);
      const messages = routes.saveMessages(request.conversation_id, request.messages).map(toStoredMessage);
      return { messages, count: messages.length };
    },
    'conversations.search': async (request) => {
      const hits = await storage.searchChats(request.query, { limit: request.limit, ...(request.user_id === undefined ? {} : { userId: request.user_id }) });
      const conversations = hits.map((hit) => ({ ...routes.conversation(hit.chat), score: hit.score }));
      return { query: request.query, conversations, total: conversations.length };
    },
    'sync.push': async (request) => {
      const chats: SyncNode[] = request.conversations.map((conversation, i) => ({
        kind: 'chat',
        id: conversation.id,
        title: conversation.title,
        props: { user_id: conversation.user_id ?? 'default', topic: conversation.topic ?? null, domain: conversation.domain ?? null },
        metadata: conversation.metadata ?? {},
        ...(conversation.created_at === undefined ? {} : { created_at: parseTime(conversation.created_at, `conversations.${i}.created_at`) }),
        updated_at: parseTime(conversation.updated_at, `conversations.${i}.updated_at`) as number,
        ...(conversation.deleted === undefined ? {} : { deleted: conversation.deleted }),
      }));
      const messages: SyncNode[] = request.messages.map((message, i) => {
        routes.checkMessage(message.content, `messages.${i}.content`);
        return {
          kind: 'message',
          id: message.id,
          chat_id: message.chat_id,
          text: message.content,
          props: { role: message.role, name: message.name ?? null },
          metadata: message.metadata ?? {},
          ...(message.created_at === undefined ? {} : { created_at: parseTime(message.created_at, `messages.${i}.created_at`) }),
          updated_at: parseTime(message.updated_at, `messages.${i}.updated_at`) as number,
          ...(message.deleted === undefined ? {} : { deleted: message.deleted }),
        };
      });
      const pushedChats = new Set(chats.map((chat) => chat.id));
      for (const message of messages) {
        if (
          message.chat_id !== undefined &&
          message.chat_id !== null &&
          !pushedChats.has(message.chat_id) &&
          storage.getNodeOf('chat', message.chat_id) === undefined
        ) {
          throw new NotFoundError(`Message ${message.id ?? ''} belongs to unknown conversation ${message.chat_id}; push the conversation too`, {
            details: { conversation_id: message.chat_id },
          });
        }
      }
      const result = storage.transaction(() => ({ conversations: storage.mergeNodes(chats), messages: storage.mergeNodes(messages) }));
      weaver.notify();
      return {
        status: 'success',
        conversations: result.conversations,
        messages: result.messages,
        total_synced: result.conversations.synced + result.messages.synced,
        server_time: new Date().toISOString(),
      };
    },
    'sync.pull': async (request) => {
      const since = parseTime(request.since, 'since') ?? -1;
      const userOption = request.user_id === undefined ? {} : { userId: request.user_id };
      const chats = storage.listUpdatedSince(['chat'], since, userOption) as MemoryNodeOf<'chat'>[];
      const messages = storage.listUpdatedSince(['message'], since, userOption).map(toStoredMessage);
      const conversations = chats.map((chat) => routes.conversation(chat));
      return {
        status: 'success',
        conversations,
        messages,
        counts: { conversations: conversations.length, messages: messages.length },
        server_time: new Date().toISOString(),
      };
    },
    'documents.list': async (request) => {
      const page = storage.listDocuments({ limit: request.limit, ...(request.cursor === undefined ? {} : { cursor: request.cursor }) });
      const documents = page.items.map((node) => {
        const { text: _text, ...listed } = toDocument(node);
        return listed;
      });
      return { documents, count: documents.length, next_cursor: page.nextCursor };
    },
    'documents.get': async (request) => {
      const node = storage.getNode(request.document_id);
      if (node === undefined || !documentKinds.has(node.kind)) {
        throw new NotFoundError(`Document ${request.document_id} not found`, { details: { document_id: request.document_id } });
      }
      return { document: toDocument(node) };
    },
    'documents.ingest': async (request) => {
      if (request.text.length > routes.documentChars) {
        throw new PayloadTooLargeError(`text has ${request.text.length} characters; the limit is ${routes.documentChars}`);
      }
      if (request.kind !== 'document' && (request.url === undefined || request.url === ''))
        throw new InvalidRequestError(`A ${request.kind} needs a url`, { issues: [{ path: 'url', message: 'required' }] });
      if (request.kind !== 'bookmark' && request.text.trim() === '')
        throw new InvalidRequestError(`A ${request.kind} needs text`, { issues: [{ path: 'text', message: 'empty' }] });
      const capturedAt = parseTime(request.captured_at, 'captured_at') ?? null;
      const common = { url: request.url ?? null, title: request.title ?? null, text: request.text, metadata: request.metadata ?? {} };
      const node =
        request.kind === 'bookmark'
          ? storage.createNode({ kind: 'bookmark', ...common, props: {} })
          : storage.createNode({ kind: request.kind, ...common, props: { captured_at: capturedAt } });
      weaver.notifySaved(node.id, null);
      return { status: 'queued', document_id: node.id, kind: request.kind };
    },
    'memory.status': async () => weaver.status(),
    'memory.settings.get': async () => routes.settings(),
    'memory.settings.set': async (request) => {
      if (request.embedding_model !== undefined) {
        try {
          await weaver.setEmbeddingModel(request.embedding_model);
        } catch (error) {
          if (TabAgentError.isInstance(error)) throw error;
          throw new ModelNotFoundError(`Embedding model ${request.embedding_model ?? '(default)'} is not available`, { cause: error });
        }
      }
      const { embedding_model: _embedding, ...others } = request;
      storage.updateMemorySettings(others);
      return routes.settings();
    },
    'rag.query': async (request) => {
      const started = performance.now();
      const hits = await routes.search(request);
      const results = hits.map((hit) => ({
        id: hit.id,
        content: hit.text,
        score: hit.score,
        source: { kind: hit.kind, id: hit.node_id, title: hit.title, url: hit.url, chat_id: hit.chat_id },
        metadata: { chunk_index: hit.chunk_index, tier: hit.tier, created_at: iso(hit.created_at) },
        indexed: hit.indexed !== false,
      }));
      return { query: request.query, results, count: results.length, query_time_ms: performance.now() - started };
    },
  };
}

/** Memory retrieval used outside the memory routes (semantic search, chat completions). */
export interface MemoryRetrieval {
  /** `semantic_search` without `documents`: vector search over the store with the configured embedding model. */
  searchStoreForSemanticSearch(request: RouteRequest<'semantic_search'>): Promise<RouteResponse<'semantic_search'>>;
  /** Hybrid retrieval for a chat completion's `memory` option: a context block and the sources used. */
  retrieveMemoryContext(query: string, option: RouteRequest<'chat.completions'>['memory']): Promise<{ context: string; sources: MemorySourceJson[] }>;
}

/** Builds the retrieval functions the embeddings and chat handlers are given. */
export function createMemoryRetrieval(deps: Pick<MemoryHandlerDeps, 'index' | 'weaver'>): MemoryRetrieval {
  return {
    async searchStoreForSemanticSearch(request) {
      const model = await deps.weaver.embeddingModelId();
      if (request.model !== undefined && request.model !== model) {
        throw new InvalidRequestError(`The memory store is indexed with ${model}; omit model or pass ${model} (or send documents to search those)`, {
          issues: [{ path: 'model', message: 'differs from the store' }],
        });
      }
      // Index only: its scores are the metric the caller asked for, which a words-only hit has not.
      const hits = await deps.index.search({
        query: request.query,
        k: request.k,
        mode: 'vector',
        unindexed: false,
        ...(request.filters === undefined ? {} : { filters: request.filters }),
      });
      const scored = hits.map((hit) => ({ hit, score: request.metric === 'euclidean' ? Math.sqrt(Math.max(0, 2 - 2 * hit.score)) : hit.score }));
      const kept =
        request.score_threshold === undefined
          ? scored
          : scored.filter(({ score }) =>
              request.metric === 'euclidean' ? score <= (request.score_threshold as number) : score >= (request.score_threshold as number),
            );
      const tables = await deps.index.stats();
      return {
        query: request.query,
        model,
        metric: request.metric,
        results: kept.map(({ hit, score }) => ({ index: null, id: hit.node_id, document: hit.text, score })),
        total_documents: tables.find((table) => table.model === model)?.rows ?? 0,
      };
    },
    async retrieveMemoryContext(query, option) {
      if (option === undefined || option === false) return { context: '', sources: [] };
      const settings = option === true ? { k: 5 } : option;
      // kinds are free strings in the chat schema; the index validates them (InvalidRequestError).
      const filters: MemorySearchFilters = {
        ...(settings.chat_id === undefined ? {} : { chat_id: settings.chat_id }),
        ...(settings.kinds === undefined ? {} : { kinds: settings.kinds as NonNullable<MemorySearchFilters['kinds']> }),
      };
      const hits = await deps.index.search({ query, k: settings.k, mode: 'hybrid', filters });
      const sources: MemorySourceJson[] = [];
      const lines: string[] = [];
      for (const hit of hits) {
        if (!sources.some((source) => source.id === hit.node_id))
          sources.push({ id: hit.node_id, kind: hit.kind, title: hit.title, url: hit.url, score: hit.score });
        const label = [hit.kind, hit.title, hit.url].filter((part) => part !== null && part !== '').join(' · ');
        lines.push(`[${sources.findIndex((source) => source.id === hit.node_id) + 1}] (${label}) ${hit.text}`);
      }
      const context = lines.length === 0 ? '' : `Relevant items from the user's memory:\n${lines.join('\n')}`;
      return { context, sources };
    },
  };
}
