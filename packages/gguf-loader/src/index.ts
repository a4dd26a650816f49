export { readGgufHeader, type GgufHeader, type GgufTensorInfo, type GgufValue, type ReadGgufHeaderOptions } from './gguf-header-reader.js';
export { inspectGgufFile, validateGgufHeader, describeGgufHeader, type GgufModelInfo } from './gguf-model-info.js';
export { ggmlTypes, ggufFileTypeNames, type GgmlTypeInfo } from './ggml-types.js';
export { parseKeepAlive, type KeepAlive } from './keep-alive.js';
export { createEndOfGenerationBias, endOfGenerationTokens } from './end-of-generation-bias.js';
export {
  chatTemplateBudgetTrips,
  chatTemplateLastStop,
  chatTemplateRenderBudgetMs,
  chatTemplateStopsPerStretch,
  installChatTemplateBudget,
} from './chat-template-budget.js';
export {
  createGgufModelManager,
  NodeLlamaModelManager,
  type GgufModelManager,
  type GgufModelManagerOptions,
  type GgufLoadOptions,
  type LoadedGgufModel,
  type GgufMemoryEstimate,
  type AvailableMemory,
  type GpuLayersOption,
} from './gguf-model-manager.js';
export { GgufTextEmbedder, type GgufTextEmbedderOptions } from './gguf-text-embedder.js';
export {
  ggufModelInspector,
  ggufDefaultQuantOrder,
  quantOfFileName,
  type GgufModelInspector,
  type GgufInspection,
  type GgufModelDetails,
} from './gguf-model-inspector.js';
export { createGgufModelBackend } from './gguf-model-backend.js';
