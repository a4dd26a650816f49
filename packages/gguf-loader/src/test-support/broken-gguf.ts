import { writeFileSync } from 'node:fs';
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
    case 'absurd-array-count':
      writeTinyLlamaGguf(path, { overrideMetadata: [['tokenizer.ggml.merges', { type: 'string[]', value: ['a b'], countOverride: 4_000_000_000 }]] });
      return;
  }
}
