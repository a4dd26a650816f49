/** Options of `chunkText`. Sizes are in characters (UTF-16 code units), not tokens. */
export interface ChunkOptions {
  /** Longest chunk, characters (default 1000: about 250 English tokens, inside small embedders' 256-512 token windows). */
  maxChars?: number;
  /** Characters of trailing whole sentences repeated at the start of the next chunk (default 200). */
  overlapChars?: number;
}

const sentenceBoundary = /(?<=[.!?\u3002\uff01\uff1f])\s+|\n{2,}/u;

function splitLong(sentence: string, maxChars: number): string[] {
  const pieces: string[] = [];
  let rest = sentence;
  while (rest.length > maxChars) {
    const space = rest.lastIndexOf(' ', maxChars);
    const cut = space > maxChars / 2 ? space : maxChars;
    pieces.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut).trim();
  }
  if (rest.length > 0) pieces.push(rest);
  return pieces;
}

/**
 * Splits text into chunks of whole sentences up to `maxChars`, each chunk starting with the last
 * sentences (up to `overlapChars`) of the previous one so a fact cut at a boundary is still whole
 * in one chunk. A sentence longer than `maxChars` is cut at a word boundary. Deterministic.
 */
export function chunkText(text: string, options: ChunkOptions = {}): string[] {
  const maxChars = options.maxChars ?? 1000;
  const overlapChars = Math.min(options.overlapChars ?? 200, Math.floor(maxChars / 2));
  const sentences = text
    .split(sentenceBoundary)
    .map((sentence) => sentence.replace(/\s+/g, ' ').trim())
    .filter((sentence) => sentence.length > 0)
    .flatMap((sentence) => splitLong(sentence, maxChars));
  const chunks: string[] = [];
  let current: string[] = [];
  let length = 0;
  let fresh = 0;
  for (const sentence of sentences) {
    if (fresh > 0 && length + 1 + sentence.length > maxChars) {
      chunks.push(current.join(' '));
      const overlap: string[] = [];
      let overlapLength = 0;
      for (let i = current.length - 1; i >= 0; i -= 1) {
        const previous = current[i] ?? '';
        if (overlapLength + previous.length > overlapChars || overlapLength + previous.length + 1 + sentence.length > maxChars) break;
        overlap.unshift(previous);
        overlapLength += previous.length + 1;
      }
      current = overlap;
      length = overlapLength;
      fresh = 0;
    }
    current.push(sentence);
    length += sentence.length + 1;
    fresh += 1;
  }
  if (fresh > 0) chunks.push(current.join(' '));
  return chunks;
}
