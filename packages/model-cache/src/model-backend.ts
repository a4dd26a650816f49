import type { RouteResponse, TextEmbedder } from '@tabagent/values';
import type { ChatGenerationRequest, CompletionGenerationRequest, GenerationDelta, GenerationResult, GenerationRun, KeepAlive } from '@tabagent/values';
import type { ModelFormat, RegisteredModel } from './model-types.js';

/** A loaded model in the API's `LoadedModel` shape (`GET /v1/models/loaded`). */
export type LoadedModelView = RouteResponse<'models.loaded'>['models'][number];

/** Load options a request may give; each backend uses the ones its format has. */
export interface ModelLoadOptions {
  contextSize?: number;
  gpuLayers?: number | 'auto' | 'max';
  threads?: number;
  keepAlive?: KeepAlive;
}

/** What loading a model needs, as `resources.estimate` reports it. */
export interface ModelMemoryEstimate {
  ramBytes: number;
  vramBytes: number;
  /** Layers the load would put on the GPU (0 for CPU-only formats). */
  gpuLayers: number;
}

/** Chat and completions on loaded models (a text-generation backend). */
export interface TextGenerator {
  chat(modelId: string, request: ChatGenerationRequest): GenerationRun<GenerationResult, GenerationDelta>;
  complete(modelId: string, request: CompletionGenerationRequest): GenerationRun<GenerationResult, GenerationDelta>;
  /** The tokens of a chat request's rendered prompt, exactly as `chat` would evaluate them (the dialects' token counts). */
  countChatTokens(modelId: string, request: ChatGenerationRequest): Promise<number>;
}

/** A cross-encoder: relevance of each document to the query. */
export interface RerankScorer {
  readonly modelId: string;
  score(
    query: string,
    documents: readonly string[],
    options?: { signal?: AbortSignal },
  ): Promise<{ scores: number[]; logits: number[]; tokenCounts: number[] }>;
}

/** Named entities found in a text (a token-classification model). */
export interface EntityExtractor {
  extractEntities(text: string, options?: { signal?: AbortSignal }): Promise<Array<{ text: string; label: string; start: number; end: number; score: number }>>;
}

/**
 * One model format's runtime: the format adapter (gguf-loader, onnx-loader) implements it and the
 * server composes a list of them. Everything format-specific stays behind this interface, so a
 * new format is one adapter plus one line of composition.
 */
export interface ModelBackend {
  readonly format: ModelFormat;
  /** Loads the model (registry settings already merged into `options`), or returns the loaded one. */
  load(model: RegisteredModel, options: ModelLoadOptions): Promise<{ view: LoadedModelView; alreadyLoaded: boolean; loadTimeMs: number }>;
  /** Releases a model; false when it was not loaded. */
  unload(modelId: string): Promise<boolean>;
  /** The file or folder a loaded model was loaded from, or undefined when it is not loaded. */
  loadedPath(modelId: string): string | undefined;
  /** Every loaded model of this format. */
  loaded(): LoadedModelView[];
  /** Memory a load would take. */
  estimate(model: RegisteredModel, options: { contextSize?: number; gpuLayers?: number | 'auto' | 'max' }): Promise<ModelMemoryEstimate>;
  /** The model's chat template, when the format stores one (GGUF's `tokenizer.chat_template`). */
  chatTemplate?(model: RegisteredModel): Promise<string | null>;
  /** Present when this format generates text. */
  readonly generator?: TextGenerator;
  /** The model's embedder, loading it on demand; undefined when this format cannot embed with it. */
  embedder?(model: RegisteredModel): Promise<TextEmbedder | undefined>;
  /** The model as a cross-encoder, loading it on demand; undefined when it is not one. */
  reranker?(model: RegisteredModel): Promise<RerankScorer | undefined>;
  /** The model as an entity extractor, loading it on demand; undefined when it is not one. */
  entityExtractor?(model: RegisteredModel): Promise<EntityExtractor | undefined>;
}

const megabyte = 1024 * 1024;

/** Bytes as the API's one-decimal megabytes. */
export function toMegabytes(bytes: number): number {
  return Math.round((bytes / megabyte) * 10) / 10;
}
