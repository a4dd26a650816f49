import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, openSync, readFileSync, writeSync, constants } from 'node:fs';
import path from 'node:path';
import { InvalidRequestError } from '@tabagent/values';

/** The file `--auth owner` keeps its key in, inside the data directory. */
export const ownerKeyFileName = 'owner.key';

/** O_NOFOLLOW where the platform has it (not on Windows, where it is undefined). */
const noFollow = (constants as { O_NOFOLLOW?: number }).O_NOFOLLOW ?? 0;

/** `tao_` and 32 random bytes in base64url: told apart from pairing tokens (`tap_`) at a glance. */
const ownerKeyPattern = /^tao_[A-Za-z0-9_-]{43}$/u;

/** Where `--auth owner` keeps its key for a data directory. */
export function ownerKeyPath(dataDir: string): string {
  return path.join(path.resolve(dataDir), ownerKeyFileName);
}

/**
 * The owner key of a data directory, created on first use: a random key in a file only this
 * account can read (created exclusively with mode 0600, never through a symbolic link). A file
 * that is a link, is not a regular file, belongs to another account, can be read by other accounts,
 * or does not hold a key is refused with the reason: a key another account planted or could read
 * keeps nobody out.
 */
export function ensureOwnerKey(dataDir: string): string {
  const file = ownerKeyPath(dataDir);
  try {
    const handle = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | noFollow, 0o600);
    try {
      const key = `tao_${randomBytes(32).toString('base64url')}`;
      writeSync(handle, `${key}\n`);
      return key;
    } finally {
      closeSync(handle);
    }
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
  }
  return readOwnerKey(dataDir);
}

/** Reads an existing owner key (see `ensureOwnerKey` for what is refused). */
export function readOwnerKey(dataDir: string): string {
  const file = ownerKeyPath(dataDir);
  const refuse = (why: string): never => {
    throw new InvalidRequestError(`${file} ${why}; delete it and start again with --auth owner to make a new key`);
  };
  let stats;
  try {
    stats = lstatSync(file);
  } catch {
    throw new InvalidRequestError(`${file} does not exist: start the server once with --auth owner (or run tabagent key) to create it`);
  }
  if (stats.isSymbolicLink()) refuse('is a symbolic link');
  if (!stats.isFile()) refuse('is not a regular file');
  if (typeof process.getuid === 'function' && stats.uid !== process.getuid()) refuse('belongs to another account');
  const handle = openSync(file, constants.O_RDONLY | noFollow);
  try {
    // A key other accounts could read may already be known to them (Windows has no such mode bits).
    const mode = fstatSync(handle).mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) refuse(`can be read by other accounts (mode ${mode.toString(8).padStart(4, '0')})`);
    const key = readFileSync(handle, 'utf8').trim();
    if (!ownerKeyPattern.test(key)) refuse('does not hold an owner key (tao_ and 43 characters)');
    return key;
  } finally {
    closeSync(handle);
  }
}
