import { z } from 'zod';
import { bulkBodyBytes, defineRoute, largeBodyBytes } from '../route-definition.js';
import { acceptFieldAlias, Cursor, EmptyRequest, ModelId, QueryInt } from './common-schemas.js';

/** Memory tier of a stored item, by age (see the storage package). */
export const MemoryTier = z.enum(['active', 'recent', 'archive']);

export const StoredMessage = z
  .object({
    id: z.string(),
    chat_id: z.string(),
    role: z.enum(['system', 'user', 'assistant', 'tool', 'function']),
    content: z.string(),
    name: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    tier: MemoryTier,
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'StoredMessage' });

export const Conversation = z
  .object({
    id: z.string(),
    user_id: z.string(),
    title: z.string(),
    topic: z.string().nullable(),
    domain: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    tier: MemoryTier,
    message_count: z.number().int().nonnegative(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Conversation' });

const MessageText = z.string().min(1).max(1_000_000);
const MessageInput = z.object({
  id: z.string().min(1).max(200).optional().describe('Client id (IndexedDB key); generated when omitted. Saving the same id again updates it.'),
  role: z.enum(['system', 'user', 'assistant', 'tool', 'function']),
  content: MessageText,
  name: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  created_at: z.string().optional(),
});

export const HistoryRequest = z
  .object({ session_id: z.string().min(1), limit: QueryInt(1, 1000).default(100), cursor: Cursor.optional() })
  .meta({ id: 'HistoryRequest' });
export const HistoryResponse = z
  .object({ session_id: z.string(), messages: z.array(StoredMessage), count: z.number().int(), next_cursor: z.string().nullable() })
  .meta({ id: 'HistoryResponse' });

export const SaveMessageRequest = z.object({ session_id: z.string().min(1), message: MessageInput }).meta({ id: 'SaveMessageRequest' });
export const SaveMessageResponse = z.object({ status: z.literal('saved'), session_id: z.string(), message_id: z.string() }).meta({ id: 'SaveMessageResponse' });

export const CreateConversationRequest = z
  .preprocess(
    acceptFieldAlias('conversation_id', 'id'),
    z.object({
      id: z.string().min(1).max(200).optional().describe('`conversation_id` is accepted too (Python).'),
      title: z.string().min(1).max(1000),
      user_id: z.string().min(1).max(200).default('default'),
      topic: z.string().max(1000).optional(),
      domain: z.string().max(1000).optional(),
      metadata: z.record(z.string(), z.unknown()).optional(),
    }),
  )
  .meta({ id: 'CreateConversationRequest' });
export const ConversationResponse = z.object({ conversation: Conversation }).meta({ id: 'ConversationResponse' });

export const ListConversationsRequest = z
  .object({ user_id: z.string().optional(), limit: QueryInt(1, 1000).default(100), cursor: Cursor.optional() })
  .meta({ id: 'ListConversationsRequest' });
export const ListConversationsResponse = z
  .object({ conversations: z.array(Conversation), count: z.number().int(), next_cursor: z.string().nullable() })
  .meta({ id: 'ListConversationsResponse' });

export const ConversationIdRequest = z.object({ conversation_id: z.string().min(1) }).meta({ id: 'ConversationIdRequest' });
export const ConversationWithMessagesResponse = z
  .object({ conversation: Conversation, messages: z.array(StoredMessage), message_count: z.number().int() })
  .meta({ id: 'ConversationWithMessagesResponse' });

export const AddMessagesRequest = z
  .object({ conversation_id: z.string().min(1), messages: z.array(MessageInput).min(1).max(1000) })
  .meta({ id: 'AddMessagesRequest' });
export const AddMessagesResponse = z.object({ messages: z.array(StoredMessage), count: z.number().int() }).meta({ id: 'AddMessagesResponse' });

export const DeleteConversationResponse = z
  .object({ status: z.literal('deleted'), conversation_id: z.string(), deleted_messages: z.number().int() })
  .meta({ id: 'DeleteConversationResponse' });

export const SearchConversationsRequest = z
  .object({ query: z.string().min(1).max(10_000), user_id: z.string().optional(), limit: z.number().int().min(1).max(100).default(20) })
  .meta({ id: 'SearchConversationsRequest' });
export const SearchConversationsResponse = z
  .object({ query: z.string(), conversations: z.array(Conversation.extend({ score: z.number() })), total: z.number().int() })
  .meta({ id: 'SearchConversationsResponse' });

const SyncConversation = z.object({
  id: z.string().min(1),
  title: z.string(),
  user_id: z.string().optional(),
  topic: z.string().nullable().optional(),
  domain: z.string().nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  created_at: z.string().optional(),
  updated_at: z.string(),
  deleted: z.boolean().optional(),
});
const SyncMessage = MessageInput.extend({ id: z.string().min(1), chat_id: z.string().min(1), updated_at: z.string(), deleted: z.boolean().optional() });

export const SyncPushRequest = z
  .object({ conversations: z.array(SyncConversation).max(10_000).default([]), messages: z.array(SyncMessage).max(100_000).default([]) })
  .meta({ id: 'SyncPushRequest' });
const SyncCounts = z.object({ synced: z.number().int(), skipped: z.number().int() });
export const SyncPushResponse = z
  .object({ status: z.literal('success'), conversations: SyncCounts, messages: SyncCounts, total_synced: z.number().int(), server_time: z.string() })
  .meta({ id: 'SyncPushResponse' });

export const SyncPullRequest = z
  .object({ user_id: z.string().optional(), since: z.string().optional().describe('RFC 3339 or Unix milliseconds; only items updated after.') })
  .meta({ id: 'SyncPullRequest' });
export const SyncPullResponse = z
  .object({
    status: z.literal('success'),
    conversations: z.array(Conversation),
    messages: z.array(StoredMessage),
    counts: z.object({ conversations: z.number().int(), messages: z.number().int() }),
    server_time: z.string(),
  })
  .meta({ id: 'SyncPullResponse' });

export const DocumentKind = z.enum(['webpage', 'document', 'bookmark']);
export const IngestDocumentRequest = z
  .object({
    kind: DocumentKind.default('webpage'),
    url: z.string().max(8192).optional(),
    title: z.string().max(10_000).optional(),
    text: z.string().max(10_000_000).describe('Text content; may be empty for a bookmark.'),
    captured_at: z.string().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'IngestDocumentRequest' });
export const IngestDocumentResponse = z
  .object({ status: z.literal('queued'), document_id: z.string(), kind: DocumentKind })
  .meta({ id: 'IngestDocumentResponse' });

export const MemoryStatusResponse = z
  .object({
    queue_depth: z.number().int().nonnegative(),
    in_progress: z.number().int().nonnegative(),
    failed: z.number().int().nonnegative(),
    last_error: z.string().nullable(),
    embedding_model: z.string().nullable(),
    models: z.array(z.object({ model: z.string(), indexed_chunks: z.number().int().nonnegative() })),
    counts: z.record(z.string(), z.number().int().nonnegative()).describe('Stored nodes by kind.'),
    unindexed: z
      .number()
      .int()
      .nonnegative()
      .describe('Saved messages and pages not in the vector index yet (text search still finds them, marked indexed: false).'),
    items_per_second: z.number().nonnegative().describe('Saved items made searchable per second over the last minute.'),
    oldest_pending_age_ms: z
      .number()
      .int()
      .nonnegative()
      .nullable()
      .describe('Age of the oldest saved item not yet in the vector index (freshness); null when none waits.'),
  })
  .meta({ id: 'MemoryStatusResponse' });

export const MemorySettings = z
  .object({
    embedding_model: ModelId.nullable().describe(
      'Embedding model of the memory store; null: the --embedding-model flag, else the first registered embedding model.',
    ),
    entity_model: ModelId.nullable().describe('Token-classification model for entities; null: the first registered one.'),
    rerank_model: ModelId.nullable().describe('Cross-encoder for rag.query rerank; null: the first registered one, else cosine similarity.'),
  })
  .meta({ id: 'MemorySettings' });
/** The memory pipeline's model settings. */
export type MemorySettings = z.infer<typeof MemorySettings>;

export const sessionHistoryRoute = defineRoute({
  id: 'sessions.history',
  method: 'GET',
  path: '/v1/sessions/{session_id}/history',
  summary: 'Messages of a session, oldest first, with cursor pagination',
  tags: ['memory'],
  request: HistoryRequest,
  response: HistoryResponse,
});

export const sessionSaveMessageRoute = defineRoute({
  id: 'sessions.save_message',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/sessions/{session_id}/messages',
  summary: 'Save one message to a session (creates the session if needed)',
  tags: ['memory'],
  request: SaveMessageRequest,
  response: SaveMessageResponse,
});

export const conversationsCreateRoute = defineRoute({
  id: 'conversations.create',
  method: 'POST',
  path: '/v1/conversations',
  summary: 'Create a conversation',
  tags: ['memory'],
  request: CreateConversationRequest,
  response: ConversationResponse,
});

export const conversationsListRoute = defineRoute({
  id: 'conversations.list',
  method: 'GET',
  path: '/v1/conversations',
  summary: 'List conversations, newest first',
  tags: ['memory'],
  request: ListConversationsRequest,
  response: ListConversationsResponse,
});

export const conversationsGetRoute = defineRoute({
  id: 'conversations.get',
  method: 'GET',
  path: '/v1/conversations/{conversation_id}',
  summary: 'A conversation with its messages',
  tags: ['memory'],
  request: ConversationIdRequest,
  response: ConversationWithMessagesResponse,
});

export const conversationsDeleteRoute = defineRoute({
  id: 'conversations.delete',
  method: 'DELETE',
  path: '/v1/conversations/{conversation_id}',
  summary: 'Delete a conversation, its messages, edges and index entries',
  tags: ['memory'],
  request: ConversationIdRequest,
  response: DeleteConversationResponse,
});

export const conversationsAddMessagesRoute = defineRoute({
  id: 'conversations.add_messages',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/conversations/{conversation_id}/messages',
  summary: 'Add messages to a conversation',
  description: 'Body `{messages:[...]}` (Python took a bare array, which cannot carry the path parameter over native messaging).',
  tags: ['memory'],
  request: AddMessagesRequest,
  response: AddMessagesResponse,
});

export const conversationsSearchRoute = defineRoute({
  id: 'conversations.search',
  method: 'POST',
  path: '/v1/conversations/search',
  summary: 'Find conversations by words in their title, topic and messages',
  tags: ['memory'],
  request: SearchConversationsRequest,
  response: SearchConversationsResponse,
});

export const syncPushRoute = defineRoute({
  id: 'sync.push',
  maxBodyBytes: bulkBodyBytes,
  method: 'POST',
  path: '/v1/sync/push',
  summary: 'Push conversations and messages from the extension (last write wins on updated_at)',
  tags: ['memory'],
  request: SyncPushRequest,
  response: SyncPushResponse,
});

export const syncPullRoute = defineRoute({
  id: 'sync.pull',
  method: 'POST',
  path: '/v1/sync/pull',
  summary: 'Pull conversations and messages changed since a time',
  description: 'Parameters in the JSON body (Python read them from the query string of a POST; both work over HTTP).',
  tags: ['memory'],
  request: SyncPullRequest,
  response: SyncPullResponse,
});

export const documentsIngestRoute = defineRoute({
  id: 'documents.ingest',
  maxBodyBytes: bulkBodyBytes,
  method: 'POST',
  path: '/v1/documents',
  summary: 'Save a web page, document or bookmark to memory (indexed in the background)',
  tags: ['memory'],
  request: IngestDocumentRequest,
  response: IngestDocumentResponse,
});

/** A saved page, document or bookmark, whole. */
export const StoredDocument = z
  .object({
    id: z.string(),
    kind: DocumentKind,
    url: z.string().nullable(),
    title: z.string().nullable(),
    text: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'StoredDocument' });

export const documentsListRoute = defineRoute({
  id: 'documents.list',
  method: 'GET',
  path: '/v1/documents',
  summary: 'Saved pages, documents and bookmarks, most recently updated first (without their text)',
  tags: ['memory'],
  request: z.object({ limit: z.coerce.number().int().min(1).max(500).default(50), cursor: z.string().optional() }).meta({ id: 'ListDocumentsRequest' }),
  response: z
    .object({ documents: z.array(StoredDocument.omit({ text: true })), count: z.number().int(), next_cursor: z.string().nullable() })
    .meta({ id: 'ListDocumentsResponse' }),
});

export const documentsGetRoute = defineRoute({
  id: 'documents.get',
  method: 'GET',
  path: '/v1/documents/{document_id}',
  summary: 'A saved page, document or bookmark with its text',
  tags: ['memory'],
  request: z.object({ document_id: z.string().min(1) }).meta({ id: 'DocumentIdRequest' }),
  response: z.object({ document: StoredDocument }).meta({ id: 'DocumentResponse' }),
});

export const memoryStatusRoute = defineRoute({
  id: 'memory.status',
  method: 'GET',
  path: '/v1/memory/status',
  summary: 'Background pipeline status: queue depth, failures, indexed chunks per model',
  tags: ['memory'],
  request: EmptyRequest,
  response: MemoryStatusResponse,
});

export const memorySettingsGetRoute = defineRoute({
  id: 'memory.settings.get',
  method: 'GET',
  path: '/v1/memory/settings',
  summary: 'Models the memory pipeline uses',
  tags: ['memory'],
  request: EmptyRequest,
  response: MemorySettings,
});

export const memorySettingsSetRoute = defineRoute({
  id: 'memory.settings.set',
  method: 'POST',
  path: '/v1/memory/settings',
  summary: 'Change the models the memory pipeline uses (changing the embedding model re-embeds in the background)',
  tags: ['memory'],
  request: MemorySettings.partial(),
  response: MemorySettings,
});
