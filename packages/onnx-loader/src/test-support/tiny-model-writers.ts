import { join } from 'node:path';
import { floatAttribute, intAttribute, OnnxGraphBuilder, writeBytes } from './onnx-graph-builder.js';
import { createSeededRandom, randomWeights } from './seeded-random.js';
import { writeWordPieceTokenizer, type WordPieceTokenizerOptions } from './wordpiece-tokenizer-writer.js';

/** Options every tiny model writer takes. */
export interface TinyModelOptions {
  /** Seed of the random weights. Default 7. */
  seed?: number;
  /** Hidden size. Default 32. */
  hiddenSize?: number;
  /** `model_max_length` (tokenizer) and `max_position_embeddings` (config). Default 128. */
  maxLength?: number;
  /** Tokenizer options (vocabulary, extra words). */
  tokenizer?: Omit<WordPieceTokenizerOptions, 'modelMaxLength'>;
  /** Paths (relative to the folder) the model is written to. Default `['model.onnx', 'onnx/model.onnx']`. */
  modelFiles?: string[];
  /** Rows of the word-embedding matrix; default the vocabulary size (fewer makes a mismatched tokenizer). */
  embeddingRows?: number;
  /** Extra fields merged into config.json (e.g. an explicit `task`). */
  config?: Record<string, unknown>;
}

/** What a tiny model writer wrote. */
export interface TinyModelFixture {
  /** The model folder. */
  folder: string;
  /** Token strings by id. */
  vocabulary: string[];
  /** Token id of a token string (throws for unknown tokens). */
  idOf(token: string): number;
  hiddenSize: number;
  maxLength: number;
  /** Word-embedding matrix, row-major [vocabulary rows, hiddenSize]. */
  wordEmbeddings: Float32Array;
}

/** Options of `writeTinyEmbedderModel`. */
export interface TinyEmbedderOptions extends TinyModelOptions {
  /** Pooling written to `1_Pooling/config.json`. Default `mean`. */
  pooling?: 'mean' | 'cls';
  /**
   * Adds a `sentence_embedding` output [B, D]: the masked mean of the raw (pre-tanh) token
   * embeddings. It deliberately differs from pooling `last_hidden_state`, so tests can tell
   * which one the loader used.
   */
  pooledOutput?: boolean;
  /** Adds a `token_type_ids` input whose embedding is added before the tanh. */
  tokenTypeInput?: boolean;
}

/** What `writeTinyEmbedderModel` wrote: `last_hidden_state = tanh(E[input_ids] (+ T[token_type_ids]))`. */
export interface TinyEmbedderFixture extends TinyModelFixture {
  pooling: 'mean' | 'cls';
  /** [2, hiddenSize] when `tokenTypeInput` was set. */
  tokenTypeEmbeddings: Float32Array | null;
}

/** What `writeTinyCrossEncoderModel` wrote: `logit = mean_mask(tanh(E[ids] + T[types])) · W + b`. */
export interface TinyCrossEncoderFixture extends TinyModelFixture {
  tokenTypeEmbeddings: Float32Array;
  /** Classifier weights [hiddenSize] and bias. */
  classifierWeights: Float32Array;
  classifierBias: number;
}

/** Options of `writeTinyTokenClassifierModel`. */
export interface TinyTokenClassifierOptions extends TinyModelOptions {
  /** Labels by id; default `['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']`. Index 0 must be the outside label. */
  labels?: string[];
  /** Token -> label: the writer shapes the weights so these tokens get that label (all others get labels[0]). */
  tokenLabels?: Record<string, string>;
  /** Leave id2label out of config.json (for the bad-model tests). */
  omitId2Label?: boolean;
}

/** What `writeTinyTokenClassifierModel` wrote: `logits = tanh(E[ids]) · C + c`. */
export interface TinyTokenClassifierFixture extends TinyModelFixture {
  labels: string[];
  /** Classifier [hiddenSize, labels.length] row-major, and its bias [labels.length]. */
  classifierWeights: Float32Array;
  classifierBias: Float32Array;
}

const batch = 'batch_size';
const sequence = 'sequence_length';

async function writeModelFiles(folder: string, files: string[] | undefined, bytes: Uint8Array): Promise<void> {
  for (const file of files ?? ['model.onnx', 'onnx/model.onnx']) await writeBytes(join(folder, file), bytes);
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeBytes(path, JSON.stringify(value, null, 2));
}

function maskedMeanNodes(g: OnnxGraphBuilder, hidden: string, mask: string, output?: string): string {
  const maskFloat = g.node('Cast', [mask], [intAttribute('to', 1)]);
  const mask3d = g.node('Unsqueeze', [maskFloat, 'axes_last']);
  const masked = g.node('Mul', [hidden, mask3d]);
  const sum = g.node('ReduceSum', [masked, 'axes_seq'], [intAttribute('keepdims', 0)]);
  const count = g.node('ReduceSum', [mask3d, 'axes_seq'], [intAttribute('keepdims', 0)]);
  const safeCount = g.node('Max', [count, 'epsilon']);
  return g.node('Div', [sum, safeCount], [], output);
}

function addPoolingConstants(g: OnnxGraphBuilder): void {
  g.int64Initializer('axes_last', [-1]);
  g.int64Initializer('axes_seq', [1]);
  g.scalarFloat('epsilon', 1e-9);
}

async function prepare(folder: string, options: TinyModelOptions) {
  const hiddenSize = options.hiddenSize ?? 32;
  const maxLength = options.maxLength ?? 128;
  const tokenizer = await writeWordPieceTokenizer(folder, { ...options.tokenizer, modelMaxLength: maxLength });
  const random = createSeededRandom(options.seed ?? 7);
  const rows = options.embeddingRows ?? tokenizer.vocabulary.length;
  return { hiddenSize, maxLength, tokenizer, random, rows };
}

function baseConfig(architecture: string, hiddenSize: number, maxLength: number, vocabSize: number) {
  return { architectures: [architecture], model_type: 'bert', hidden_size: hiddenSize, max_position_embeddings: maxLength, vocab_size: vocabSize };
}

/**
 * Writes a tiny feature-extraction model (Hugging Face layout) into `folder`:
 * inputs `input_ids`, `attention_mask` (and `token_type_ids` when asked), output `last_hidden_state`
 * = tanh of the word embeddings, optional `sentence_embedding`.
 */
export async function writeTinyEmbedderModel(folder: string, options: TinyEmbedderOptions = {}): Promise<TinyEmbedderFixture> {
  const { hiddenSize, maxLength, tokenizer, random, rows } = await prepare(folder, options);
  const pooling = options.pooling ?? 'mean';
  const g = new OnnxGraphBuilder();
  const wordEmbeddings = randomWeights(random, rows * hiddenSize, 1);
  g.floatInitializer('embeddings.word_embeddings.weight', [rows, hiddenSize], wordEmbeddings);
  const ids = g.input('input_ids', 'int64', [batch, sequence]);
  const mask = g.input('attention_mask', 'int64', [batch, sequence]);
  let embedded = g.node('Gather', ['embeddings.word_embeddings.weight', ids], [intAttribute('axis', 0)]);
  let tokenTypeEmbeddings: Float32Array | null = null;
  if (options.tokenTypeInput) {
    tokenTypeEmbeddings = randomWeights(random, 2 * hiddenSize, 1);
    g.floatInitializer('embeddings.token_type_embeddings.weight', [2, hiddenSize], tokenTypeEmbeddings);
    const types = g.input('token_type_ids', 'int64', [batch, sequence]);
    const typeEmbedded = g.node('Gather', ['embeddings.token_type_embeddings.weight', types], [intAttribute('axis', 0)]);
    embedded = g.node('Add', [embedded, typeEmbedded]);
  }
  g.node('Tanh', [embedded], [], 'last_hidden_state');
  g.output('last_hidden_state', 'float', [batch, sequence, hiddenSize]);
  if (options.pooledOutput) {
    addPoolingConstants(g);
    maskedMeanNodes(g, embedded, mask, 'sentence_embedding');
    g.output('sentence_embedding', 'float', [batch, hiddenSize]);
  }
  await writeModelFiles(folder, options.modelFiles, g.encodeModel('tiny-embedder'));
  await writeJson(join(folder, 'config.json'), { ...baseConfig('BertModel', hiddenSize, maxLength, rows), ...options.config });
  await writeJson(join(folder, '1_Pooling', 'config.json'), {
    word_embedding_dimension: hiddenSize,
    pooling_mode_cls_token: pooling === 'cls',
    pooling_mode_mean_tokens: pooling === 'mean',
    pooling_mode_max_tokens: false,
  });
  return {
    folder,
    vocabulary: tokenizer.vocabulary,
    idOf: (token: string) => tokenizer.idOf(token),
    hiddenSize,
    maxLength,
    wordEmbeddings,
    pooling,
    tokenTypeEmbeddings,
  };
}

/**
 * Writes a tiny cross-encoder (BertForSequenceClassification, one logit) into `folder`:
 * inputs `input_ids`, `attention_mask`, `token_type_ids`; output `logits` [B, 1].
 */
export async function writeTinyCrossEncoderModel(folder: string, options: TinyModelOptions = {}): Promise<TinyCrossEncoderFixture> {
  const { hiddenSize, maxLength, tokenizer, random, rows } = await prepare(folder, options);
  const g = new OnnxGraphBuilder();
  const wordEmbeddings = randomWeights(random, rows * hiddenSize, 1);
  const tokenTypeEmbeddings = randomWeights(random, 2 * hiddenSize, 1);
  const classifierWeights = randomWeights(random, hiddenSize, 1);
  const classifierBias = 0.25;
  g.floatInitializer('word', [rows, hiddenSize], wordEmbeddings);
  g.floatInitializer('token_type', [2, hiddenSize], tokenTypeEmbeddings);
  g.floatInitializer('classifier.weight', [hiddenSize, 1], classifierWeights);
  g.floatInitializer('classifier.bias', [1], Float32Array.of(classifierBias));
  addPoolingConstants(g);
  const ids = g.input('input_ids', 'int64', [batch, sequence]);
  const mask = g.input('attention_mask', 'int64', [batch, sequence]);
  const types = g.input('token_type_ids', 'int64', [batch, sequence]);
  const words = g.node('Gather', ['word', ids], [intAttribute('axis', 0)]);
  const typed = g.node('Gather', ['token_type', types], [intAttribute('axis', 0)]);
  const hidden = g.node('Tanh', [g.node('Add', [words, typed])]);
  const pooled = maskedMeanNodes(g, hidden, mask);
  g.node('Gemm', [pooled, 'classifier.weight', 'classifier.bias'], [floatAttribute('alpha', 1), floatAttribute('beta', 1)], 'logits');
  g.output('logits', 'float', [batch, 1]);
  await writeModelFiles(folder, options.modelFiles, g.encodeModel('tiny-cross-encoder'));
  await writeJson(join(folder, 'config.json'), {
    ...baseConfig('BertForSequenceClassification', hiddenSize, maxLength, rows),
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    ...options.config,
  });
  return {
    folder,
    vocabulary: tokenizer.vocabulary,
    idOf: (token: string) => tokenizer.idOf(token),
    hiddenSize,
    maxLength,
    wordEmbeddings,
    tokenTypeEmbeddings,
    classifierWeights,
    classifierBias,
  };
}

/**
 * Writes a tiny token classifier (BertForTokenClassification) into `folder`: inputs `input_ids`,
 * `attention_mask`; output `logits` [B, S, labels]. Tokens named in `tokenLabels` are given
 * embeddings that make their label win clearly; every other token gets `labels[0]`.
 */
export async function writeTinyTokenClassifierModel(folder: string, options: TinyTokenClassifierOptions = {}): Promise<TinyTokenClassifierFixture> {
  const labels = options.labels ?? ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];
  const { hiddenSize, maxLength, tokenizer, random, rows } = await prepare(folder, options);
  if (hiddenSize < labels.length) throw new Error('hiddenSize must be at least the number of labels');
  const wordEmbeddings = randomWeights(random, rows * hiddenSize, 0.5);
  const labelOfToken = new Map<number, number>();
  for (const [token, label] of Object.entries(options.tokenLabels ?? {})) {
    const labelId = labels.indexOf(label);
    if (labelId < 0) throw new Error(`Unknown label ${label}`);
    labelOfToken.set(tokenizer.idOf(token), labelId);
  }
  for (let row = 0; row < rows; row++) {
    const winner = labelOfToken.get(row) ?? 0;
    for (let l = 0; l < labels.length; l++) wordEmbeddings[row * hiddenSize + l] = l === winner ? 1.5 : -0.5 + random() * 0.5;
  }
  // Classifier: the first `labels.length` hidden dimensions, scaled, are the logits.
  const classifierWeights = new Float32Array(hiddenSize * labels.length);
  for (let l = 0; l < labels.length; l++) classifierWeights[l * labels.length + l] = 4;
  const classifierBias = randomWeights(random, labels.length, 0.1);
  const g = new OnnxGraphBuilder();
  g.floatInitializer('word', [rows, hiddenSize], wordEmbeddings);
  g.floatInitializer('classifier.weight', [hiddenSize, labels.length], classifierWeights);
  g.floatInitializer('classifier.bias', [labels.length], classifierBias);
  const ids = g.input('input_ids', 'int64', [batch, sequence]);
  g.input('attention_mask', 'int64', [batch, sequence]);
  const hidden = g.node('Tanh', [g.node('Gather', ['word', ids], [intAttribute('axis', 0)])]);
  g.node('Add', [g.node('MatMul', [hidden, 'classifier.weight']), 'classifier.bias'], [], 'logits');
  g.output('logits', 'float', [batch, sequence, labels.length]);
  await writeModelFiles(folder, options.modelFiles, g.encodeModel('tiny-token-classifier'));
  const id2label = Object.fromEntries(labels.map((label, id) => [String(id), label]));
  const label2id = Object.fromEntries(labels.map((label, id) => [label, id]));
  await writeJson(join(folder, 'config.json'), {
    ...baseConfig('BertForTokenClassification', hiddenSize, maxLength, rows),
    ...(options.omitId2Label ? {} : { id2label, label2id }),
    ...options.config,
  });
  return {
    folder,
    vocabulary: tokenizer.vocabulary,
    idOf: (token: string) => tokenizer.idOf(token),
    hiddenSize,
    maxLength,
    wordEmbeddings,
    labels,
    classifierWeights,
    classifierBias,
  };
}
