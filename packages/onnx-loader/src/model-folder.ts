import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { InvalidModelError, safeParseJson } from '@tabagent/values';

/** What an ONNX model folder serves. */
export type OnnxModelTask = 'embedding' | 'rerank' | 'token-classification';

/** How token vectors become one sentence vector. */
export type PoolingMode = 'mean' | 'cls';

/**
 * Model files tried in this order when none is named: full precision first (what the model was
 * trained as, and what CPU and GPU providers run fastest without fp16 support), then the 8-bit
 * quantized variants that transformers.js exports, then any other `onnx/model*.onnx` by name.
 * fp16 and 4-bit files are only used when named or when nothing else exists.
 */
export const modelFilePreference = [
  'model.onnx',
  'onnx/model.onnx',
  'onnx/model_quantized.onnx',
  'onnx/model_int8.onnx',
  'onnx/model_uint8.onnx',
  'onnx/model_qint8.onnx',
  'onnx/model_quint8.onnx',
  'model_quantized.onnx',
] as const;

/** The files of a model folder, read and parsed. */
export interface ModelFolderContents {
  folder: string;
  /** Absolute path of the chosen model file. */
  modelPath: string;
  /** Path of the model file relative to the folder. */
  modelFile: string;
  config: Record<string, unknown>;
  tokenizerJson: object;
  tokenizerConfig: Record<string, unknown>;
  /** Pooling named by `1_Pooling/config.json` or config.json's `pooling`, when either says. */
  pooling: PoolingMode | null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readJsonFile(path: string, what: string, required: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InvalidModelError(`${what} is missing or unreadable: ${path}`, { cause: error });
  }
  const parsed = safeParseJson(text);
  if (!parsed.success || typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
    throw new InvalidModelError(`${what} is not a valid JSON object: ${path}`);
  }
  return parsed.value as Record<string, unknown>;
}

/** Finds the model file in a folder, honouring `preferred` (relative path) when given. */
export async function findModelFile(folder: string, preferred?: string): Promise<string | null> {
  if (preferred !== undefined) return (await exists(join(folder, preferred))) ? preferred : null;
  for (const candidate of modelFilePreference) if (await exists(join(folder, candidate))) return candidate;
  let others: string[] = [];
  try {
    others = (await readdir(join(folder, 'onnx'))).filter((name) => name.startsWith('model') && name.endsWith('.onnx')).sort();
  } catch {
    return null;
  }
  const rank = (name: string) => (/fp16|q4|bnb4/u.test(name) ? 1 : 0);
  others.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return others.length > 0 ? relative(folder, join(folder, 'onnx', others[0] as string)) : null;
}

function poolingFromSentenceTransformers(config: Record<string, unknown> | null): PoolingMode | null {
  if (config === null) return null;
  if (config['pooling_mode_cls_token'] === true) return 'cls';
  if (config['pooling_mode_mean_tokens'] === true) return 'mean';
  return null;
}

function poolingFromConfig(config: Record<string, unknown>): PoolingMode | null {
  const value = config['pooling'];
  return value === 'mean' || value === 'cls' ? value : null;
}

/** Reads a Hugging Face model folder; a missing or corrupt required file is an `InvalidModelError`. */
export async function readModelFolder(folder: string, options: { modelFile?: string } = {}): Promise<ModelFolderContents> {
  if (!(await exists(folder))) throw new InvalidModelError(`Model folder does not exist: ${folder}`);
  const modelFile = await findModelFile(folder, options.modelFile);
  if (modelFile === null) {
    throw new InvalidModelError(
      options.modelFile === undefined
        ? `No ONNX model file in ${folder} (looked for model.onnx and onnx/model*.onnx)`
        : `Model file ${options.modelFile} not found in ${folder}`,
    );
  }
  const config = (await readJsonFile(join(folder, 'config.json'), 'config.json', false)) ?? {};
  const tokenizerJson = await readJsonFile(join(folder, 'tokenizer.json'), 'tokenizer.json', true);
  const tokenizerConfig = (await readJsonFile(join(folder, 'tokenizer_config.json'), 'tokenizer_config.json', false)) ?? {};
  const pooling =
    poolingFromSentenceTransformers(await readJsonFile(join(folder, '1_Pooling', 'config.json'), '1_Pooling/config.json', false)) ?? poolingFromConfig(config);
  return { folder, modelPath: join(folder, modelFile), modelFile, config, tokenizerJson: tokenizerJson as object, tokenizerConfig, pooling };
}

/** Labels by id from config.json's `id2label`, or null when it has none. */
export function labelsFromConfig(config: Record<string, unknown>): string[] | null {
  const id2label = config['id2label'];
  if (typeof id2label !== 'object' || id2label === null) return null;
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels: string[] = [];
  for (const [key, value] of entries) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || typeof value !== 'string') throw new InvalidModelError(`config.json id2label has an invalid entry: ${key}`);
    labels[id] = value;
  }
  for (let i = 0; i < labels.length; i++) if (labels[i] === undefined) throw new InvalidModelError(`config.json id2label has no label for id ${i}`);
  return labels;
}

const taskAliases: Record<string, OnnxModelTask> = {
  embedding: 'embedding',
  embeddings: 'embedding',
  'feature-extraction': 'embedding',
  'sentence-similarity': 'embedding',
  rerank: 'rerank',
  reranker: 'rerank',
  'text-classification': 'rerank',
  'cross-encoder': 'rerank',
  'token-classification': 'token-classification',
  ner: 'token-classification',
};

/**
 * The task of a model from its config.json: an explicit `task` field, else the architecture
 * (`*ForTokenClassification` -> entities, `*ForSequenceClassification` with one label -> rerank,
 * with several -> `InvalidModelError`), else embedding.
 */
export function taskFromConfig(config: Record<string, unknown>): OnnxModelTask {
  const explicit = config['task'];
  if (typeof explicit === 'string') {
    const task = taskAliases[explicit];
    if (task === undefined) throw new InvalidModelError(`config.json names an unsupported task: ${explicit}`);
    return task;
  }
  const architectures = Array.isArray(config['architectures']) ? config['architectures'].filter((a): a is string => typeof a === 'string') : [];
  if (architectures.some((a) => a.endsWith('ForTokenClassification'))) return 'token-classification';
  if (architectures.some((a) => a.endsWith('ForSequenceClassification'))) {
    const labelCount = labelsFromConfig(config)?.length ?? (typeof config['num_labels'] === 'number' ? config['num_labels'] : 1);
    if (labelCount !== 1) {
      throw new InvalidModelError(
        `A sequence classifier with ${labelCount} labels is not a cross-encoder; only one-logit rerank models are supported (or set "task" in config.json)`,
      );
    }
    return 'rerank';
  }
  return 'embedding';
}

/** The maximum tokens per input: the smallest of tokenizer_config's and config's limits (huge sentinel values ignored). */
export function maxLengthOf(contents: Pick<ModelFolderContents, 'config' | 'tokenizerConfig'>, override?: number): number {
  if (override !== undefined) return override;
  const candidates = [contents.tokenizerConfig['model_max_length'], contents.config['max_position_embeddings']].filter(
    (v): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 1_000_000,
  );
  return candidates.length > 0 ? Math.min(...candidates) : 512;
}
