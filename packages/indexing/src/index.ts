export { createMemoryIndex, LanceMemoryIndex, chunkTableSchema, nodeIndexText, annIndexParameters } from './lance-memory-index.js';
export { chunkText, type ChunkOptions } from './text-chunker.js';
export { reciprocalRankFusion } from './reciprocal-rank-fusion.js';
export { filtersToWhere, type MemorySearchFilters } from './search-filters.js';
export { tableNameForModel } from './table-name.js';
export { expandGraph, type GraphExpandOptions, type GraphHit } from './graph-queries.js';
export type * from './memory-index-types.js';
