import { join } from 'node:path';
import { createOnnxCrossEncoder, createOnnxTextEmbedder, createOnnxTokenClassifier, inspectOnnxModelFolder } from '../src/index.js';
import {
  brokenModelDefects,
  writeBrokenModelFolder,
  writeTinyCrossEncoderModel,
  writeTinyEmbedderModel,
  type BrokenModelDefect,
} from '../src/test-support/index.js';
import { createTemporaryFolder } from './temporary-folder.js';

let folder: { path: string; remove(): Promise<void> };
beforeAll(async () => {
  folder = await createTemporaryFolder('bad-models');
});
afterAll(() => folder.remove());

const expectedMessages: Record<BrokenModelDefect, RegExp> = {
  'missing-model-file': /^No ONNX model file in .* \(looked for model\.onnx and onnx\/model\*\.onnx\)$/,
  'corrupt-model-file': /^ONNX Runtime could not load .*model\.onnx: .*Protobuf parsing failed/,
  'missing-tokenizer': /^tokenizer\.json is missing or unreadable: /,
  'corrupt-tokenizer': /^tokenizer\.json is not a valid JSON object: /,
  'corrupt-config': /^config\.json is not a valid JSON object: /,
  'tokenizer-larger-than-embeddings': /^The tokenizer does not match the model: running token id 176 \(the tokenizer's largest\) failed: .*out of data bounds/,
  'tokenizer-missing-special-tokens': /^tokenizer\.json adds the special token \[CLS\] but its vocabulary has no such token$/,
  'embedder-wrong-inputs': /^The graph does not take input_ids \(its inputs: pixel_values\); it is not a text encoder$/,
  'embedder-wrong-outputs':
    /^The graph has no embedding output: expected sentence_embedding \[batch, dim\] or last_hidden_state \[batch, tokens, dim\]; it has scores$/,
  'cross-encoder-several-logits': /^A rerank model needs one logit per pair \(\[batch, 1\]\); graph output logits has shape \[1, 4, 3\]$/,
  'token-classifier-label-count-mismatch': /^Graph output logits has shape \[1, 4, 5\]; expected \[batch, tokens, 3\] for the 3 labels in config\.json$/,
  'token-classifier-without-labels': /^config\.json of a token-classification model must give id2label/,
};

function loaderFor(task: 'embedding' | 'rerank' | 'token-classification') {
  const options = { threads: 1 };
  if (task === 'embedding') return (path: string) => createOnnxTextEmbedder(path, options);
  if (task === 'rerank') return (path: string) => createOnnxCrossEncoder(path, options);
  return (path: string) => createOnnxTokenClassifier(path, options);
}

describe('bad model folders', () => {
  it.each(brokenModelDefects.map((defect) => [defect]))('refuses %s with a clear invalid_model error', async (defect) => {
    const path = join(folder.path, defect);
    const { task } = await writeBrokenModelFolder(path, defect);
    const error: unknown = await loaderFor(task)(path).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'invalid_model', name: 'InvalidModelError' });
    expect((error as Error).message).toMatch(expectedMessages[defect]);
  });

  it('refuses a folder that does not exist', async () => {
    await expect(createOnnxTextEmbedder(join(folder.path, 'nowhere'))).rejects.toMatchObject({
      code: 'invalid_model',
      message: expect.stringMatching(/^Model folder does not exist: /),
    });
  });

  it('refuses to load an embedding model as a cross-encoder, and the reverse', async () => {
    const embedder = await writeTinyEmbedderModel(join(folder.path, 'an-embedder'));
    const crossEncoder = await writeTinyCrossEncoderModel(join(folder.path, 'a-cross-encoder'));
    await expect(createOnnxCrossEncoder(embedder.folder, { threads: 1 })).rejects.toMatchObject({
      code: 'invalid_model',
      message: `${embedder.folder} is a model for embedding, not for rerank`,
    });
    await expect(createOnnxTextEmbedder(crossEncoder.folder, { threads: 1 })).rejects.toMatchObject({
      code: 'invalid_model',
      message: `${crossEncoder.folder} is a model for rerank, not for embedding`,
    });
  });

  it('refuses a sequence classifier with several labels as a rerank model', async () => {
    const path = join(folder.path, 'sentiment');
    await writeTinyCrossEncoderModel(path, { config: { id2label: { '0': 'NEGATIVE', '1': 'POSITIVE' } } });
    const message = 'A sequence classifier with 2 labels is not a cross-encoder; only one-logit rerank models are supported (or set "task" in config.json)';
    await expect(inspectOnnxModelFolder(path)).rejects.toMatchObject({ code: 'invalid_model', message });
    await expect(createOnnxCrossEncoder(path, { threads: 1 })).rejects.toMatchObject({ code: 'invalid_model', message });
  });

  it('refuses an unsupported explicit task in config.json when inspecting', async () => {
    const path = join(folder.path, 'odd-task');
    await writeTinyEmbedderModel(path, { config: { task: 'image-segmentation' } });
    await expect(inspectOnnxModelFolder(path)).rejects.toMatchObject({
      code: 'invalid_model',
      message: 'config.json names an unsupported task: image-segmentation',
    });
  });
});
