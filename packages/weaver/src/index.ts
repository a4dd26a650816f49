export { createWeaver, MemoryWeaver, entityIdFor } from './memory-weaver.js';
export { TypedEventEmitter } from './typed-event-emitter.js';
export type * from './weaver-types.js';
export { openMemoryStore, type OpenMemoryStoreOptions, type MemoryStore } from './open-memory-store.js';
