/**
 * A loaded embedding model, whatever its format (ONNX through onnx-loader, GGUF through
 * gguf-loader). The embeddings routes, the weaver and the indexing package only see this.
 */
export interface TextEmbedder {
  /** Registry id of the model. */
  readonly modelId: string;
  /** Length of each vector. */
  readonly dimensions: number;
  /** Maximum tokens per input; longer inputs are truncated. */
  readonly maxTokens: number;
  /**
   * Embeds texts, in order. Vectors are L2-normalised. `tokenCounts[i]` is the number of tokens
   * input i used (after truncation), for usage reporting.
   */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<TextEmbeddingResult>;
}

/** Result of `TextEmbedder.embed`. */
export interface TextEmbeddingResult {
  vectors: Float32Array[];
  tokenCounts: number[];
}

/** Finds the embedder for a model id, or the configured default embedding model when no id is given. */
export type TextEmbedderResolver = (modelId?: string) => Promise<TextEmbedder>;
