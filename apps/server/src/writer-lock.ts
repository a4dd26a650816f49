import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The lock file that says which process indexes a data directory's memory. */
export const writerLockFile = 'memory-writer.lock';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists (another account's); only ESRCH says it is gone.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockHolder(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the data directory's memory-writer lock for this process, or returns null when another
 * live process holds it. Two processes may share a data directory (`tabagent serve` and `tabagent
 * mcp` started by an agent, or the browser's native host beside the HTTP server): SQLite takes
 * their writes safely (WAL, a busy timeout), but only one may run the weaver, the background
 * indexer that writes the LanceDB index. The other saves into SQLite and searches (an item it
 * saves is found by its words at once, and by meaning once the holder has indexed it). A lock
 * left by a process that died is taken over.
 */
export function acquireWriterLock(dataDir: string): { release(): void } | null {
  const file = path.join(dataDir, writerLockFile);
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return {
        release: () => {
          if (lockHolder(file) === process.pid) unlinkSync(file);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = lockHolder(file);
      if (holder !== null && holder !== process.pid && isAlive(holder)) return null;
      // Left by a process that is gone (or by this one, not released): taken over.
      try {
        unlinkSync(file);
      } catch (unlinkError) {
        if ((unlinkError as NodeJS.ErrnoException).code !== 'ENOENT') throw unlinkError;
      }
    }
  }
  return null;
}
