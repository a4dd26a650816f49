/** FNV-1a 32-bit hash, hex: keeps distinct model ids distinct after slugging. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/**
 * LanceDB table name for an embedding model: `chunks_<slug>_<hash>_d<dims>`, only `[a-z0-9_]`,
 * whatever characters the model id holds (slashes, dots, colons, spaces).
 */
export function tableNameForModel(modelId: string, dimensions: number): string {
  const slug = modelId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 48);
  return `chunks_${slug}_${fnv1a(modelId)}_d${dimensions}`;
}
