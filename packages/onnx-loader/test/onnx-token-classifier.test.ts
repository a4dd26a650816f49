import { join } from 'node:path';
import { createOnnxTokenClassifier, type OnnxTokenClassifier } from '../src/index.js';
import { writeTinyTokenClassifierModel, type TinyTokenClassifierFixture } from '../src/test-support/index.js';
import { createTemporaryFolder, row } from './temporary-folder.js';

let folder: { path: string; remove(): Promise<void> };
let fixture: TinyTokenClassifierFixture;
let classifier: OnnxTokenClassifier;

beforeAll(async () => {
  folder = await createTemporaryFolder('token-classifier');
  fixture = await writeTinyTokenClassifierModel(join(folder.path, 'tiny-ner'), {
    tokenizer: { extraWords: ['new', 'york', 'zurich', 'jose'] },
    tokenLabels: { alice: 'B-PER', smith: 'I-PER', bob: 'B-PER', paris: 'B-LOC', new: 'B-LOC', york: 'I-LOC', zurich: 'B-LOC', '##s': 'I-LOC', jose: 'B-PER' },
  });
  classifier = await createOnnxTokenClassifier(fixture.folder, { threads: 1 });
});
afterAll(async () => {
  await classifier.dispose();
  await folder.remove();
});

/** softmax(4·tanh(E[id]) restricted to the label columns + bias)[label]: the fixture's probability for a token's label. */
function handScore(token: string, label: string): number {
  const embedding = row(fixture.wordEmbeddings, fixture.idOf(token), fixture.hiddenSize);
  const logits = fixture.labels.map((_, l) => 4 * Math.tanh(embedding[l] as number) + (fixture.classifierBias[l] as number));
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  return (exps[fixture.labels.indexOf(label)] as number) / exps.reduce((a, b) => a + b, 0);
}

describe('createOnnxTokenClassifier', () => {
  it('reads the labels from config.json', () => {
    expect(classifier.labels).toEqual(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']);
  });

  it('merges B-/I- tags into spans with character offsets into the original text', async () => {
    const text = 'Yesterday Alice Smith visited Paris with Bob.';
    const entities = await classifier.extractEntities(text);
    expect(entities.map(({ text: t, label, start, end }) => ({ t, label, start, end }))).toEqual([
      { t: 'Alice Smith', label: 'PER', start: 10, end: 21 },
      { t: 'Paris', label: 'LOC', start: 30, end: 35 },
      { t: 'Bob', label: 'PER', start: 41, end: 44 },
    ]);
    for (const entity of entities) expect(text.slice(entity.start, entity.end)).toBe(entity.text);
    expect(entities[0]?.score).toBeCloseTo((handScore('alice', 'B-PER') + handScore('smith', 'I-PER')) / 2, 5);
    expect(entities[1]?.score).toBeCloseTo(handScore('paris', 'B-LOC'), 5);
  });

  it('keeps offsets right across extra spaces, case, accents and multi-token names', async () => {
    const text = 'From   NEW York to Zürich, then José.';
    const entities = await classifier.extractEntities(text);
    expect(entities.map(({ text: t, label, start, end }) => ({ t, label, start, end }))).toEqual([
      { t: 'NEW York', label: 'LOC', start: 7, end: 15 },
      { t: 'Zürich', label: 'LOC', start: 19, end: 25 },
      { t: 'José', label: 'PER', start: 32, end: 36 },
    ]);
  });

  it('labels a word by its first word piece, so a continuation does not split or start an entity', async () => {
    // "parises" tokenizes as paris + ##es; "cats" as cat + ##s, and ##s alone is tagged I-LOC.
    const entities = await classifier.extractEntities('parises and cats');
    expect(entities.map(({ text, label }) => ({ text, label }))).toEqual([{ text: 'parises', label: 'LOC' }]);
  });

  it('reads a text longer than the model in windows, in one session run, with offsets into the whole text', async () => {
    const short = await createOnnxTokenClassifier(fixture.folder, { threads: 1, maxTokens: 6 });
    const text = 'the dog and the cat saw Alice Smith in Paris and then Bob';
    const entities = await short.extractEntities(text);
    expect(entities.map(({ text: t, label, start, end }) => ({ t, label, start, end }))).toEqual([
      { t: 'Alice Smith', label: 'PER', start: 24, end: 35 },
      { t: 'Paris', label: 'LOC', start: 39, end: 44 },
      { t: 'Bob', label: 'PER', start: 54, end: 57 },
    ]);
    expect(short.stats().sessionRuns).toBe(1);
    await short.dispose();
  });

  it('returns no entities for text without any', async () => {
    expect(await classifier.extractEntities('the dog and the cat')).toEqual([]);
  });
});
