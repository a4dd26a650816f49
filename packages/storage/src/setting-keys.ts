/** Settings key of the memory pipeline's model settings, one JSON document (`MemorySettings`). */
export const memorySettingsKey = 'memory.settings';
