import { truncateSync, writeFileSync } from 'node:fs';
import { writeTinyLlamaGguf } from './tiny-llama-gguf.js';

/** Every kind of broken GGUF file `writeBrokenGguf` can write, each one a case the validator must refuse. */
export const brokenGgufKinds = [
  'empty-file',
  'bad-magic',
  'bad-version',
  'truncated-header',
  'missing-context-length',
  'missing-embedding-length',
  'missing-block-count',
  'missing-feed-forward-length',
  'missing-head-count',
  'missing-tokenizer-model',
  'missing-tokens',
  'duplicate-token',
  'tensor-outside-file',
  'unsupported-tensor-type',
  'absurd-array-count',
  'deeply-nested-array',
  'sparse-huge-array',
  'huge-tensor-count',
] as const;

/** One kind of broken GGUF file. */
export type BrokenGgufKind = (typeof brokenGgufKinds)[number];

const missingKey: Partial<Record<BrokenGgufKind, string>> = {
  'missing-context-length': 'llama.context_length',
  'missing-embedding-length': 'llama.embedding_length',
  'missing-block-count': 'llama.block_count',
  'missing-feed-forward-length': 'llama.feed_forward_length',
  'missing-head-count': 'llama.attention.head_count',
  'missing-tokenizer-model': 'tokenizer.ggml.model',
  'missing-tokens': 'tokenizer.ggml.tokens',
};

/** A GGUF file of a header and `body` (version 3), written raw: the crafted headers below are not models at all. */
function rawGguf(path: string, tensorCount: number, kvCount: number, body: Buffer, sparseSize?: number): void {
  const head = Buffer.alloc(24);
  head.write('GGUF', 0, 'latin1');
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(BigInt(tensorCount), 8);
  head.writeBigUInt64LE(BigInt(kvCount), 16);
  writeFileSync(path, Buffer.concat([head, body]));
  // Extended with a hole: the file claims its size without taking the disk space.
  if (sparseSize !== undefined) truncateSync(path, sparseSize);
}

/** A metadata key as GGUF writes it: u64 length, then the bytes. */
function ggufKey(key: string): Buffer {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(key)));
  return Buffer.concat([length, Buffer.from(key)]);
}

/** An array's element type and count. */
function arrayHead(elementType: number, count: number): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32LE(elementType, 0);
  bytes.writeBigUInt64LE(BigInt(count), 4);
  return bytes;
}

const ggufArray = 9;
const ggufUint8 = 0;

/**
 * Writes a tiny llama GGUF broken in one way. Several of these (duplicate token, missing FFN
 * length or head count) make llama.cpp abort the process if they reach it.
 */
export function writeBrokenGguf(path: string, kind: BrokenGgufKind): void {
  const key = missingKey[kind];
  if (key !== undefined) {
    // Token types/scores would be left without tokens; drop them too so only the named key is missing.
    const omitKeys = kind === 'missing-tokens' ? [key, 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type'] : [key];
    writeTinyLlamaGguf(path, { omitKeys });
    return;
  }
  switch (kind) {
    case 'empty-file':
      writeFileSync(path, Buffer.alloc(0));
      return;
    case 'bad-magic':
      writeTinyLlamaGguf(path, { magic: 'GGML' });
      return;
    case 'bad-version':
      writeTinyLlamaGguf(path, { version: 99 });
      return;
    case 'truncated-header':
      writeTinyLlamaGguf(path, { truncateTo: 2000 });
      return;
    case 'duplicate-token':
      // The last piece becomes a copy of "hello"'s piece; the vocabulary keeps its size.
      writeTinyLlamaGguf(path, { mapTokens: (tokens) => tokens.map((token, index) => (index === tokens.length - 1 ? '▁hello' : token)) });
      return;
    case 'tensor-outside-file':
      // Header intact, but the data of the last tensors is cut off.
      writeTinyLlamaGguf(path, { truncateTo: 60_000 });
      return;
    case 'unsupported-tensor-type':
      writeTinyLlamaGguf(path, { mapTensors: (tensors) => tensors.map((tensor, index) => (index === 1 ? { ...tensor, type: 31 } : tensor)) });
      return;
    case 'deeply-nested-array': {
      // 20,000 arrays, each the only element of the one before (12 bytes a level): a recursive reader overflows its stack.
      const levels = 20_000;
      const type = Buffer.alloc(4);
      type.writeUInt32LE(ggufArray);
      const nest = Buffer.concat([...Array.from({ length: levels }, () => arrayHead(ggufArray, 1)), arrayHead(ggufUint8, 0)]);
      rawGguf(path, 0, 1, Buffer.concat([ggufKey('bomb.nested'), type, nest]));
      return;
    }
    case 'sparse-huge-array': {
      // 250 million u8 elements in a sparse 300 MB file: within the file's size, far beyond a JS heap as numbers.
      const type = Buffer.alloc(4);
      type.writeUInt32LE(ggufArray);
      rawGguf(path, 0, 1, Buffer.concat([ggufKey('bomb.bytes'), type, arrayHead(ggufUint8, 250_000_000)]), 300_000_000);
      return;
    }
    case 'huge-tensor-count':
      // 10 million tensor infos claimed (24 bytes each fit in the sparse 300 MB file).
      rawGguf(path, 10_000_000, 0, Buffer.alloc(0), 300_000_000);
      return;
    case 'absurd-array-count':
      writeTinyLlamaGguf(path, { overrideMetadata: [['tokenizer.ggml.merges', { type: 'string[]', value: ['a b'], countOverride: 4_000_000_000 }]] });
      return;
  }
}
