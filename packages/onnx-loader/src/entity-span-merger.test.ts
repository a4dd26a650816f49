import { mergeEntitySpans, type TokenPrediction } from './entity-span-merger.js';

function token(start: number, end: number, label: string, score = 0.9, continuesWord = false): TokenPrediction {
  return { start, end, label, score, continuesWord };
}

describe('mergeEntitySpans', () => {
  const text = 'Ann Lee met Bo in Rome';

  it('merges B- and I- tags of one type and starts a new entity at each B-', () => {
    const entities = mergeEntitySpans(text, [
      token(0, 3, 'B-PER', 0.8),
      token(4, 7, 'I-PER', 0.6),
      token(8, 11, 'O'),
      token(12, 14, 'B-PER'),
      token(15, 17, 'O'),
      token(18, 22, 'B-LOC', 0.7),
    ]);
    expect(entities).toEqual([
      { text: 'Ann Lee', label: 'PER', start: 0, end: 7, score: 0.7 },
      { text: 'Bo', label: 'PER', start: 12, end: 14, score: 0.9 },
      { text: 'Rome', label: 'LOC', start: 18, end: 22, score: 0.7 },
    ]);
  });

  it('starts an entity at an I- tag of another type (IOB1) and splits adjacent B- tags', () => {
    const entities = mergeEntitySpans(text, [token(0, 3, 'I-PER'), token(4, 7, 'I-LOC'), token(12, 14, 'B-PER'), token(18, 22, 'B-PER')]);
    expect(entities.map((e) => [e.text, e.label])).toEqual([
      ['Ann', 'PER'],
      ['Lee', 'LOC'],
      ['Bo', 'PER'],
      ['Rome', 'PER'],
    ]);
  });

  it('gives a word the label of its first piece', () => {
    const entities = mergeEntitySpans('Romeo', [token(0, 4, 'B-LOC', 0.5), token(4, 5, 'B-PER', 0.9, true)]);
    expect(entities).toEqual([{ text: 'Romeo', label: 'LOC', start: 0, end: 5, score: 0.5 }]);
  });

  it('merges plain labels without a prefix when they repeat', () => {
    expect(mergeEntitySpans(text, [token(0, 3, 'PER'), token(4, 7, 'PER'), token(8, 11, 'O')]).map((e) => e.text)).toEqual(['Ann Lee']);
  });
});
