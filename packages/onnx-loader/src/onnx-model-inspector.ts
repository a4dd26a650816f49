import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RouteResponse } from '@tabagent/values';
import { findModelFile, maxLengthOf, readModelFolder, taskFromConfig, type OnnxModelTask, type PoolingMode } from './model-folder.js';

/** The `details` of a model in the registry (values' `ModelDetails`). */
export type OnnxModelDetails = RouteResponse<'models.list'>['data'][number]['details'];

/** What the model registry needs to know about an ONNX model folder, read without loading it. */
export interface OnnxModelInspection {
  task: OnnxModelTask;
  details: OnnxModelDetails;
  /** Bytes of the model file (and its external data file, when it has one). */
  sizeBytes: number;
  /** The model file that would be loaded, relative to the folder. */
  modelFile: string;
  /** Pooling the folder names (embedding models), else null. */
  pooling: PoolingMode | null;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function quantizationOf(modelFile: string): string {
  if (/fp16/u.test(modelFile)) return 'fp16';
  if (/bnb4|q4f16|q4/u.test(modelFile)) return 'q4';
  if (/uint8|quint8/u.test(modelFile)) return 'uint8';
  if (/quantized|int8|qint8/u.test(modelFile)) return 'int8';
  return 'fp32';
}

/** Whether `path` is a folder holding an ONNX model file and a tokenizer.json. Never throws. */
export async function isOnnxModelFolder(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isDirectory()) return false;
    if ((await findModelFile(path)) === null) return false;
    return (await stat(join(path, 'tokenizer.json'))).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads a model folder's task, details and size without creating a session (for the model
 * registry). A missing model file or tokenizer, or corrupt JSON, is an `InvalidModelError`.
 */
export async function inspectOnnxModelFolder(path: string): Promise<OnnxModelInspection> {
  const contents = await readModelFolder(path);
  const { config } = contents;
  const architectures = Array.isArray(config['architectures']) ? config['architectures'] : [];
  const architecture = typeof architectures[0] === 'string' ? architectures[0] : typeof config['model_type'] === 'string' ? config['model_type'] : null;
  const hiddenSize = typeof config['hidden_size'] === 'number' ? config['hidden_size'] : typeof config['d_model'] === 'number' ? config['d_model'] : null;
  const sizeBytes = (await fileSize(contents.modelPath)) + (await fileSize(`${contents.modelPath}_data`)) + (await fileSize(`${contents.modelPath}.data`));
  const task = taskFromConfig(config);
  return {
    task,
    details: {
      architecture,
      parameters: null,
      context_length: maxLengthOf(contents),
      quantization: quantizationOf(contents.modelFile),
      embedding_length: hiddenSize,
      has_chat_template: false,
    },
    sizeBytes,
    modelFile: contents.modelFile,
    pooling: task === 'embedding' ? (contents.pooling ?? 'mean') : null,
  };
}
