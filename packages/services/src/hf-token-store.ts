import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Keeps the Hugging Face token in the data directory, readable by the user only. */
export interface HfTokenStore {
  get(): string | undefined;
  set(token: string): void;
  clear(): boolean;
}

/**
 * File-backed token store (`<dataDir>/hf-token`, mode 0600). The original used the OS keyring;
 * no keyring library is in our dependency set, and a user-only file is what huggingface-cli does.
 */
export function createHfTokenStore(dataDir: string): HfTokenStore {
  const file = path.join(dataDir, 'hf-token');
  return {
    get: () => (existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined),
    set: (token) => {
      writeFileSync(file, `${token}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
    },
    clear: () => {
      const existed = existsSync(file);
      rmSync(file, { force: true });
      return existed;
    },
  };
}
