import type { HubFile } from '@tabagent/model-cache';
import { onnxModelInspector, onnxVariantKey } from './onnx-model-backend.js';

const file = (filePath: string, size = 10): HubFile => ({ path: filePath, size, sha256: null, gitOid: 'b'.repeat(40) });

describe('onnxModelInspector.hubVariants', () => {
  it('offers each ONNX file with the folder files it needs, preferred first, each variant in its own folder', () => {
    const variants = onnxModelInspector.hubVariants?.(
      [
        file('onnx/model_q4f16.onnx', 100),
        file('onnx/model.onnx', 400),
        file('onnx/model_quantized.onnx', 120),
        file('onnx/model_fp16.onnx', 200),
        file('onnx/model_fp16.onnx_data', 2000),
        file('config.json'),
        file('tokenizer.json'),
        file('tokenizer_config.json'),
        file('1_Pooling/config.json'),
        file('README.md'),
        file('model.safetensors', 999),
      ],
      'Xenova/all-MiniLM-L6-v2',
    );
    const support = ['config.json', 'tokenizer.json', 'tokenizer_config.json', '1_Pooling/config.json'];
    expect(variants?.map((variant) => [variant.key, variant.modelPath, variant.totalBytes, variant.files.map((entry) => entry.path)])).toEqual([
      ['fp32', 'all-MiniLM-L6-v2', 440, ['onnx/model.onnx', ...support]],
      ['quantized', 'all-MiniLM-L6-v2-quantized', 160, ['onnx/model_quantized.onnx', ...support]],
      ['fp16', 'all-MiniLM-L6-v2-fp16', 2240, ['onnx/model_fp16.onnx', 'onnx/model_fp16.onnx_data', ...support]],
      ['q4f16', 'all-MiniLM-L6-v2-q4f16', 140, ['onnx/model_q4f16.onnx', ...support]],
    ]);
    expect(variants?.[1]?.files[0]?.target).toBe('all-MiniLM-L6-v2-quantized/onnx/model_quantized.onnx');
  });

  it('offers nothing without tokenizer.json, which every ONNX model here needs', () => {
    expect(onnxModelInspector.hubVariants?.([file('onnx/model.onnx'), file('config.json')], 'a/b')).toEqual([]);
  });

  it.each([
    ['model.onnx', 'fp32'],
    ['onnx/model.onnx', 'fp32'],
    ['onnx/model_q4f16.onnx', 'q4f16'],
    ['onnx/decoder_model.onnx', null],
  ])('keys %s as %s', (name, key) => {
    expect(onnxVariantKey(name)).toBe(key);
  });
});
