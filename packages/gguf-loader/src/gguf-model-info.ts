import { InvalidModelError } from '@tabagent/values';
import { ggmlTypes, ggufFileTypeNames } from './ggml-types.js';
import type { GgufHeader, GgufValue, ReadGgufHeaderOptions } from './gguf-header-reader.js';
import { readGgufHeader } from './gguf-header-reader.js';

/** What the server needs to know about a GGUF model, read from its header. */
export interface GgufModelInfo {
  readonly path: string;
  readonly version: number;
  readonly architecture: string;
  readonly name: string | null;
  /** Parameter count: the sum of all tensor element counts. */
  readonly parameters: number;
  readonly contextLength: number | null;
  readonly embeddingLength: number | null;
  readonly blockCount: number | null;
  /** `general.file_type` name, else the dominant tensor type (e.g. "Q4_K_M", "F16"). */
  readonly quantization: string | null;
  readonly fileSize: number;
  readonly hasChatTemplate: boolean;
  readonly chatTemplate: string | null;
  /** True for embedding models (a pooling type key, or an encoder-only architecture). */
  readonly embeddingOnly: boolean;
  readonly tokenizerModel: string | null;
  readonly vocabularySize: number;
  readonly tensorCount: number;
}

/** Encoder-only architectures: they produce embeddings and cannot generate text. */
const encoderOnlyArchitectures = new Set(['bert', 'nomic-bert', 'nomic-bert-moe', 'jina-bert-v2', 'jina-bert-v3', 'modern-bert', 'neo-bert', 'eurobert']);
/** Recurrent architectures have no attention heads or FFN length keys. */
const recurrentArchitectures = new Set(['mamba', 'mamba2', 'rwkv6', 'rwkv6qwen2', 'rwkv7', 'arwkv7']);

function numberOrNull(value: GgufValue | undefined): number | null {
  if (typeof value === 'number') return value;
  // Some architectures store per-layer values (an array); the first is representative.
  if (Array.isArray(value) && typeof value[0] === 'number') return value[0];
  return null;
}

function requireKey(header: GgufHeader, key: string, check: (value: GgufValue) => boolean, expected: string): GgufValue {
  const value = header.metadata.get(key);
  if (value === undefined) throw new InvalidModelError(`GGUF file is missing the required key "${key}"`, { details: { key } });
  if (!check(value)) throw new InvalidModelError(`GGUF key "${key}" must be ${expected}`, { details: { key } });
  return value;
}

const isPositiveNumber = (value: GgufValue): boolean =>
  (typeof value === 'number' && value > 0) || (Array.isArray(value) && value.length > 0 && value.every((entry) => typeof entry === 'number'));

/**
 * Checks everything llama.cpp would otherwise assert on (and abort the process): required keys,
 * the vocabulary, tensor types and tensor extents. Throws `InvalidModelError` naming the problem.
 */
export function validateGgufHeader(header: GgufHeader): void {
  const architecture = requireKey(header, 'general.architecture', (value) => typeof value === 'string' && value.length > 0, 'a non-empty string') as string;
  const numeric = ['context_length', 'embedding_length', 'block_count'];
  if (!recurrentArchitectures.has(architecture)) numeric.push('feed_forward_length', 'attention.head_count');
  for (const suffix of numeric) requireKey(header, `${architecture}.${suffix}`, isPositiveNumber, 'a positive number');

  const tokenizerModel = requireKey(header, 'tokenizer.ggml.model', (value) => typeof value === 'string', 'a string') as string;
  const tokens = requireKey(
    header,
    'tokenizer.ggml.tokens',
    (value) => Array.isArray(value) && value.length > 0 && value.every((entry) => typeof entry === 'string'),
    'a non-empty array of strings',
  ) as string[];
  const seen = new Map<string, number>();
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string;
    const previous = seen.get(token);
    if (previous !== undefined) {
      throw new InvalidModelError(`GGUF vocabulary has a duplicate token ${JSON.stringify(token)} (ids ${previous} and ${index})`, {
        details: { token, ids: [previous, index] },
      });
    }
    seen.set(token, index);
  }
  if (tokenizerModel === 'gpt2') {
    requireKey(header, 'tokenizer.ggml.merges', (value) => Array.isArray(value) && value.length > 0, 'a non-empty array (gpt2 tokenizers need merges)');
  }
  for (const key of ['tokenizer.ggml.token_type', 'tokenizer.ggml.scores']) {
    const value = header.metadata.get(key);
    if (value !== undefined && (!Array.isArray(value) || value.length !== tokens.length)) {
      throw new InvalidModelError(`GGUF key "${key}" has ${Array.isArray(value) ? value.length : 'no'} entries but the vocabulary has ${tokens.length}`, {
        details: { key },
      });
    }
  }

  if (header.tensors.length === 0) throw new InvalidModelError('GGUF file has no tensors');
  const names = new Set<string>();
  for (const tensor of header.tensors) {
    if (names.has(tensor.name)) throw new InvalidModelError(`GGUF tensor "${tensor.name}" appears twice`);
    names.add(tensor.name);
    if (tensor.byteSize === null)
      throw new InvalidModelError(`GGUF tensor "${tensor.name}" has unsupported type ${tensor.type}`, { details: { tensor: tensor.name, type: tensor.type } });
    const info = ggmlTypes.get(tensor.type);
    if (info !== undefined && info.blockSize > 1 && (tensor.dims[0] ?? 0) % info.blockSize !== 0) {
      throw new InvalidModelError(
        `GGUF tensor "${tensor.name}" has a first dimension ${tensor.dims[0]} that is not a multiple of the ${info.name} block size ${info.blockSize}`,
      );
    }
    if (tensor.offset % header.alignment !== 0)
      throw new InvalidModelError(`GGUF tensor "${tensor.name}" data offset ${tensor.offset} is not aligned to ${header.alignment}`);
    const end = header.dataOffset + tensor.offset + tensor.byteSize;
    if (end > header.fileSize) {
      throw new InvalidModelError(
        `GGUF tensor "${tensor.name}" ends at byte ${end}, beyond the end of the file (${header.fileSize} bytes): the file is truncated or corrupt`,
        {
          details: { tensor: tensor.name, end, fileSize: header.fileSize },
        },
      );
    }
  }
}

/** Derives model facts from a header (validate it first). */
export function describeGgufHeader(header: GgufHeader): GgufModelInfo {
  const metadata = header.metadata;
  const architecture = String(metadata.get('general.architecture') ?? 'unknown');
  const fileType = metadata.get('general.file_type');
  let quantization = typeof fileType === 'number' ? (ggufFileTypeNames.get(fileType) ?? null) : null;
  if (quantization === null) {
    const bytesByType = new Map<number, number>();
    for (const tensor of header.tensors) bytesByType.set(tensor.type, (bytesByType.get(tensor.type) ?? 0) + (tensor.byteSize ?? 0));
    let dominant: number | undefined;
    for (const [type, bytes] of bytesByType) if (dominant === undefined || bytes > (bytesByType.get(dominant) ?? 0)) dominant = type;
    quantization = dominant === undefined ? null : (ggmlTypes.get(dominant)?.name ?? null);
  }
  const chatTemplate = metadata.get('tokenizer.chat_template');
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const tokenizerModel = metadata.get('tokenizer.ggml.model');
  const name = metadata.get('general.name');
  return {
    path: header.path,
    version: header.version,
    architecture,
    name: typeof name === 'string' ? name : null,
    parameters: header.tensors.reduce((sum, tensor) => sum + tensor.elements, 0),
    contextLength: numberOrNull(metadata.get(`${architecture}.context_length`)),
    embeddingLength: numberOrNull(metadata.get(`${architecture}.embedding_length`)),
    blockCount: numberOrNull(metadata.get(`${architecture}.block_count`)),
    quantization,
    fileSize: header.fileSize,
    hasChatTemplate: typeof chatTemplate === 'string' && chatTemplate.length > 0,
    chatTemplate: typeof chatTemplate === 'string' ? chatTemplate : null,
    embeddingOnly: encoderOnlyArchitectures.has(architecture) || metadata.has(`${architecture}.pooling_type`),
    tokenizerModel: typeof tokenizerModel === 'string' ? tokenizerModel : null,
    vocabularySize: Array.isArray(tokens) ? tokens.length : 0,
    tensorCount: header.tensors.length,
  };
}

/** Reads, validates and describes a GGUF file; throws `InvalidModelError` for a bad file. */
export async function inspectGgufFile(path: string, options: ReadGgufHeaderOptions = {}): Promise<GgufModelInfo> {
  const header = await readGgufHeader(path, options);
  validateGgufHeader(header);
  return describeGgufHeader(header);
}
