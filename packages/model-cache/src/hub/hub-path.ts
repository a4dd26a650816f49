import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { UpstreamError } from '@tabagent/values';

// A file name from the Hub (or from a mirror at HF_ENDPOINT, which may be hostile) becomes a local
// path: only a plain relative path of ordinary names may, on every OS (a name that is harmless on
// Linux, `a\..\..\x.cmd`, is a path out of the folder on Windows).

/** Device names Windows reserves in every folder, with or without an extension. */
const windowsReserved = /^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(?:\.|$)/iu;

/**
 * Why `name` cannot be a relative local path on every OS, or null when it can: no empty, `.` or
 * `..` segment, no backslash, colon (drive letters, Windows streams), NUL or other control
 * character, no leading `/`, no segment over 255 bytes, no Windows device name, no segment ending
 * in a dot or a space (Windows drops them, so two names would meet).
 */
export function unsafePathReason(name: string): string | null {
  if (name.length === 0) return 'it is empty';
  if (name.startsWith('/')) return 'it is absolute';
  if (name.includes('\\')) return 'it holds a backslash';
  if (name.includes(':')) return 'it holds a colon';
  if (/[\u0000-\u001f\u007f]/u.test(name)) return 'it holds a control character';
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return `it has a "${segment}" segment`;
    if (Buffer.byteLength(segment, 'utf8') > 255) return 'a part of it is longer than 255 bytes';
    if (windowsReserved.test(segment)) return `"${segment}" is a device name on Windows`;
    if (/[. ]$/u.test(segment)) return `"${segment}" ends in a dot or a space`;
  }
  return null;
}

/** Throws the Hub's listing's refusal when one of its names cannot be a local path. */
export function checkListedPath(repo: string, name: string): void {
  const reason = unsafePathReason(name);
  if (reason === null) return;
  throw new UpstreamError(
    `The Hub's listing of ${repo} names a file that cannot be saved safely, ${JSON.stringify(name)}: ${reason}. Nothing was downloaded.`,
    {
      retryable: false,
      details: { repo, file: name },
    },
  );
}

/** Whether `child` is `parent` or inside it (both absolute and resolved). */
function inside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The absolute path of `target` in `root`, checked before anything is written there: `target` is a
 * safe relative path, it resolves inside `root`, and the nearest part of it that already exists
 * (a folder, or a symbolic link placed there) resolves inside `root`'s real path too.
 */
export async function containedPath(root: string, target: string, repo: string): Promise<string> {
  const outside = (): Error =>
    new UpstreamError(`${repo} would save a file as ${JSON.stringify(target)}, which is not inside the models folder; nothing was downloaded.`, {
      retryable: false,
      details: { repo, file: target },
    });
  if (unsafePathReason(target) !== null) throw outside();
  const realRoot = await realpath(root);
  const destination = path.resolve(realRoot, target);
  let existing = destination;
  for (;;) {
    const found = await lstat(existing).then(
      () => true,
      () => false,
    );
    if (found) break;
    existing = path.dirname(existing);
  }
  const realExisting = await realpath(existing);
  if (!inside(realRoot, destination) || !inside(realRoot, realExisting)) throw outside();
  return destination;
}
