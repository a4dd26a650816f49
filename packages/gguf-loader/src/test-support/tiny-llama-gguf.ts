import { writeGgufFile, type GgufWriteTensor, type GgufWriteValue } from './gguf-file-builder.js';

/** Options of `writeTinyLlamaGguf`; defaults give the ~250 KB fixture of the recipe. */
export interface TinyLlamaGgufOptions {
  /** Matrix tensor type (norms stay F32). Default 'F16'. */
  tensorType?: 'F32' | 'F16';
  /** Hidden size (default 64). */
  embeddingLength?: number;
  /** Layers (default 2). */
  blockCount?: number;
  /** Attention heads (default 4). */
  headCount?: number;
  /** KV heads (default 2). */
  headCountKv?: number;
  /** FFN size (default 128). */
  feedForwardLength?: number;
  /** Context length written in the header (default 2048). */
  contextLength?: number;
  /** Vocabulary size; at least the ~340 base tokens (default: the base vocabulary). */
  vocabularySize?: number;
  /** `tokenizer.chat_template`; none by default. */
  chatTemplate?: string;
  /** PRNG seed of the weights (default 1). */
  seed?: number;
  /** `general.name` (default "tiny-llama"). */
  name?: string;
  /** Metadata keys to leave out (broken fixtures). */
  omitKeys?: readonly string[];
  /** Extra or replacing metadata entries (broken fixtures). */
  overrideMetadata?: ReadonlyArray<readonly [string, GgufWriteValue]>;
  /** Rewrites the tensor list before writing (broken fixtures). */
  mapTensors?: (tensors: GgufWriteTensor[]) => GgufWriteTensor[];
  /** Rewrites the token strings, same length (broken fixtures). */
  mapTokens?: (tokens: readonly string[]) => string[];
  /** Cut the written file to this many bytes. */
  truncateTo?: number;
  /** Magic and version overrides (broken fixtures). */
  magic?: string;
  version?: number;
}

/** Facts about the written fixture. */
export interface TinyLlamaGgufInfo {
  path: string;
  parameters: number;
  vocabularySize: number;
  embeddingLength: number;
  blockCount: number;
  contextLength: number;
}

/** Seeded PRNG (mulberry32) with Gaussian samples by Box-Muller. */
function createRandom(seed: number): { gaussian(): number } {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | null = null;
  return {
    gaussian(): number {
      if (spare !== null) {
        const value = spare;
        spare = null;
        return value;
      }
      const u = Math.max(uniform(), 1e-12);
      const v = uniform();
      const radius = Math.sqrt(-2 * Math.log(u));
      spare = radius * Math.sin(2 * Math.PI * v);
      return radius * Math.cos(2 * Math.PI * v);
    },
  };
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half-precision bits of a float (round to nearest). */
function toHalf(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    const m = (mantissa | 0x800000) >>> (1 - exponent);
    return sign | ((m + 0x1000) >>> 13);
  }
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | ((mantissa + 0x1000) >>> 13);
}

/** The SPM vocabulary of the recipe: specials, 256 byte tokens, then pieces up to `size`. */
function buildVocabulary(size: number | undefined): { tokens: string[]; types: number[]; scores: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const pieces: string[] = ['▁'];
  const characters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?:;\'"()[]{}-_+=*/\\<>@#$%&|~`^';
  for (const character of characters) pieces.push(character);
  for (const character of 'abcdefghijklmnopqrstuvwxyz') pieces.push(`▁${character}`);
  for (const word of ['the', 'hello', 'world', 'is', 'and', 'you', 'to', 'of', 'a', 'in', 'yes', 'no', 'true', 'false', 'null']) {
    if (!pieces.includes(`▁${word}`)) pieces.push(`▁${word}`);
  }
  const seen = new Set(tokens.concat(pieces));
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const target = size ?? 0;
  // Extra pieces for larger vocabularies: two- and three-letter pieces, with and without ▁.
  outer: for (let length = 2; tokens.length + pieces.length < target; length++) {
    const total = letters.length ** length;
    for (let index = 0; index < total; index++) {
      let piece = '';
      let rest = index;
      for (let position = 0; position < length; position++) {
        piece += letters[rest % letters.length] ?? '';
        rest = Math.floor(rest / letters.length);
      }
      for (const candidate of [`▁${piece}`, piece]) {
        if (!seen.has(candidate)) {
          seen.add(candidate);
          pieces.push(candidate);
          if (tokens.length + pieces.length >= target) break outer;
        }
      }
    }
  }
  const scores = new Array<number>(tokens.length).fill(0);
  pieces.forEach((piece, index) => {
    tokens.push(piece);
    types.push(1);
    scores.push(-index);
  });
  return { tokens, types, scores };
}

/**
 * Writes a random llama GGUF that node-llama-cpp loads (recipe in shared/reference/fixture-models.md):
 * SPM vocabulary with byte tokens, GQA attention, N(0, 0.02) matrices, embedding/output scaled by 50.
 * Deterministic for a given seed and options.
 */
export function writeTinyLlamaGguf(path: string, options: TinyLlamaGgufOptions = {}): TinyLlamaGgufInfo {
  const nEmbd = options.embeddingLength ?? 64;
  const nLayer = options.blockCount ?? 2;
  const nHead = options.headCount ?? 4;
  const nHeadKv = options.headCountKv ?? 2;
  const nFf = options.feedForwardLength ?? 128;
  const contextLength = options.contextLength ?? 2048;
  const headDim = nEmbd / nHead;
  const matrixType = (options.tensorType ?? 'F16') === 'F16' ? 1 : 0;
  const vocabulary = buildVocabulary(options.vocabularySize);
  const nVocab = vocabulary.tokens.length;
  const random = createRandom(options.seed ?? 1);

  const matrix = (name: string, ne0: number, ne1: number, scale = 1): GgufWriteTensor => {
    const count = ne0 * ne1;
    const bytesPerElement = matrixType === 1 ? 2 : 4;
    return {
      name,
      dims: [ne0, ne1],
      type: matrixType,
      byteSize: count * bytesPerElement,
      data: () => {
        if (matrixType === 1) {
          const values = new Uint16Array(count);
          for (let index = 0; index < count; index++) values[index] = toHalf(random.gaussian() * 0.02 * scale);
          return new Uint8Array(values.buffer);
        }
        const values = new Float32Array(count);
        for (let index = 0; index < count; index++) values[index] = random.gaussian() * 0.02 * scale;
        return new Uint8Array(values.buffer);
      },
    };
  };
  const norm = (name: string): GgufWriteTensor => ({
    name,
    dims: [nEmbd],
    type: 0,
    byteSize: nEmbd * 4,
    data: () => new Uint8Array(new Float32Array(nEmbd).fill(1).buffer),
  });

  let tensors: GgufWriteTensor[] = [matrix('token_embd.weight', nEmbd, nVocab, 50), norm('output_norm.weight'), matrix('output.weight', nEmbd, nVocab, 50)];
  for (let layer = 0; layer < nLayer; layer++) {
    const prefix = `blk.${layer}.`;
    tensors.push(
      norm(`${prefix}attn_norm.weight`),
      matrix(`${prefix}attn_q.weight`, nEmbd, nHead * headDim),
      matrix(`${prefix}attn_k.weight`, nEmbd, nHeadKv * headDim),
      matrix(`${prefix}attn_v.weight`, nEmbd, nHeadKv * headDim),
      matrix(`${prefix}attn_output.weight`, nHead * headDim, nEmbd),
      norm(`${prefix}ffn_norm.weight`),
      matrix(`${prefix}ffn_gate.weight`, nEmbd, nFf),
      matrix(`${prefix}ffn_up.weight`, nEmbd, nFf),
      matrix(`${prefix}ffn_down.weight`, nFf, nEmbd),
    );
  }
  if (options.mapTensors) tensors = options.mapTensors(tensors);

  let metadata: Array<readonly [string, GgufWriteValue]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: options.name ?? 'tiny-llama' }],
    ['general.alignment', { type: 'u32', value: 32 }],
    ['general.file_type', { type: 'u32', value: matrixType === 1 ? 1 : 0 }],
    ['llama.context_length', { type: 'u32', value: contextLength }],
    ['llama.embedding_length', { type: 'u32', value: nEmbd }],
    ['llama.block_count', { type: 'u32', value: nLayer }],
    ['llama.feed_forward_length', { type: 'u32', value: nFf }],
    ['llama.attention.head_count', { type: 'u32', value: nHead }],
    ['llama.attention.head_count_kv', { type: 'u32', value: nHeadKv }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.rope.dimension_count', { type: 'u32', value: headDim }],
    ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: options.mapTokens ? options.mapTokens(vocabulary.tokens) : vocabulary.tokens }],
    ['tokenizer.ggml.scores', { type: 'f32[]', value: vocabulary.scores }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: vocabulary.types }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: 2 }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 0 }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
  ];
  if (options.chatTemplate !== undefined) metadata.push(['tokenizer.chat_template', { type: 'string', value: options.chatTemplate }]);
  const omit = new Set(options.omitKeys ?? []);
  metadata = metadata.filter(([key]) => !omit.has(key));
  for (const [key, value] of options.overrideMetadata ?? []) {
    const index = metadata.findIndex(([existing]) => existing === key);
    if (index >= 0) metadata[index] = [key, value];
    else metadata.push([key, value]);
  }

  writeGgufFile(path, metadata, tensors, { truncateTo: options.truncateTo, magic: options.magic, version: options.version });
  const parameters = tensors.reduce((sum, tensor) => sum + tensor.dims.reduce((product, dim) => product * dim, 1), 0);
  return { path, parameters, vocabularySize: nVocab, embeddingLength: nEmbd, blockCount: nLayer, contextLength };
}
