import { basename } from 'node:path';
import { InvalidModelError, ModelNotLoadedError } from '@tabagent/values';
import { sigmoid } from './embedding-math.js';
import { MicroBatcher, type MicroBatcherOptions } from './micro-batcher.js';
import { floatData, OnnxEncoder, type OnnxModelOptions } from './onnx-encoder.js';
import type { TokenizedText } from './text-tokenizer.js';

/** Options of `createOnnxCrossEncoder`. */
export interface OnnxCrossEncoderOptions extends OnnxModelOptions, MicroBatcherOptions {}

/** Scores of documents for one query, in document order. */
export interface CrossEncoderScores {
  /** `sigmoid(logit)`: the relevance in (0, 1), as sentence-transformers' CrossEncoder reports one-logit models. */
  scores: number[];
  /** Raw logits. */
  logits: number[];
  /** Tokens of each (query, document) pair after truncation. */
  tokenCounts: number[];
}

/** A cross-encoder (sequence classification with one logit) for reranking. */
export interface OnnxCrossEncoder {
  readonly modelId: string;
  readonly maxTokens: number;
  readonly executionProvider: string;
  readonly modelFile: string;
  /** Scores each document against the query. Concurrent calls are micro-batched. */
  score(query: string, documents: readonly string[], options?: { signal?: AbortSignal }): Promise<CrossEncoderScores>;
  stats(): { sessionRuns: number };
  /** Releases the session; idempotent. */
  dispose(): Promise<void>;
}

class OnnxCrossEncoderImpl implements OnnxCrossEncoder {
  readonly maxTokens: number;
  readonly executionProvider: string;
  readonly modelFile: string;
  private readonly batcher: MicroBatcher<TokenizedText, number>;
  private disposed = false;

  constructor(
    readonly modelId: string,
    private readonly encoder: OnnxEncoder,
    private readonly outputName: string,
    options: MicroBatcherOptions,
  ) {
    this.maxTokens = encoder.tokenizer.maxLength;
    this.executionProvider = encoder.executionProvider;
    this.modelFile = encoder.contents.modelFile;
    this.batcher = new MicroBatcher(
      (batch) => this.runBatch(batch),
      (t) => t.ids.length,
      options,
    );
  }

  async score(query: string, documents: readonly string[], options: { signal?: AbortSignal } = {}): Promise<CrossEncoderScores> {
    if (this.disposed) throw new ModelNotLoadedError(`Rerank model ${this.modelId} was unloaded; send the request again`);
    const pairs = documents.map((document) => this.encoder.tokenizer.encodePair(query, document));
    const logits = await this.batcher.submit(pairs, options.signal);
    return { logits, scores: logits.map(sigmoid), tokenCounts: pairs.map((p) => p.ids.length) };
  }

  stats(): { sessionRuns: number } {
    return { sessionRuns: this.encoder.runCount };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.encoder.dispose();
  }

  private async runBatch(batch: TokenizedText[]): Promise<number[]> {
    const { tensors } = await this.encoder.run(batch, [this.outputName]);
    const data = floatData(tensors[this.outputName], this.outputName);
    return batch.map((_, row) => data[row] as number);
  }
}

/**
 * Loads an ONNX cross-encoder folder (sequence classification with exactly one logit, fed
 * query/document pairs). Any other output shape is an `InvalidModelError`.
 */
export async function createOnnxCrossEncoder(folder: string, options: OnnxCrossEncoderOptions = {}): Promise<OnnxCrossEncoder> {
  const encoder = await OnnxEncoder.load(folder, options, 'rerank');
  try {
    const outputName = encoder.outputNames.includes('logits') ? 'logits' : encoder.outputNames[0];
    if (outputName === undefined) throw new InvalidModelError('The graph has no outputs');
    const probe = (await encoder.probe([outputName]))[outputName];
    const dims = probe?.dims ?? [];
    floatData(probe, outputName);
    if (!(dims.length === 2 && dims[1] === 1) && !(dims.length === 1 && dims[0] === 1)) {
      throw new InvalidModelError(`A rerank model needs one logit per pair ([batch, 1]); graph output ${outputName} has shape [${dims.join(', ')}]`);
    }
    return new OnnxCrossEncoderImpl(options.modelId ?? basename(folder), encoder, outputName, options);
  } catch (error) {
    await encoder.dispose();
    throw error;
  }
}
