import { EdgeType, MemoryNode, NodeKind, defaultTierPolicy, indexableNodeKinds, memoryTierFor } from './memory-model.js';

describe('memory model', () => {
  it('computes the tier from age', () => {
    const now = 1_000_000_000_000;
    expect(memoryTierFor(now, now)).toBe('active');
    expect(memoryTierFor(now - defaultTierPolicy.activeMs + 1, now)).toBe('active');
    expect(memoryTierFor(now - defaultTierPolicy.activeMs, now)).toBe('recent');
    expect(memoryTierFor(now - defaultTierPolicy.recentMs + 1, now)).toBe('recent');
    expect(memoryTierFor(now - defaultTierPolicy.recentMs, now)).toBe('archive');
    expect(memoryTierFor(now - 10, now, { activeMs: 5, recentMs: 20 })).toBe('recent');
  });

  it('parses nodes per kind with defaults and rejects wrong props', () => {
    const base = { id: 'm1', chat_id: 'c1', title: null, text: 'hi', url: null, metadata: {}, tier: 'active', created_at: 1, updated_at: 2 };
    expect(MemoryNode.parse({ ...base, kind: 'message', props: { role: 'user' } })).toEqual({ ...base, kind: 'message', props: { role: 'user', name: null } });
    expect(MemoryNode.safeParse({ ...base, kind: 'message', props: { role: 'robot' } }).success).toBe(false);
    expect(MemoryNode.safeParse({ ...base, kind: 'planet', props: {} }).success).toBe(false);
    expect(MemoryNode.parse({ ...base, kind: 'chat', props: {} }).props).toEqual({ user_id: 'default', topic: null, domain: null });
  });

  it('lists kinds and edge types', () => {
    expect(NodeKind.options).toEqual(['chat', 'message', 'summary', 'attachment', 'entity', 'webpage', 'document', 'document_chunk', 'bookmark']);
    expect(EdgeType.options).toContain('MENTIONS');
    expect(indexableNodeKinds).toEqual(['message', 'summary', 'webpage', 'document', 'bookmark']);
  });
});
