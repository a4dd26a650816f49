import { join } from 'node:path';
import { writeBytes } from './onnx-graph-builder.js';

/** The special tokens every fixture vocabulary starts with, in id order. */
export const specialTokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

const defaultWords = [
  'the',
  'a',
  'an',
  'and',
  'or',
  'of',
  'to',
  'in',
  'on',
  'at',
  'is',
  'are',
  'was',
  'it',
  'this',
  'that',
  'with',
  'for',
  'hello',
  'world',
  'cat',
  'dog',
  'bird',
  'fish',
  'search',
  'find',
  'run',
  'walk',
  'house',
  'car',
  'tree',
  'river',
  'paris',
  'london',
  'berlin',
  'france',
  'alice',
  'bob',
  'carol',
  'smith',
  'lives',
  'works',
  'visited',
  'city',
  'machine',
  'learning',
  'model',
  'data',
  'vector',
  'memory',
  'browser',
  'tab',
  'agent',
  'server',
  'local',
  'fast',
  'slow',
  'red',
  'green',
  'blue',
  'big',
  'small',
  'good',
  'bad',
  'new',
  'old',
  'day',
  'night',
  'food',
  'apple',
  'banana',
  'music',
  'sport',
  'football',
  'tennis',
  'weather',
  'rain',
  'sun',
  'code',
  'python',
  'java',
  'script',
];
const defaultSuffixes = ['##s', '##ing', '##ed', '##er', '##ly', '##es'];
const punctuation = ['.', ',', '!', '?', "'", '"', '-', ':', ';', '(', ')', '/'];
const letters = 'abcdefghijklmnopqrstuvwxyz0123456789'.split('');

/** Options of `writeWordPieceTokenizer`. */
export interface WordPieceTokenizerOptions {
  /** Whole vocabulary after the special tokens; defaults to a small English word list, punctuation, letters, digits and `##` pieces. */
  vocabulary?: readonly string[];
  /** Words added to the default vocabulary (ignored when `vocabulary` is given). */
  extraWords?: readonly string[];
  /** `model_max_length` in tokenizer_config.json. Default 128. */
  modelMaxLength?: number;
  /** Leave `[CLS]` and `[SEP]` out of the vocabulary (a broken tokenizer for validation tests). */
  omitClsAndSep?: boolean;
}

/** What `writeWordPieceTokenizer` wrote. */
export interface WrittenTokenizer {
  /** Token strings by id (`vocabulary[id]`). */
  vocabulary: string[];
  /** Token id by token string. */
  idOf(token: string): number;
}

/** The default fixture vocabulary (token strings by id), specials first. */
export function defaultVocabulary(extraWords: readonly string[] = []): string[] {
  const words = [...defaultWords, ...extraWords.filter((w) => !defaultWords.includes(w))];
  return [...specialTokens, ...punctuation, ...letters, ...letters.map((l) => `##${l}`), ...words, ...defaultSuffixes];
}

/**
 * Writes a BERT-style WordPiece `tokenizer.json` and `tokenizer_config.json` into `dir` that
 * `@huggingface/tokenizers` loads: BertNormalizer (lowercase), BertPreTokenizer,
 * `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B:1 [SEP]:1` templates.
 */
export async function writeWordPieceTokenizer(dir: string, options: WordPieceTokenizerOptions = {}): Promise<WrittenTokenizer> {
  let vocabulary = options.vocabulary ? [...specialTokens, ...options.vocabulary] : defaultVocabulary(options.extraWords);
  if (options.omitClsAndSep) vocabulary = vocabulary.filter((t) => t !== '[CLS]' && t !== '[SEP]');
  const vocab: Record<string, number> = {};
  vocabulary.forEach((token, id) => {
    vocab[token] = id;
  });
  const idOf = (token: string): number => {
    const id = vocab[token];
    if (id === undefined) throw new Error(`Token not in fixture vocabulary: ${token}`);
    return id;
  };
  const special = (token: string) => ({ id: token, ids: [vocab[token] ?? 0], tokens: [token] });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: vocabulary
      .map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }))
      .filter((t) => (specialTokens as readonly string[]).includes(t.content)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': special('[CLS]'), '[SEP]': special('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
  const tokenizerConfig = {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    model_max_length: options.modelMaxLength ?? 128,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
  };
  await writeBytes(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  await writeBytes(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2));
  return { vocabulary, idOf };
}
