import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { InvalidRequestError } from '@tabagent/values';
import os from 'node:os';
import path from 'node:path';

/** Where TabAgent keeps its data when neither --data-dir nor TABAGENT_DATA_DIR says otherwise. */
export function defaultDataDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
  if (platform === 'win32') return path.join(env['APPDATA'] ?? path.join(home, 'AppData', 'Roaming'), 'TabAgent');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'TabAgent');
  return path.join(env['XDG_DATA_HOME'] || path.join(home, '.local', 'share'), 'tabagent');
}

/** The layout of a data directory. */
export interface DataDirLayout {
  root: string;
  /** SQLite database file. */
  database: string;
  /** LanceDB folder (derived, rebuildable). */
  index: string;
  /** GGUF files and ONNX model folders. */
  models: string;
  logs: string;
  logFile: string;
}

/**
 * Refuses a data directory another account controls: one it owns (it could read everything the
 * server writes, or swap files under it), or a symbolic link it owns (it could point it elsewhere
 * between two starts). A risk for `--data-dir /tmp/...`, where anyone may create the name first.
 * A link of the user's own to a folder of theirs (a data directory on another disk) is fine.
 */
function checkDataDirOwner(root: string, uid: number | undefined): void {
  if (uid === undefined) return; // Windows: no uids; the profile folder's ACL is the user's.
  const refuse = (why: string): never => {
    throw new InvalidRequestError(`The data directory ${root} ${why}; choose a folder of your own with --data-dir`);
  };
  const link = lstatSync(root);
  if (link.isSymbolicLink() && link.uid !== uid) refuse(`is a symbolic link owned by another account (uid ${link.uid})`);
  const target = statSync(root);
  if (!target.isDirectory()) refuse('is not a folder');
  if (target.uid !== uid) refuse(`belongs to another account (uid ${target.uid})`);
}

/** Creates the data directory and its folders if missing, and returns their paths. */
export function prepareDataDir(root: string, options: { uid?: number } = {}): DataDirLayout {
  const absolute = path.resolve(root);
  mkdirSync(absolute, { recursive: true, mode: 0o700 });
  checkDataDirOwner(absolute, options.uid ?? process.getuid?.());
  const layout: DataDirLayout = {
    root: absolute,
    database: path.join(absolute, 'tabagent.db'),
    index: path.join(absolute, 'index'),
    models: path.join(absolute, 'models'),
    logs: path.join(absolute, 'logs'),
    logFile: path.join(absolute, 'logs', 'tabagent.log'),
  };
  // Owner only: the folder holds the user's conversations, pages and Hugging Face token.
  for (const dir of [layout.root, layout.models, layout.logs]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  return layout;
}

/**
 * Makes the files the server keeps in the data directory owner-only: the database and its WAL,
 * the log, the registry and settings. Files created later inherit the 0077 umask the CLI sets;
 * this covers files left by an older version or created before it. Only the group's and others'
 * bits are taken away: the owner's stay, so the native-host launcher that `install-native-host`
 * writes here (0755) stays executable for its owner (0700) and Chrome can still start it (a chmod
 * to 0600 made the first `serve` break the extension's transport). Symbolic links are left alone
 * (lstat), never followed to a file elsewhere.
 */
export function restrictDataFiles(layout: DataDirLayout): void {
  for (const dir of [layout.root, layout.logs]) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        const stats = lstatSync(file);
        if (stats.isFile() && (stats.mode & 0o077) !== 0) chmodSync(file, stats.mode & 0o700);
      } catch {
        // Gone between the listing and the chmod: nothing to protect.
      }
    }
  }
}
