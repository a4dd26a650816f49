import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TabAgentError } from '@tabagent/values';
import { brokenGgufKinds, writeBrokenGguf, writeTinyLlamaGguf } from './test-support/index.js';
import { inspectGgufFile } from './gguf-model-info.js';
import { readGgufHeader } from './gguf-header-reader.js';

const directory = mkdtempSync(join(tmpdir(), 'gguf-info-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('readGgufHeader / inspectGgufFile', () => {
  it('reads the header of the tiny F16 fixture without weights', async () => {
    const path = join(directory, 'tiny.gguf');
    const written = writeTinyLlamaGguf(path, { chatTemplate: '{{ messages }}' });
    const header = await readGgufHeader(path);
    expect(header.version).toBe(3);
    expect(header.tensors).toHaveLength(3 + 2 * 9);
    expect(header.metadata.get('llama.block_count')).toBe(2);
    const info = await inspectGgufFile(path);
    expect(info).toMatchObject({
      architecture: 'llama',
      name: 'tiny-llama',
      parameters: written.parameters,
      contextLength: 2048,
      embeddingLength: 64,
      blockCount: 2,
      quantization: 'F16',
      hasChatTemplate: true,
      chatTemplate: '{{ messages }}',
      embeddingOnly: false,
      tokenizerModel: 'llama',
      vocabularySize: written.vocabularySize,
    });
    expect(info.fileSize).toBeGreaterThan(200_000);
  });

  it('reports F32, no chat template, and a pooling key as embedding-only', async () => {
    const path = join(directory, 'embed.gguf');
    writeTinyLlamaGguf(path, { tensorType: 'F32', overrideMetadata: [['llama.pooling_type', { type: 'u32', value: 1 }]] });
    const info = await inspectGgufFile(path);
    expect(info.quantization).toBe('F32');
    expect(info.hasChatTemplate).toBe(false);
    expect(info.embeddingOnly).toBe(true);
  });

  it('takes the dominant tensor type when general.file_type is missing', async () => {
    const path = join(directory, 'nofiletype.gguf');
    writeTinyLlamaGguf(path, { omitKeys: ['general.file_type'] });
    expect((await inspectGgufFile(path)).quantization).toBe('F16');
  });

  const expectedMessages: Record<(typeof brokenGgufKinds)[number], RegExp> = {
    'empty-file': /Not a GGUF file/,
    'bad-magic': /magic is "GGML"/,
    'bad-version': /Unsupported GGUF version 99/,
    'truncated-header': /truncated|claims/,
    'missing-context-length': /missing the required key "llama\.context_length"/,
    'missing-embedding-length': /missing the required key "llama\.embedding_length"/,
    'missing-block-count': /missing the required key "llama\.block_count"/,
    'missing-feed-forward-length': /missing the required key "llama\.feed_forward_length"/,
    'missing-head-count': /missing the required key "llama\.attention\.head_count"/,
    'missing-tokenizer-model': /missing the required key "tokenizer\.ggml\.model"/,
    'missing-tokens': /missing the required key "tokenizer\.ggml\.tokens"/,
    'duplicate-token': /duplicate token "▁hello"/,
    'tensor-outside-file': /beyond the end of the file/,
    'unsupported-tensor-type': /unsupported type 31/,
    'absurd-array-count': /"tokenizer\.ggml\.merges" claims 4000000000 array elements/,
    'deeply-nested-array': /GGUF metadata "bomb\.nested" nests arrays deeper than 2 levels/,
    'sparse-huge-array': /GGUF metadata "bomb\.bytes" claims 250000000 array elements \(at most 4194304\)/,
    'huge-tensor-count': /GGUF header claims 10000000 tensors, more than 100000/,
  };

  it.each(brokenGgufKinds.map((kind) => [kind]))('refuses a broken file: %s', async (kind) => {
    const path = join(directory, `${kind}.gguf`);
    writeBrokenGguf(path, kind);
    const error: unknown = await inspectGgufFile(path).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(TabAgentError.isInstance(error)).toBe(true);
    expect((error as TabAgentError).code).toBe('invalid_model');
    expect((error as TabAgentError).message).toMatch(expectedMessages[kind]);
  });

  it('refuses a file that does not exist with invalid_model', async () => {
    await expect(inspectGgufFile(join(directory, 'nope.gguf'))).rejects.toMatchObject({ code: 'invalid_model' });
  });
});
