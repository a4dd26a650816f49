import { join } from 'node:path';
import { floatAttribute, intAttribute, intsAttribute, OnnxGraphBuilder, writeBytes } from './onnx-graph-builder.js';
import { createSeededRandom, randomWeights } from './seeded-random.js';
import { specialTokens, writeWordPieceTokenizer } from './wordpiece-tokenizer-writer.js';

/** Options of `writeBertEncoderModel`. Defaults are all-MiniLM-L6-v2's shape. */
export interface BertEncoderOptions {
  seed?: number;
  /** Transformer layers. Default 6. */
  layers?: number;
  /** Hidden size. Default 384. */
  hiddenSize?: number;
  /** Attention heads (must divide hiddenSize). Default 12. */
  heads?: number;
  /** Feed-forward size. Default 1536. */
  intermediateSize?: number;
  /** Tokenizer vocabulary size, specials included. Default 30522 (BERT's). */
  vocabularySize?: number;
  /** Position embeddings and tokenizer `model_max_length`. Default 512. */
  maxLength?: number;
}

/** What `writeBertEncoderModel` wrote. */
export interface BertEncoderFixture {
  folder: string;
  /** Whole words of the vocabulary (no `##` pieces, no specials), for generating sentences. */
  words: string[];
  vocabularySize: number;
  hiddenSize: number;
  sizeBytes: number;
}

const syllables = ['ka', 'lo', 'mi', 're', 'su', 'ta', 'ne', 'vo', 'di', 'pa', 'ri', 'go', 'ze', 'bu', 'fa', 'ho', 'ju', 'ce', 'wy', 'xo'];

/** Deterministic distinct pseudo-words: every 2-, 3- and 4-syllable combination, in order. */
function pseudoWords(count: number): string[] {
  const words: string[] = [];
  const n = syllables.length;
  for (let length = 2; words.length < count; length++) {
    const total = n ** length;
    for (let i = 0; i < total && words.length < count; i++) {
      let rest = i;
      let word = '';
      for (let s = 0; s < length; s++) {
        word += syllables[rest % n] ?? '';
        rest = Math.floor(rest / n);
      }
      words.push(word);
    }
  }
  return words;
}

/**
 * Writes a BERT-shaped encoder of realistic size with random weights (a benchmark stand-in for
 * all-MiniLM-L6-v2): word + position + token-type embeddings, LayerNormalization (opset 17), and
 * per layer real multi-head self-attention (MatMul, scaled scores plus the additive attention
 * mask, Softmax) and a GELU (erf form) feed-forward block; output `last_hidden_state`. With the
 * matching WordPiece tokenizer.json and mean pooling in 1_Pooling/config.json.
 */
export async function writeBertEncoderModel(folder: string, options: BertEncoderOptions = {}): Promise<BertEncoderFixture> {
  const layers = options.layers ?? 6;
  const hidden = options.hiddenSize ?? 384;
  const heads = options.heads ?? 12;
  const intermediate = options.intermediateSize ?? 1536;
  const vocabularySize = options.vocabularySize ?? 30522;
  const maxLength = options.maxLength ?? 512;
  if (hidden % heads !== 0) throw new Error('heads must divide hiddenSize');
  const headSize = hidden / heads;
  const random = createSeededRandom(options.seed ?? 11);
  const scale = 0.05;

  const punctuation = ['.', ',', '!', '?', "'", '-', ':', ';', '(', ')'];
  const letters = 'abcdefghijklmnopqrstuvwxyz0123456789'.split('');
  const pieces = [...punctuation, ...letters, ...letters.map((l) => `##${l}`), ...syllables.map((s) => `##${s}`)];
  const wordCount = vocabularySize - specialTokens.length - pieces.length;
  const words = pseudoWords(wordCount);
  await writeWordPieceTokenizer(folder, { vocabulary: [...pieces, ...words], modelMaxLength: maxLength });

  const g = new OnnxGraphBuilder();
  const batch = 'batch_size';
  const sequence = 'sequence_length';
  const ids = g.input('input_ids', 'int64', [batch, sequence]);
  const mask = g.input('attention_mask', 'int64', [batch, sequence]);
  const types = g.input('token_type_ids', 'int64', [batch, sequence]);
  const ones = (n: number) => new Float32Array(n).fill(1);
  const zeros = (n: number) => new Float32Array(n);

  g.floatInitializer('word_embeddings', [vocabularySize, hidden], randomWeights(random, vocabularySize * hidden, scale));
  g.floatInitializer('position_embeddings', [maxLength, hidden], randomWeights(random, maxLength * hidden, scale));
  g.floatInitializer('token_type_embeddings', [2, hidden], randomWeights(random, 2 * hidden, scale));
  g.int64Initializer('zero_1d', [0]);
  g.int64Initializer('one_1d', [1]);
  g.int64Initializer('axes_0', [0]);
  g.int64Initializer('axes_1_2', [1, 2]);
  g.int64Initializer('heads_shape', [0, 0, heads, headSize]);
  g.int64Initializer('hidden_shape', [0, 0, hidden]);
  g.scalarFloat('one', 1);
  g.scalarFloat('mask_penalty', -10000);
  g.scalarFloat('attention_scale', 1 / Math.sqrt(headSize));
  g.scalarFloat('sqrt2', Math.SQRT2);
  g.scalarFloat('half', 0.5);

  // Position ids 0..S-1 from the input's runtime shape.
  const shape = g.node('Shape', [ids]);
  const length1d = g.node('Slice', [shape, 'one_1d', g.int64Initializer('two_1d', [2])]);
  const length = g.node('Squeeze', [length1d, 'axes_0']);
  const start = g.node('Squeeze', ['zero_1d', 'axes_0']);
  const delta = g.node('Squeeze', ['one_1d', 'axes_0']);
  const positions = g.node('Range', [start, length, delta]);
  const positionEmbedded = g.node('Gather', ['position_embeddings', positions], [intAttribute('axis', 0)]);
  const wordEmbedded = g.node('Gather', ['word_embeddings', ids], [intAttribute('axis', 0)]);
  const typeEmbedded = g.node('Gather', ['token_type_embeddings', types], [intAttribute('axis', 0)]);
  const summed = g.node('Add', [g.node('Add', [wordEmbedded, typeEmbedded]), positionEmbedded]);
  g.floatInitializer('embeddings_ln_gamma', [hidden], ones(hidden));
  g.floatInitializer('embeddings_ln_beta', [hidden], zeros(hidden));
  let x = g.node('LayerNormalization', [summed, 'embeddings_ln_gamma', 'embeddings_ln_beta'], [intAttribute('axis', -1), floatAttribute('epsilon', 1e-12)]);

  // Additive mask [B, 1, 1, S]: 0 where attended, -10000 at padding.
  const maskFloat = g.node('Cast', [mask], [intAttribute('to', 1)]);
  const inverted = g.node('Sub', ['one', maskFloat]);
  const additiveMask = g.node('Unsqueeze', [g.node('Mul', [inverted, 'mask_penalty']), 'axes_1_2']);

  const dense = (input: string, name: string, inSize: number, outSize: number): string => {
    g.floatInitializer(`${name}.weight`, [inSize, outSize], randomWeights(random, inSize * outSize, scale));
    g.floatInitializer(`${name}.bias`, [outSize], randomWeights(random, outSize, scale));
    return g.node('Add', [g.node('MatMul', [input, `${name}.weight`]), `${name}.bias`]);
  };
  const layerNorm = (input: string, name: string): string => {
    g.floatInitializer(`${name}.gamma`, [hidden], ones(hidden));
    g.floatInitializer(`${name}.beta`, [hidden], zeros(hidden));
    return g.node('LayerNormalization', [input, `${name}.gamma`, `${name}.beta`], [intAttribute('axis', -1), floatAttribute('epsilon', 1e-12)]);
  };
  const splitHeads = (input: string, perm: number[]) => g.node('Transpose', [g.node('Reshape', [input, 'heads_shape'])], [intsAttribute('perm', perm)]);

  for (let layer = 0; layer < layers; layer++) {
    const p = `layer.${layer}`;
    const q = splitHeads(dense(x, `${p}.query`, hidden, hidden), [0, 2, 1, 3]);
    const k = splitHeads(dense(x, `${p}.key`, hidden, hidden), [0, 2, 3, 1]);
    const v = splitHeads(dense(x, `${p}.value`, hidden, hidden), [0, 2, 1, 3]);
    const scores = g.node('Add', [g.node('Mul', [g.node('MatMul', [q, k]), 'attention_scale']), additiveMask]);
    const probabilities = g.node('Softmax', [scores], [intAttribute('axis', -1)]);
    const context = g.node('Transpose', [g.node('MatMul', [probabilities, v])], [intsAttribute('perm', [0, 2, 1, 3])]);
    const merged = g.node('Reshape', [context, 'hidden_shape']);
    const attended = layerNorm(g.node('Add', [dense(merged, `${p}.attention.output`, hidden, hidden), x]), `${p}.attention.ln`);
    const up = dense(attended, `${p}.intermediate`, hidden, intermediate);
    // GELU, erf form: 0.5 · x · (1 + erf(x / √2)); ONNX Runtime fuses it into one Gelu kernel.
    const gelu = g.node('Mul', [g.node('Mul', [up, 'half']), g.node('Add', [g.node('Erf', [g.node('Div', [up, 'sqrt2'])]), 'one'])]);
    x = layerNorm(g.node('Add', [dense(gelu, `${p}.output`, intermediate, hidden), attended]), `${p}.output.ln`);
  }
  g.node('Identity', [x], [], 'last_hidden_state');
  g.output('last_hidden_state', 'float', [batch, sequence, hidden]);

  const bytes = g.encodeModel('bert-shaped-encoder');
  await writeBytes(join(folder, 'model.onnx'), bytes);
  await writeBytes(
    join(folder, 'config.json'),
    JSON.stringify({
      architectures: ['BertModel'],
      model_type: 'bert',
      hidden_size: hidden,
      num_hidden_layers: layers,
      num_attention_heads: heads,
      intermediate_size: intermediate,
      max_position_embeddings: maxLength,
      vocab_size: vocabularySize,
      hidden_act: 'gelu',
    }),
  );
  await writeBytes(
    join(folder, '1_Pooling', 'config.json'),
    JSON.stringify({ word_embedding_dimension: hidden, pooling_mode_mean_tokens: true, pooling_mode_cls_token: false, pooling_mode_max_tokens: false }),
  );
  return { folder, words, vocabularySize, hiddenSize: hidden, sizeBytes: bytes.length };
}
