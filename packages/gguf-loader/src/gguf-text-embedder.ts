import type { LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { CancelledError, ModelNotLoadedError, type TextEmbedder, type TextEmbeddingResult } from '@tabagent/values';

/** Options of `createGgufTextEmbedder`. */
export interface GgufTextEmbedderOptions {
  modelId: string;
  model: LlamaModel;
  /** Tokens per input; longer inputs are truncated (default 512, at most the trained context). */
  contextSize?: number;
  threads?: number;
}

/** A `TextEmbedder` over a GGUF model's embedding context. Calls run one at a time. */
export class GgufTextEmbedder implements TextEmbedder {
  readonly modelId: string;
  readonly dimensions: number;
  readonly maxTokens: number;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(
    modelId: string,
    private readonly model: LlamaModel,
    private readonly context: LlamaEmbeddingContext,
    maxTokens: number,
  ) {
    this.modelId = modelId;
    this.dimensions = model.embeddingVectorSize;
    this.maxTokens = maxTokens;
  }

  static async create(options: GgufTextEmbedderOptions): Promise<GgufTextEmbedder> {
    const maxTokens = Math.min(options.contextSize ?? 512, options.model.trainContextSize);
    const context = await options.model.createEmbeddingContext({ contextSize: maxTokens, batchSize: maxTokens, threads: options.threads });
    return new GgufTextEmbedder(options.modelId, options.model, context, maxTokens);
  }

  embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<TextEmbeddingResult> {
    // Embeddings accepted before an unload finish first (dispose waits for the queue); later ones are refused, retryably.
    if (this.disposed) return Promise.reject(new ModelNotLoadedError(`Embedding model ${this.modelId} was unloaded; send the request again`));
    const run = this.queue.then(() => this.embedNow(texts, options.signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async embedNow(texts: readonly string[], signal: AbortSignal | undefined): Promise<TextEmbeddingResult> {
    const vectors: Float32Array[] = [];
    const tokenCounts: number[] = [];
    for (const text of texts) {
      if (signal?.aborted) throw new CancelledError('Embedding was cancelled');
      // Two short of the context: node-llama-cpp adds BOS/EOS where the model wants them and needs the
      // input shorter than the context, or throws (an input of the context's length was a 500).
      const tokens = this.model.tokenize(text).slice(0, Math.max(1, this.maxTokens - 2));
      const embedding = await this.context.getEmbeddingFor(tokens);
      const vector = Float32Array.from(embedding.vector);
      let norm = 0;
      for (const value of vector) norm += value * value;
      norm = Math.sqrt(norm);
      if (norm > 0) for (let index = 0; index < vector.length; index++) vector[index] = (vector[index] as number) / norm;
      vectors.push(vector);
      tokenCounts.push(tokens.length);
    }
    return { vectors, tokenCounts };
  }

  /** Frees the embedding context (idempotent). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    await this.context.dispose();
  }
}
