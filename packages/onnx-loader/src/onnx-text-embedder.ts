import { basename } from 'node:path';
import { InvalidModelError, ModelNotLoadedError, type TextEmbedder, type TextEmbeddingResult } from '@tabagent/values';
import { l2NormalizeInPlace } from './embedding-math.js';
import { MicroBatcher, type MicroBatcherOptions } from './micro-batcher.js';
import type { PoolingMode } from './model-folder.js';
import { floatData, OnnxEncoder, type OnnxModelOptions } from './onnx-encoder.js';
import { valueShape } from './onnx-session-factory.js';
import type { TokenizedText } from './text-tokenizer.js';

/** Options of `createOnnxTextEmbedder`. */
export interface OnnxTextEmbedderOptions extends OnnxModelOptions, MicroBatcherOptions {
  /** Pooling when the folder does not say (1_Pooling/config.json or config.json `pooling`). Default `mean`. */
  pooling?: PoolingMode;
}

/** Counters of an embedder, for tests and metrics. */
export interface EmbedderStats {
  /** Session runs (batches) since load. */
  sessionRuns: number;
  /** Texts embedded since load. */
  textsEmbedded: number;
}

/** A `TextEmbedder` backed by an ONNX graph, with what the server reports about it. */
export interface OnnxTextEmbedder extends TextEmbedder {
  /** `mean` or `cls`; irrelevant when the graph has a `sentence_embedding` output. */
  readonly pooling: PoolingMode;
  /** Whether the graph's own pooled output (`sentence_embedding`) is used. */
  readonly usesGraphPooling: boolean;
  /** The execution provider that took the session (`cpu` after a fallback). */
  readonly executionProvider: string;
  /** The model file used, relative to the folder. */
  readonly modelFile: string;
  stats(): EmbedderStats;
  /** Releases the session; idempotent. Pending requests fail. */
  dispose(): Promise<void>;
}

const pooledOutputName = 'sentence_embedding';
const hiddenOutputNames = ['last_hidden_state', 'token_embeddings'];

class OnnxTextEmbedderImpl implements OnnxTextEmbedder {
  readonly maxTokens: number;
  readonly executionProvider: string;
  readonly modelFile: string;
  private readonly batcher: MicroBatcher<TokenizedText, Float32Array>;
  private textsEmbedded = 0;
  private disposed = false;

  constructor(
    readonly modelId: string,
    private readonly encoder: OnnxEncoder,
    readonly dimensions: number,
    readonly pooling: PoolingMode,
    private readonly outputName: string,
    readonly usesGraphPooling: boolean,
    options: MicroBatcherOptions,
  ) {
    this.maxTokens = encoder.tokenizer.maxLength;
    this.executionProvider = encoder.executionProvider;
    this.modelFile = encoder.contents.modelFile;
    this.batcher = new MicroBatcher(
      (batch) => this.runBatch(batch),
      (tokens) => tokens.ids.length,
      options,
    );
  }

  async embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<TextEmbeddingResult> {
    if (this.disposed) throw new ModelNotLoadedError(`Embedding model ${this.modelId} was unloaded; send the request again`);
    const tokenized = texts.map((text) => this.encoder.tokenizer.encode(text));
    // An unload waits for embeddings already accepted, batched ones included.
    const vectors = await this.encoder.use(() => this.batcher.submit(tokenized, options.signal));
    this.textsEmbedded += texts.length;
    return { vectors, tokenCounts: tokenized.map((t) => t.ids.length) };
  }

  stats(): EmbedderStats {
    return { sessionRuns: this.encoder.runCount, textsEmbedded: this.textsEmbedded };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.encoder.dispose();
  }

  private async runBatch(batch: TokenizedText[]): Promise<Float32Array[]> {
    const { tensors, sequenceLength } = await this.encoder.run(batch, [this.outputName]);
    const data = floatData(tensors[this.outputName], this.outputName);
    const d = this.dimensions;
    return batch.map((tokens, row) => {
      if (this.usesGraphPooling) return l2NormalizeInPlace(data.slice(row * d, (row + 1) * d));
      const base = row * sequenceLength * d;
      if (this.pooling === 'cls') return l2NormalizeInPlace(data.slice(base, base + d));
      const pooled = new Float32Array(d);
      const length = tokens.ids.length;
      for (let t = 0; t < length; t++) {
        const offset = base + t * d;
        for (let k = 0; k < d; k++) pooled[k] = (pooled[k] as number) + (data[offset + k] as number);
      }
      for (let k = 0; k < d; k++) pooled[k] = (pooled[k] as number) / Math.max(length, 1);
      return l2NormalizeInPlace(pooled);
    });
  }
}

/**
 * Loads an ONNX feature-extraction model folder as a `TextEmbedder`. Vectors come from the
 * graph's `sentence_embedding` output when it has one, else from pooling `last_hidden_state`
 * (or `token_embeddings`) over the attention mask; always L2-normalised. Concurrent `embed` calls
 * are micro-batched (see `MicroBatcherOptions`).
 */
export async function createOnnxTextEmbedder(folder: string, options: OnnxTextEmbedderOptions = {}): Promise<OnnxTextEmbedder> {
  const encoder = await OnnxEncoder.load(folder, options, 'embedding');
  try {
    const outputs = encoder.outputNames;
    const usesGraphPooling = outputs.includes(pooledOutputName);
    const outputName = usesGraphPooling
      ? pooledOutputName
      : (hiddenOutputNames.find((name) => outputs.includes(name)) ?? outputs.find((name) => valueShape(encoder.session, name, 'output')?.length === 3));
    if (outputName === undefined) {
      throw new InvalidModelError(
        `The graph has no embedding output: expected sentence_embedding [batch, dim] or last_hidden_state [batch, tokens, dim]; it has ${outputs.join(', ')}`,
      );
    }
    const probe = (await encoder.probe([outputName]))[outputName];
    const dims = probe?.dims ?? [];
    const expectedRank = usesGraphPooling ? 2 : 3;
    const dimensions = dims[dims.length - 1];
    if (dims.length !== expectedRank || dimensions === undefined || dimensions < 1) {
      throw new InvalidModelError(`Graph output ${outputName} has shape [${dims.join(', ')}]; expected rank ${expectedRank} with the embedding size last`);
    }
    floatData(probe, outputName);
    const pooling = encoder.contents.pooling ?? options.pooling ?? 'mean';
    return new OnnxTextEmbedderImpl(options.modelId ?? basename(folder), encoder, dimensions, pooling, outputName, usesGraphPooling, options);
  } catch (error) {
    await encoder.dispose();
    throw error;
  }
}
