import * as ort from 'onnxruntime-node';
import { InvalidModelError, ModelNotLoadedError } from '@tabagent/values';
import { maxLengthOf, readModelFolder, taskFromConfig, type ModelFolderContents, type OnnxModelTask } from './model-folder.js';
import { createOnnxSession, valueType, type OnnxSessionOptions } from './onnx-session-factory.js';
import { TextTokenizer, type TokenizedText } from './text-tokenizer.js';

/** Options shared by every ONNX model factory. */
export interface OnnxModelOptions extends OnnxSessionOptions {
  /** Registry id reported in responses. Default: the folder's name. */
  modelId?: string;
  /** Model file relative to the folder; default per `modelFilePreference`. */
  modelFile?: string;
  /** Maximum tokens per input (special tokens included). Default: the smaller of tokenizer_config's `model_max_length` and config's `max_position_embeddings`. */
  maxTokens?: number;
  /** The task, when the registry knows it; otherwise read from config.json. A mismatch with the folder is not checked beyond the graph's shape. */
  task?: OnnxModelTask;
}

const feedableInputs = new Set(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);

/**
 * A loaded encoder graph with its tokenizer: builds feeds from `session.inputNames` (ONNX Runtime
 * accepts unknown feeds silently, so feeding by name is the only check), pads to the longest
 * input, and counts runs.
 */
export class OnnxEncoder {
  /** Session runs so far (tests assert micro-batching with it). */
  runCount = 0;

  private constructor(
    readonly contents: ModelFolderContents,
    readonly tokenizer: TextTokenizer,
    readonly session: ort.InferenceSession,
    readonly executionProvider: string,
    readonly task: OnnxModelTask,
  ) {}

  /** Reads the folder, checks the tokenizer against the graph, creates the session. */
  static async load(folder: string, options: OnnxModelOptions, wantedTask?: OnnxModelTask): Promise<OnnxEncoder> {
    const contents = await readModelFolder(folder, options.modelFile === undefined ? {} : { modelFile: options.modelFile });
    const task = options.task ?? taskFromConfig(contents.config);
    if (wantedTask !== undefined && task !== wantedTask) {
      throw new InvalidModelError(`${folder} is a model for ${task}, not for ${wantedTask}`, { details: { task, wanted: wantedTask } });
    }
    const tokenizer = new TextTokenizer(contents.tokenizerJson, contents.tokenizerConfig, maxLengthOf(contents, options.maxTokens));
    const { session, executionProvider } = await createOnnxSession(contents.modelPath, options);
    try {
      const encoder = new OnnxEncoder(contents, tokenizer, session, executionProvider, task);
      encoder.checkInputs();
      return encoder;
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  private checkInputs(): void {
    const names = this.session.inputNames;
    if (!names.includes('input_ids')) {
      throw new InvalidModelError(`The graph does not take input_ids (its inputs: ${names.join(', ')}); it is not a text encoder`);
    }
    for (const name of names) {
      if (!feedableInputs.has(name)) throw new InvalidModelError(`The graph needs an input this loader cannot feed: ${name}`);
      const type = valueType(this.session, name, 'input');
      if (type !== null && type !== 'int64') throw new InvalidModelError(`Graph input ${name} is ${type}; expected int64`);
    }
  }

  /** Output names of the graph. */
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs a batch (padded to its longest input) and returns the requested outputs. */
  async run(batch: readonly TokenizedText[], outputs: readonly string[]): Promise<{ tensors: ort.InferenceSession.OnnxValueMapType; sequenceLength: number }> {
    const size = batch.length;
    const sequenceLength = Math.max(1, ...batch.map((t) => t.ids.length));
    const ids = new BigInt64Array(size * sequenceLength).fill(BigInt(this.tokenizer.padId));
    const mask = new BigInt64Array(size * sequenceLength);
    const types = new BigInt64Array(size * sequenceLength);
    batch.forEach((tokens, row) => {
      const offset = row * sequenceLength;
      for (let i = 0; i < tokens.ids.length; i++) {
        ids[offset + i] = BigInt(tokens.ids[i] as number);
        mask[offset + i] = 1n;
        types[offset + i] = BigInt(tokens.typeIds[i] ?? 0);
      }
    });
    const dims = [size, sequenceLength];
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', ids, dims);
      else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', mask, dims);
      else if (name === 'token_type_ids') feeds[name] = new ort.Tensor('int64', types, dims);
      else if (name === 'position_ids') {
        const positions = new BigInt64Array(size * sequenceLength);
        for (let i = 0; i < positions.length; i++) positions[i] = BigInt(i % sequenceLength);
        feeds[name] = new ort.Tensor('int64', positions, dims);
      }
    }
    // An unload that raced this request: a retryable 503, never onnxruntime's "Session already disposed".
    if (this.released) throw new ModelNotLoadedError('The model was unloaded while this request waited for it; send the request again');
    this.runCount += 1;
    const pending = this.session.run(feeds, [...outputs]);
    this.running.add(pending);
    try {
      return { tensors: await pending, sequenceLength };
    } finally {
      this.running.delete(pending);
    }
  }

  /**
   * Runs the tokenizer's largest token id through the graph. An embedding table with fewer rows
   * than the tokenizer's vocabulary fails here, at load, rather than on the first unlucky input.
   */
  async probe(outputs: readonly string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
    const probe = this.tokenizer.encode('a');
    const ids = [...probe.ids];
    ids.splice(Math.min(1, ids.length), 0, this.tokenizer.vocabularySize - 1);
    const typeIds = [...probe.typeIds, 0];
    try {
      const { tensors } = await this.run([{ ids, typeIds, tokens: [] }], outputs);
      this.runCount = 0;
      return tensors;
    } catch (error) {
      throw new InvalidModelError(
        `The tokenizer does not match the model: running token id ${this.tokenizer.vocabularySize - 1} (the tokenizer's largest) failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  private disposed = false;
  /** Set once the session is released: runs still queued when an unload drained are refused. */
  private released = false;
  /** Session runs in progress: the session is released only after they finish. */
  private readonly running = new Set<Promise<unknown>>();

  /**
   * Runs `work` (which may queue runs, as the micro-batcher does) as one unit the session outlives:
   * an unload waits for it. Refused with a retryable 503 once the encoder is disposed.
   */
  async use<T>(work: () => Promise<T>): Promise<T> {
    if (this.disposed) throw new ModelNotLoadedError('The model was unloaded; send the request again');
    const pending = work();
    this.running.add(pending);
    try {
      return await pending;
    } finally {
      this.running.delete(pending);
    }
  }

  /** Releases the session once the runs in progress have finished; later runs are refused. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.allSettled([...this.running]);
    this.released = true;
    await this.session.release();
  }
}

/** Float32 data of an output tensor, or an `InvalidModelError` naming its type. */
export function floatData(tensor: ort.Tensor | undefined, name: string): Float32Array {
  if (tensor === undefined) throw new InvalidModelError(`The graph returned no ${name} output`);
  if (tensor.type !== 'float32' || !(tensor.data instanceof Float32Array)) {
    throw new InvalidModelError(`Graph output ${name} is ${tensor.type}; this loader reads float32 outputs`);
  }
  return tensor.data;
}
