import { open } from 'node:fs/promises';
import { safeParseJson } from '@tabagent/values';

/** Reads at most the last `maxBytes` of a file and returns its last `lines` lines and the line count of that window. */
export async function readLogTail(file: string, lines: number, maxBytes = 4 * 1048576): Promise<{ lines: string[]; totalLines: number } | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    let text = buffer.toString('utf8');
    // Drop a partial first line when the window starts mid-file.
    if (length < size) text = text.slice(text.indexOf('\n') + 1);
    const all = text.split('\n').filter((line) => line.length > 0);
    return { lines: all.slice(-lines), totalLines: all.length };
  } finally {
    await handle.close();
  }
}

/**
 * A log line as the API serves it: no stack traces, and no absolute paths (the data directory
 * becomes `<data-dir>`, the home folder `~`, any other absolute path its last part). The file
 * itself keeps everything for the user who reads it on disk.
 */
export function redactLogLine(line: string, known: { dataDir: string; home: string }): string {
  const redactText = (text: string): string =>
    text
      .split(known.dataDir)
      .join('<data-dir>')
      .split(known.home)
      .join('~')
      .replace(/(?<![\w<>~.])(?:\/[\w.@-]+){2,}/gu, (found) => `…/${found.slice(found.lastIndexOf('/') + 1)}`)
      .replace(/(?<![\w])[A-Za-z]:\\(?:[\w.@ -]+\\)*[\w.@-]+/gu, (found) => `…\\${found.slice(found.lastIndexOf('\\') + 1)}`);
  const parsed = safeParseJson(line);
  if (!parsed.success || typeof parsed.value !== 'object' || parsed.value === null) return redactText(line);
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return redactText(value);
    if (Array.isArray(value)) return value.map(walk);
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).flatMap(([key, item]) => (key === 'stack' ? [] : [[key, walk(item)]])));
    }
    return value;
  };
  return JSON.stringify(walk(parsed.value));
}
