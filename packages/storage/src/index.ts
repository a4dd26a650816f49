export { createStorage, SqliteStorage, toFtsQuery } from './sqlite-storage.js';
export { migrate, migrations, latestSchemaVersion, currentSchemaVersion, type Migration } from './migrations.js';
export { encodeCursor, decodeCursor } from './cursor.js';
export type * from './storage-types.js';
