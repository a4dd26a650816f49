import { Tokenizer as UntypedTokenizer } from '@huggingface/tokenizers';
import { InvalidModelError } from '@tabagent/values';

/** The part of `@huggingface/tokenizers`' Tokenizer this file uses (its own declarations, 0.2.0). */
interface LibraryTokenizer {
  tokenize(text: string, options?: { text_pair?: string | null; add_special_tokens?: boolean }): string[];
  token_to_id(token: string): number | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
  get_added_tokens_decoder(): Map<number, { content: string; special: boolean }>;
  post_processor: ((a: string[], b: string[] | null, addSpecialTokens: boolean) => { tokens: string[]; token_type_ids?: number[] }) | null;
}

// @huggingface/tokenizers 0.2.0's types re-export `./core/Tokenizer` without a file extension,
// which NodeNext resolution cannot follow, so the class arrives typed `any`; this restores types.
const Tokenizer = UntypedTokenizer as unknown as new (tokenizerJson: object, tokenizerConfig: object) => LibraryTokenizer;

/** One tokenized input, already truncated, with special tokens. */
export interface TokenizedText {
  ids: number[];
  /** Segment ids (0 for the first text, 1 for the second of a pair). */
  typeIds: number[];
  /** Token strings, special tokens included. */
  tokens: string[];
}

/** Character span of a token in the original text; null for special tokens. */
export type TokenOffset = readonly [start: number, end: number] | null;

/**
 * Tokenizer of a model folder: `@huggingface/tokenizers` plus what the library leaves out here
 * (truncation to the model's length, the special-token count, character offsets).
 */
export class TextTokenizer {
  readonly maxLength: number;
  /** Highest token id + 1. */
  readonly vocabularySize: number;
  readonly padId: number;
  private readonly tokenizer: LibraryTokenizer;
  private readonly singleSpecialCount: number;
  private readonly pairSpecialCount: number;
  private readonly unkId: number;
  private readonly specialTokens: ReadonlySet<string>;

  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown>, maxLength: number) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (error) {
      throw new InvalidModelError(`tokenizer.json could not be loaded: ${(error as Error).message}`, { cause: error });
    }
    this.maxLength = maxLength;
    const vocabulary = this.tokenizer.get_vocab(true);
    let maxId = -1;
    for (const id of vocabulary.values()) maxId = Math.max(maxId, id);
    if (maxId < 0) throw new InvalidModelError('tokenizer.json has an empty vocabulary');
    this.vocabularySize = maxId + 1;
    const singleSpecials = this.postProcess([], null).tokens;
    const pairSpecials = this.postProcess([], []).tokens;
    for (const token of new Set([...singleSpecials, ...pairSpecials])) {
      if (this.tokenizer.token_to_id(token) === undefined) {
        throw new InvalidModelError(`tokenizer.json adds the special token ${token} but its vocabulary has no such token`);
      }
    }
    this.singleSpecialCount = singleSpecials.length;
    this.pairSpecialCount = pairSpecials.length;
    this.specialTokens = new Set([
      ...singleSpecials,
      ...pairSpecials,
      ...[...this.tokenizer.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.content),
    ]);
    const padToken = typeof tokenizerConfig['pad_token'] === 'string' ? tokenizerConfig['pad_token'] : '[PAD]';
    this.padId = this.tokenizer.token_to_id(padToken) ?? 0;
    const unkToken = typeof tokenizerConfig['unk_token'] === 'string' ? tokenizerConfig['unk_token'] : '[UNK]';
    this.unkId = this.tokenizer.token_to_id(unkToken) ?? 0;
    if (maxLength <= this.pairSpecialCount) throw new InvalidModelError(`model max length ${maxLength} leaves no room for text`);
  }

  /** Tokenizes one text, truncated to `maxLength` tokens including special tokens. */
  encode(text: string): TokenizedText {
    const content = this.tokenizer.tokenize(text, { add_special_tokens: false });
    const room = this.maxLength - this.singleSpecialCount;
    return this.finish(this.postProcess(content.length > room ? content.slice(0, room) : content, null));
  }

  /**
   * Tokenizes a text of any length into windows of at most `maxLength` tokens each (special
   * tokens added to each window). `contentStart` is the index of the first text token inside
   * each window, so window token `contentStart + j` is text token `window * room + j`.
   */
  encodeWindows(text: string): { windows: TokenizedText[]; contentTokens: string[]; contentStart: number; room: number } {
    const contentTokens = this.tokenizer.tokenize(text, { add_special_tokens: false });
    const room = this.maxLength - this.singleSpecialCount;
    const windows: TokenizedText[] = [];
    for (let start = 0; start < contentTokens.length || windows.length === 0; start += room) {
      windows.push(this.finish(this.postProcess(contentTokens.slice(start, start + room), null)));
    }
    return { windows, contentTokens, contentStart: this.contentStart, room };
  }

  /** Index of the first text token in a post-processed single sequence (1 for `[CLS] $A [SEP]`). */
  private get contentStart(): number {
    const sentinel = '\u0000sentinel';
    const index = this.postProcess([sentinel], null).tokens.indexOf(sentinel);
    return index < 0 ? 0 : index;
  }

  /** Tokenizes a pair (query, document) for a cross-encoder, truncating the longer side first. */
  encodePair(first: string, second: string): TokenizedText {
    let a = this.tokenizer.tokenize(first, { add_special_tokens: false });
    let b = this.tokenizer.tokenize(second, { add_special_tokens: false });
    const room = this.maxLength - this.pairSpecialCount;
    if (a.length + b.length > room) {
      // longest_first, as the Rust tokenizers library truncates pairs.
      let keepA = a.length;
      let keepB = b.length;
      while (keepA + keepB > room) {
        if (keepA >= keepB) keepA -= 1;
        else keepB -= 1;
      }
      a = a.slice(0, keepA);
      b = b.slice(0, keepB);
    }
    return this.finish(this.postProcess(a, b));
  }

  /** Whether a token string is one of the tokenizer's special tokens. */
  isSpecial(token: string): boolean {
    return this.specialTokens.has(token);
  }

  /**
   * Character offsets of `tokens` (from `encode(text)`) in `text`. The library gives no offsets,
   * so each token is found in a normalised copy of the text (lower case, accents removed, as the
   * BERT normaliser does) that keeps a map back to the original characters.
   */
  offsets(text: string, tokens: readonly string[]): TokenOffset[] {
    const normalized: string[] = [];
    const originalIndex: number[] = [];
    let position = 0;
    for (const char of text) {
      const folded = char
        .normalize('NFD')
        .replace(/\p{Mn}/gu, '')
        .toLowerCase();
      for (const unit of folded) {
        normalized.push(unit);
        originalIndex.push(position);
      }
      position += char.length;
    }
    const haystack = normalized.join('');
    const originalEnd = (normalizedEnd: number): number => (normalizedEnd < originalIndex.length ? (originalIndex[normalizedEnd] as number) : text.length);
    let cursor = 0;
    return tokens.map((token) => {
      if (this.isSpecial(token) && this.tokenizer.token_to_id(token) !== this.unkId) return null;
      const piece = token.startsWith('##') ? token.slice(2) : token.replace(/^[▁Ġ]/u, '');
      if (this.tokenizer.token_to_id(token) === this.unkId || piece.length === 0) {
        // An unknown token stands for a whole word: the next run of non-space characters.
        while (cursor < haystack.length && /\s/u.test(haystack[cursor] as string)) cursor += 1;
        const start = cursor;
        while (cursor < haystack.length && !/\s/u.test(haystack[cursor] as string)) cursor += 1;
        return start === cursor ? null : [originalIndex[start] as number, originalEnd(cursor)];
      }
      const found = haystack.indexOf(piece.toLowerCase(), cursor);
      if (found < 0) return null;
      cursor = found + piece.length;
      return [originalIndex[found] as number, originalEnd(cursor)];
    });
  }

  private postProcess(a: string[], b: string[] | null): { tokens: string[]; token_type_ids?: number[] } {
    const processor = this.tokenizer.post_processor;
    if (processor === null) return { tokens: [...a, ...(b ?? [])], token_type_ids: [...a.map(() => 0), ...(b ?? []).map(() => 1)] };
    return processor(a, b, true);
  }

  private finish(processed: { tokens: string[]; token_type_ids?: number[] }): TokenizedText {
    const ids = processed.tokens.map((token) => this.tokenizer.token_to_id(token) ?? this.unkId);
    return { ids, tokens: processed.tokens, typeIds: processed.token_type_ids ?? ids.map(() => 0) };
  }
}
