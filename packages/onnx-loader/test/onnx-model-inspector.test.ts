import { join } from 'node:path';
import { stat, writeFile, mkdir } from 'node:fs/promises';
import { inspectOnnxModelFolder, isOnnxModelFolder } from '../src/index.js';
import { writeTinyCrossEncoderModel, writeTinyEmbedderModel, writeTinyTokenClassifierModel } from '../src/test-support/index.js';
import { createTemporaryFolder } from './temporary-folder.js';

let folder: { path: string; remove(): Promise<void> };
beforeAll(async () => {
  folder = await createTemporaryFolder('inspector');
});
afterAll(() => folder.remove());

describe('inspectOnnxModelFolder', () => {
  it('reads task, details and size of each kind without loading', async () => {
    const embedder = await writeTinyEmbedderModel(join(folder.path, 'e'), { maxLength: 64, pooling: 'cls' });
    const reranker = await writeTinyCrossEncoderModel(join(folder.path, 'r'));
    const ner = await writeTinyTokenClassifierModel(join(folder.path, 'n'), { modelFiles: ['onnx/model_quantized.onnx'] });
    expect(await inspectOnnxModelFolder(embedder.folder)).toEqual({
      task: 'embedding',
      details: { architecture: 'BertModel', parameters: null, context_length: 64, quantization: 'fp32', embedding_length: 32, has_chat_template: false },
      sizeBytes: (await stat(join(embedder.folder, 'model.onnx'))).size,
      modelFile: 'model.onnx',
      pooling: 'cls',
    });
    expect(await inspectOnnxModelFolder(reranker.folder)).toMatchObject({
      task: 'rerank',
      details: { architecture: 'BertForSequenceClassification' },
      pooling: null,
    });
    expect(await inspectOnnxModelFolder(ner.folder)).toMatchObject({
      task: 'token-classification',
      details: { quantization: 'int8' },
      modelFile: 'onnx/model_quantized.onnx',
    });
  });

  it('takes an explicit task field over the architecture', async () => {
    const path = join(folder.path, 'explicit');
    await writeTinyEmbedderModel(path, { config: { architectures: ['BertForSequenceClassification'], task: 'feature-extraction' } });
    expect((await inspectOnnxModelFolder(path)).task).toBe('embedding');
  });
});

describe('isOnnxModelFolder', () => {
  it('is true for a model folder and false for anything else, without throwing', async () => {
    const model = await writeTinyEmbedderModel(join(folder.path, 'yes'));
    await mkdir(join(folder.path, 'empty'));
    await writeFile(join(folder.path, 'file.onnx'), 'x');
    expect(await isOnnxModelFolder(model.folder)).toBe(true);
    expect(await isOnnxModelFolder(join(folder.path, 'empty'))).toBe(false);
    expect(await isOnnxModelFolder(join(folder.path, 'file.onnx'))).toBe(false);
    expect(await isOnnxModelFolder(join(folder.path, 'missing'))).toBe(false);
  });
});
