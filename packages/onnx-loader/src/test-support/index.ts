/**
 * Test support for packages and benches that need real ONNX models without downloads: writers for
 * tiny (and benchmark-sized) Hugging Face model folders, generated with seeded random weights.
 */
export { writeWordPieceTokenizer, defaultVocabulary, specialTokens } from './wordpiece-tokenizer-writer.js';
export type { WordPieceTokenizerOptions, WrittenTokenizer } from './wordpiece-tokenizer-writer.js';
export { writeTinyEmbedderModel, writeTinyCrossEncoderModel, writeTinyTokenClassifierModel } from './tiny-model-writers.js';
export type {
  TinyModelOptions,
  TinyModelFixture,
  TinyEmbedderOptions,
  TinyEmbedderFixture,
  TinyCrossEncoderFixture,
  TinyTokenClassifierOptions,
  TinyTokenClassifierFixture,
} from './tiny-model-writers.js';
export { writeBrokenModelFolder, brokenModelDefects } from './broken-model-writers.js';
export type { BrokenModelDefect } from './broken-model-writers.js';
export { writeBertEncoderModel } from './bert-encoder-writer.js';
export type { BertEncoderOptions, BertEncoderFixture } from './bert-encoder-writer.js';
export { createSeededRandom } from './seeded-random.js';
