import { open } from 'node:fs/promises';

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
