import { z } from 'zod';
import { MemoryTier } from './routes/memory-routes.js';

/**
 * The node and edge model of the memory store (storage is the source of truth, indexing is
 * derived from it). One `nodes` table holds every kind; common columns are typed here and the
 * kind-specific fields live in `props`, validated per kind.
 */

/** Every kind of stored node. */
export const NodeKind = z.enum(['chat', 'message', 'summary', 'attachment', 'entity', 'webpage', 'document', 'document_chunk', 'bookmark']);
/** One kind of stored node. */
export type NodeKind = z.infer<typeof NodeKind>;

/** Kinds whose text is chunked, embedded and indexed by the weaver. */
export const indexableNodeKinds = ['message', 'summary', 'webpage', 'document', 'bookmark'] as const satisfies readonly NodeKind[];
/** A kind whose text is indexed. */
export type IndexableNodeKind = (typeof indexableNodeKinds)[number];

/** Directed, typed edges between nodes. */
export const EdgeType = z.enum(['CONTAINS', 'MENTIONS', 'SIMILAR_TO', 'SUMMARIZES', 'ATTACHED_TO', 'REPLY_TO', 'DERIVED_FROM']);
/** One edge type. */
export type EdgeType = z.infer<typeof EdgeType>;

/** One memory tier (active / recent / archive, by age). */
export type MemoryTierName = z.infer<typeof MemoryTier>;

/** JSON metadata sidecar carried by every node and edge. */
export const JsonMetadata = z.record(z.string(), z.unknown());

const ChatRole = z.enum(['system', 'user', 'assistant', 'tool', 'function']);

/** Kind-specific fields of each node kind. */
export const nodePropsSchemas = {
  chat: z.object({ user_id: z.string().default('default'), topic: z.string().nullable().default(null), domain: z.string().nullable().default(null) }),
  message: z.object({ role: ChatRole, name: z.string().nullable().default(null) }),
  summary: z.object({ message_ids: z.array(z.string()).default([]) }),
  attachment: z.object({
    message_id: z.string(),
    mime_type: z.string(),
    filename: z.string(),
    size_bytes: z.number().int().nonnegative(),
  }),
  entity: z.object({ entity_type: z.string(), normalized: z.string() }),
  webpage: z.object({ captured_at: z.number().int().nullable().default(null) }),
  document: z.object({ captured_at: z.number().int().nullable().default(null) }),
  document_chunk: z.object({ document_id: z.string(), chunk_index: z.number().int().nonnegative() }),
  bookmark: z.object({ description: z.string().nullable().default(null), tags: z.array(z.string()).default([]) }),
} as const satisfies Record<NodeKind, z.ZodType>;

/** Props of one node kind. */
export type NodeProps<K extends NodeKind> = z.infer<(typeof nodePropsSchemas)[K]>;

/** Columns common to every node. Times are Unix milliseconds. */
export const NodeBase = z.object({
  id: z.string().min(1).max(200),
  chat_id: z.string().nullable(),
  title: z.string().nullable(),
  text: z.string(),
  url: z.string().nullable(),
  metadata: JsonMetadata,
  tier: MemoryTier,
  created_at: z.number().int(),
  updated_at: z.number().int(),
});

function nodeSchema<K extends NodeKind>(kind: K) {
  return NodeBase.extend({ kind: z.literal(kind), props: nodePropsSchemas[kind] });
}

/** Any stored node, discriminated on `kind`. */
export const MemoryNode = z.discriminatedUnion('kind', [
  nodeSchema('chat'),
  nodeSchema('message'),
  nodeSchema('summary'),
  nodeSchema('attachment'),
  nodeSchema('entity'),
  nodeSchema('webpage'),
  nodeSchema('document'),
  nodeSchema('document_chunk'),
  nodeSchema('bookmark'),
]);
/** Any stored node. */
export type MemoryNode = z.infer<typeof MemoryNode>;
/** A stored node of one kind. */
export type MemoryNodeOf<K extends NodeKind> = Extract<MemoryNode, { kind: K }>;

/** A directed, typed edge. */
export const MemoryEdge = z.object({
  id: z.string(),
  type: EdgeType,
  from_id: z.string(),
  to_id: z.string(),
  weight: z.number().nullable(),
  metadata: JsonMetadata,
  created_at: z.number().int(),
});
/** A stored edge. */
export type MemoryEdge = z.infer<typeof MemoryEdge>;

/** Age limits of the memory tiers, in milliseconds. */
export interface TierPolicy {
  /** Younger than this (since last update) is `active`. */
  activeMs: number;
  /** Younger than this is `recent`; older is `archive`. */
  recentMs: number;
}

/** Default tiers: active for 7 days, recent up to 90 days, then archive. */
export const defaultTierPolicy: TierPolicy = { activeMs: 7 * 86_400_000, recentMs: 90 * 86_400_000 };

/** The tier of an item last updated at `updatedAt` (ms), seen at `now` (ms). */
export function memoryTierFor(updatedAt: number, now: number, policy: TierPolicy = defaultTierPolicy): MemoryTierName {
  const age = now - updatedAt;
  if (age < policy.activeMs) return 'active';
  if (age < policy.recentMs) return 'recent';
  return 'archive';
}
