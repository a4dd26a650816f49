export type * from './model-types.js';
export { createModelRegistry, defaultGenerationParams, writeFileAtomic, type ModelRegistry, type ModelRegistryOptions } from './model-registry.js';
export {
  toMegabytes,
  type ModelBackend,
  type LoadedModelView,
  type ModelLoadOptions,
  type ModelMemoryEstimate,
  type TextGenerator,
  type RerankScorer,
  type EntityExtractor,
} from './model-backend.js';
export { createModelResolver, loadOptionsOf, type ModelResolver, type ModelResolverOptions } from './model-resolver.js';
export { parseHubReference, hubAlias, type HubReference } from './hub/hub-reference.js';
export { createHubClient, defaultHubEndpoint, type HubClient, type HubClientOptions, type HubDownloadResponse } from './hub/hub-client.js';
export {
  createModelDownloader,
  type ModelDownloader,
  type ModelDownloaderOptions,
  type FileDownload,
  type DownloadProgress,
  type PartialDownload,
} from './hub/model-downloader.js';
export {
  createModelPuller,
  type ModelPuller,
  type ModelPullerOptions,
  type PullProgress,
  type PullResult,
  type HubScan,
  type ScannedVariant,
} from './hub/model-puller.js';
export { loadRecommendedModels, type RecommendedModel } from './recommended-models.js';
