import { basename } from 'node:path';
import { InvalidModelError, ModelNotLoadedError } from '@tabagent/values';
import { MicroBatcher, type MicroBatcherOptions } from './micro-batcher.js';
import { labelsFromConfig } from './model-folder.js';
import { floatData, OnnxEncoder, type OnnxModelOptions } from './onnx-encoder.js';
import type { TokenizedText, TokenOffset } from './text-tokenizer.js';
import { mergeEntitySpans, type ExtractedEntity, type TokenPrediction } from './entity-span-merger.js';

/** Options of `createOnnxTokenClassifier`. */
export interface OnnxTokenClassifierOptions extends OnnxModelOptions, MicroBatcherOptions {}

/** A token-classification (named entity) model. */
export interface OnnxTokenClassifier {
  readonly modelId: string;
  readonly maxTokens: number;
  readonly executionProvider: string;
  readonly modelFile: string;
  /** Labels by id, from config.json `id2label`. */
  readonly labels: readonly string[];
  /**
   * Entities in `text`: BIO/IOB2 tags merged into spans with character offsets into `text`.
   * Text longer than the model's maximum length is read in consecutive windows.
   */
  extractEntities(text: string, options?: { signal?: AbortSignal }): Promise<ExtractedEntity[]>;
  stats(): { sessionRuns: number };
  /** Releases the session; idempotent. */
  dispose(): Promise<void>;
}

class OnnxTokenClassifierImpl implements OnnxTokenClassifier {
  readonly maxTokens: number;
  readonly executionProvider: string;
  readonly modelFile: string;
  private readonly batcher: MicroBatcher<TokenizedText, Float32Array[]>;
  private disposed = false;

  constructor(
    readonly modelId: string,
    private readonly encoder: OnnxEncoder,
    readonly labels: readonly string[],
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

  async extractEntities(text: string, options: { signal?: AbortSignal } = {}): Promise<ExtractedEntity[]> {
    if (this.disposed) throw new ModelNotLoadedError(`Entity model ${this.modelId} was unloaded; send the request again`);
    const tokenizer = this.encoder.tokenizer;
    // Long texts are read in consecutive windows of the model's length, all in one batch.
    const { windows, contentTokens, contentStart, room } = tokenizer.encodeWindows(text);
    const logitsByWindow = await this.batcher.submit(windows, options.signal);
    const offsets: TokenOffset[] = tokenizer.offsets(text, contentTokens);
    const predictions: TokenPrediction[] = [];
    contentTokens.forEach((token, i) => {
      const offset = offsets[i];
      const row = logitsByWindow[Math.floor(i / room)]?.[contentStart + (i % room)];
      if (offset === null || offset === undefined || row === undefined) return;
      const probabilities = softmax(row);
      let best = 0;
      for (let l = 1; l < probabilities.length; l++) if ((probabilities[l] as number) > (probabilities[best] as number)) best = l;
      predictions.push({
        start: offset[0],
        end: offset[1],
        label: this.labels[best] as string,
        score: probabilities[best] as number,
        continuesWord: token.startsWith('##'),
      });
    });
    return mergeEntitySpans(text, predictions, this.labels[0] ?? 'O');
  }

  stats(): { sessionRuns: number } {
    return { sessionRuns: this.encoder.runCount };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.encoder.dispose();
  }

  private async runBatch(batch: TokenizedText[]): Promise<Float32Array[][]> {
    const { tensors, sequenceLength } = await this.encoder.run(batch, [this.outputName]);
    const data = floatData(tensors[this.outputName], this.outputName);
    const l = this.labels.length;
    return batch.map((tokens, row) =>
      tokens.ids.map((_, t) => {
        const offset = (row * sequenceLength + t) * l;
        return data.slice(offset, offset + l);
      }),
    );
  }
}

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const out = new Float64Array(logits.length);
  let sum = 0;
  logits.forEach((v, i) => {
    out[i] = Math.exp(v - max);
    sum += out[i];
  });
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/**
 * Loads an ONNX token-classification folder. config.json must give `id2label`, and the graph's
 * logits must have one column per label; otherwise an `InvalidModelError`.
 */
export async function createOnnxTokenClassifier(folder: string, options: OnnxTokenClassifierOptions = {}): Promise<OnnxTokenClassifier> {
  const encoder = await OnnxEncoder.load(folder, options, 'token-classification');
  try {
    const labels = labelsFromConfig(encoder.contents.config);
    if (labels === null || labels.length === 0)
      throw new InvalidModelError('config.json of a token-classification model must give id2label (the entity labels)');
    const outputName = encoder.outputNames.includes('logits') ? 'logits' : encoder.outputNames[0];
    if (outputName === undefined) throw new InvalidModelError('The graph has no outputs');
    const probe = (await encoder.probe([outputName]))[outputName];
    const dims = probe?.dims ?? [];
    floatData(probe, outputName);
    if (dims.length !== 3 || dims[2] !== labels.length) {
      throw new InvalidModelError(
        `Graph output ${outputName} has shape [${dims.join(', ')}]; expected [batch, tokens, ${labels.length}] for the ${labels.length} labels in config.json`,
      );
    }
    return new OnnxTokenClassifierImpl(options.modelId ?? basename(folder), encoder, labels, outputName, options);
  } catch (error) {
    await encoder.dispose();
    throw error;
  }
}
