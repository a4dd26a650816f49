import type { EdgeType, MemoryEdge, MemoryNode } from '@tabagent/values';
import type { Storage } from '@tabagent/storage';

/** Options of `expandGraph`. */
export interface GraphExpandOptions {
  /** Hops from the start nodes (default 1, at most 5). */
  depth?: number;
  types?: readonly EdgeType[];
  direction?: 'out' | 'in' | 'both';
  /** Most nodes returned (default 100). */
  limit?: number;
}

/** A node reached by expansion, its hop count and the edge that first reached it. */
export interface GraphHit {
  node: MemoryNode;
  depth: number;
  via: MemoryEdge;
}

/** Breadth-first k-hop expansion over storage's edges; start nodes are not returned. */
export function expandGraph(storage: Storage, startIds: readonly string[], options: GraphExpandOptions = {}): GraphHit[] {
  const depth = Math.min(Math.max(options.depth ?? 1, 1), 5);
  const limit = options.limit ?? 100;
  const seen = new Set(startIds);
  const hits: GraphHit[] = [];
  let frontier = [...startIds];
  for (let hop = 1; hop <= depth && frontier.length > 0; hop += 1) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const neighbour of storage.neighbours(id, {
        ...(options.types === undefined ? {} : { types: options.types }),
        direction: options.direction ?? 'both',
      })) {
        if (seen.has(neighbour.node.id)) continue;
        seen.add(neighbour.node.id);
        hits.push({ node: neighbour.node, depth: hop, via: neighbour.edge });
        if (hits.length >= limit) return hits;
        next.push(neighbour.node.id);
      }
    }
    frontier = next;
  }
  return hits;
}
