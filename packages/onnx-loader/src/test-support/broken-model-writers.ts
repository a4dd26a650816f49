import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { intAttribute, OnnxGraphBuilder, writeBytes } from './onnx-graph-builder.js';
import { writeTinyEmbedderModel, writeTinyTokenClassifierModel } from './tiny-model-writers.js';
import { writeWordPieceTokenizer } from './wordpiece-tokenizer-writer.js';

/** Every defect `writeBrokenModelFolder` can write, each one a reason to refuse a model. */
export const brokenModelDefects = [
  'missing-model-file',
  'corrupt-model-file',
  'missing-tokenizer',
  'corrupt-tokenizer',
  'corrupt-config',
  'tokenizer-larger-than-embeddings',
  'tokenizer-missing-special-tokens',
  'embedder-wrong-inputs',
  'embedder-wrong-outputs',
  'cross-encoder-several-logits',
  'token-classifier-label-count-mismatch',
  'token-classifier-without-labels',
] as const;

/** One defect of a broken model folder. */
export type BrokenModelDefect = (typeof brokenModelDefects)[number];

/**
 * Writes a model folder with exactly one defect into `folder` (otherwise a valid tiny model).
 * Returns the task the folder claims, so a test can load it as that task.
 */
export async function writeBrokenModelFolder(folder: string, defect: BrokenModelDefect): Promise<{ task: 'embedding' | 'rerank' | 'token-classification' }> {
  switch (defect) {
    case 'missing-model-file':
      await writeTinyEmbedderModel(folder, { modelFiles: [] });
      return { task: 'embedding' };
    case 'corrupt-model-file':
      await writeTinyEmbedderModel(folder, { modelFiles: [] });
      await writeBytes(join(folder, 'model.onnx'), randomBytes(2048));
      return { task: 'embedding' };
    case 'missing-tokenizer':
      await writeTinyEmbedderModel(folder);
      await rm(join(folder, 'tokenizer.json'));
      return { task: 'embedding' };
    case 'corrupt-tokenizer':
      await writeTinyEmbedderModel(folder);
      await writeFile(join(folder, 'tokenizer.json'), '{"version": "1.0", "model": {');
      return { task: 'embedding' };
    case 'corrupt-config':
      await writeTinyEmbedderModel(folder);
      await writeFile(join(folder, 'config.json'), '{ not json');
      return { task: 'embedding' };
    case 'tokenizer-larger-than-embeddings':
      await writeTinyEmbedderModel(folder, { embeddingRows: 40 });
      return { task: 'embedding' };
    case 'tokenizer-missing-special-tokens':
      await writeTinyEmbedderModel(folder);
      await writeWordPieceTokenizer(folder, { omitClsAndSep: true });
      return { task: 'embedding' };
    case 'embedder-wrong-inputs': {
      await writeTinyEmbedderModel(folder, { modelFiles: [] });
      const g = new OnnxGraphBuilder();
      const pixels = g.input('pixel_values', 'float', ['batch_size', 3, 8, 8]);
      g.node('ReduceMean', [pixels], [intAttribute('keepdims', 0)], 'pooled');
      g.output('pooled', 'float', []);
      await writeBytes(join(folder, 'model.onnx'), g.encodeModel('image-model'));
      return { task: 'embedding' };
    }
    case 'embedder-wrong-outputs': {
      await writeTinyEmbedderModel(folder, { modelFiles: [] });
      const g = new OnnxGraphBuilder();
      const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
      g.input('attention_mask', 'int64', ['batch_size', 'sequence_length']);
      g.node('Cast', [ids], [intAttribute('to', 1)], 'scores');
      g.output('scores', 'float', ['batch_size', 'sequence_length']);
      await writeBytes(join(folder, 'model.onnx'), g.encodeModel('scores-model'));
      return { task: 'embedding' };
    }
    case 'cross-encoder-several-logits': {
      // A token classifier's graph ([B, S, 3] logits) under a cross-encoder config.
      await writeTinyTokenClassifierModel(folder, {
        labels: ['O', 'B-PER', 'I-PER'],
        config: { architectures: ['BertForSequenceClassification'], id2label: { '0': 'LABEL_0' }, label2id: { LABEL_0: 0 } },
      });
      return { task: 'rerank' };
    }
    case 'token-classifier-label-count-mismatch':
      await writeTinyTokenClassifierModel(folder, { config: { id2label: { '0': 'O', '1': 'B-PER', '2': 'I-PER' } } });
      return { task: 'token-classification' };
    case 'token-classifier-without-labels':
      await writeTinyTokenClassifierModel(folder, { omitId2Label: true });
      return { task: 'token-classification' };
  }
}
