/**
 * @tabagent/onnx-loader: embeddings, cross-encoder rerank and token classification on
 * onnxruntime-node, from Hugging Face model folders.
 */
export { createOnnxTextEmbedder } from './onnx-text-embedder.js';
export type { OnnxTextEmbedder, OnnxTextEmbedderOptions, EmbedderStats } from './onnx-text-embedder.js';
export type { OnnxModelOptions } from './onnx-encoder.js';
export type { OnnxSessionOptions, ExecutionProviderName } from './onnx-session-factory.js';
export type { MicroBatcherOptions } from './micro-batcher.js';
export { modelFilePreference, taskFromConfig } from './model-folder.js';
export type { OnnxModelTask, PoolingMode } from './model-folder.js';
export {
  l2NormalizeInPlace,
  truncateDimensions,
  cosineSimilarity,
  dotProduct,
  euclideanDistance,
  similarityScore,
  encodeFloat32Base64,
  decodeFloat32Base64,
  sigmoid,
} from './embedding-math.js';
export type { SimilarityMetricName, Vector } from './embedding-math.js';
export { createOnnxCrossEncoder } from './onnx-cross-encoder.js';
export type { OnnxCrossEncoder, OnnxCrossEncoderOptions, CrossEncoderScores } from './onnx-cross-encoder.js';
export { createOnnxTokenClassifier } from './onnx-token-classifier.js';
export type { OnnxTokenClassifier, OnnxTokenClassifierOptions } from './onnx-token-classifier.js';
export { mergeEntitySpans } from './entity-span-merger.js';
export type { ExtractedEntity, TokenPrediction } from './entity-span-merger.js';
export { inspectOnnxModelFolder, isOnnxModelFolder } from './onnx-model-inspector.js';
export type { OnnxModelInspection, OnnxModelDetails } from './onnx-model-inspector.js';
export { clusterVectors, silhouetteScore } from './kmeans-clustering.js';
export type { ClusteringResult } from './kmeans-clustering.js';
export {
  createEmbeddings,
  rerankDocuments,
  computeSimilarity,
  searchDocuments,
  evaluateEmbeddings,
  clusterTexts,
  recommendCandidates,
} from './embedding-operations.js';
export type { RerankModel, RerankScorer } from './embedding-operations.js';
export { createOnnxModelPool } from './onnx-model-pool.js';
export type { OnnxModelPool, OnnxModelPoolOptions, LoadedOnnxModel } from './onnx-model-pool.js';
export { createOnnxModelBackend, onnxModelInspector, onnxVariantKey } from './onnx-model-backend.js';
