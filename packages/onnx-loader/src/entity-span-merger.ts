/** A named entity found in a text. */
export interface ExtractedEntity {
  /** The entity's text, `text.slice(start, end)`. */
  text: string;
  /** Entity type without the B-/I- prefix (`PER`, `LOC`, ...). */
  label: string;
  /** Character offset of the first character (UTF-16 code units, as `String.prototype.slice`). */
  start: number;
  /** Character offset after the last character. */
  end: number;
  /** Mean probability of the entity's words' labels. */
  score: number;
}

/** One token's predicted label and its character span. */
export interface TokenPrediction {
  start: number;
  end: number;
  label: string;
  score: number;
  /** A WordPiece continuation (`##ing`): part of the previous token's word. */
  continuesWord: boolean;
}

interface Word {
  start: number;
  end: number;
  label: string;
  score: number;
}

const wordCharacter = /[\p{L}\p{N}]/u;

function groupWords(text: string, predictions: readonly TokenPrediction[]): Word[] {
  const words: Word[] = [];
  for (const prediction of predictions) {
    const previous = words[words.length - 1];
    const joinsPrevious =
      previous !== undefined &&
      (prediction.continuesWord ||
        (prediction.start === previous.end && wordCharacter.test(text[prediction.start] ?? '') && wordCharacter.test(text[previous.end - 1] ?? '')));
    // A word takes its first token's label and score (Hugging Face's "first" aggregation).
    if (joinsPrevious) previous.end = prediction.end;
    else words.push({ start: prediction.start, end: prediction.end, label: prediction.label, score: prediction.score });
  }
  return words;
}

function parseTag(label: string): { boundary: 'B' | 'I' | null; type: string } {
  const match = /^([BI])[-_](.+)$/u.exec(label);
  return match ? { boundary: match[1] as 'B' | 'I', type: match[2] as string } : { boundary: null, type: label };
}

/**
 * Merges token predictions into entity spans: tokens group into words (WordPiece continuations
 * and touching letters), a word takes its first token's label, then BIO/IOB2 tags merge words:
 * `B-X` starts an entity, `I-X` continues an `X` entity (or starts one, as IOB1 allows), a label
 * without prefix continues an entity of the same label, and `outsideLabel` ends it.
 */
export function mergeEntitySpans(text: string, predictions: readonly TokenPrediction[], outsideLabel = 'O'): ExtractedEntity[] {
  const entities: ExtractedEntity[] = [];
  let current: { type: string; start: number; end: number; scores: number[] } | null = null;
  const close = () => {
    if (current !== null) {
      const score = current.scores.reduce((a, b) => a + b, 0) / current.scores.length;
      entities.push({ text: text.slice(current.start, current.end), label: current.type, start: current.start, end: current.end, score });
    }
    current = null;
  };
  for (const word of groupWords(text, predictions)) {
    if (word.label === outsideLabel) {
      close();
      continue;
    }
    const { boundary, type } = parseTag(word.label);
    if (boundary !== 'B' && current !== null && (current as { type: string }).type === type) {
      const open: { type: string; start: number; end: number; scores: number[] } = current;
      open.end = word.end;
      open.scores.push(word.score);
      continue;
    }
    close();
    current = { type, start: word.start, end: word.end, scores: [word.score] };
  }
  close();
  return entities;
}
