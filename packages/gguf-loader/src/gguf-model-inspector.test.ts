import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HubFile } from '@tabagent/model-cache';
import { ggufModelInspector, quantOfFileName } from './gguf-model-inspector.js';

const file = (filePath: string, size = 100): HubFile => ({ path: filePath, size, sha256: 'a'.repeat(64), gitOid: null });

describe('quantOfFileName', () => {
  it.each([
    ['Llama-3.2-1B-Instruct-Q4_K_M.gguf', 'Q4_K_M'],
    ['qwen2.5-0.5b-instruct-q4_k_m.gguf', 'Q4_K_M'],
    ['model.Q8_0.gguf', 'Q8_0'],
    ['Phi-3-mini-4k-instruct-IQ4_XS.gguf', 'IQ4_XS'],
    ['gemma-2b-it-f16.gguf', 'F16'],
    ['Big-Q5_K_S-00001-of-00003.gguf', 'Q5_K_S'],
    ['Q4_K_M/Model-Q4_K_M-00002-of-00002.gguf', 'Q4_K_M'],
    ['model.gguf', null],
  ])('%s carries %s', (name, quant) => {
    expect(quantOfFileName(name)).toBe(quant);
  });
});

describe('ggufModelInspector.hubVariants', () => {
  it('offers one variant per quantisation, best default first, without mmproj; a split model is every part in a folder', () => {
    const variants = ggufModelInspector.hubVariants(
      [
        file('Model-Q8_0.gguf', 800),
        file('Model-Q4_K_M.gguf', 400),
        file('mmproj-Model-F16.gguf', 50),
        file('Model-F16/Model-F16-00002-of-00002.gguf', 900),
        file('Model-F16/Model-F16-00001-of-00002.gguf', 1000),
        file('Model-Q2_K-00001-of-00002.gguf', 10),
        file('README.md', 5),
      ],
      'acme/Model-GGUF',
    );
    expect(variants.map((variant) => [variant.key, variant.totalBytes, variant.modelPath, variant.files.map((entry) => entry.target)])).toEqual([
      ['Q4_K_M', 400, 'Model-Q4_K_M.gguf', ['Model-Q4_K_M.gguf']],
      ['Q8_0', 800, 'Model-Q8_0.gguf', ['Model-Q8_0.gguf']],
      ['F16', 1900, 'Model-F16/Model-F16-00001-of-00002.gguf', ['Model-F16/Model-F16-00001-of-00002.gguf', 'Model-F16/Model-F16-00002-of-00002.gguf']],
    ]);
  });
});

describe('ggufModelInspector on disk', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(path.join(tmpdir(), 'gguf-inspector-'));
    for (const name of ['Big-00001-of-00002.gguf', 'Big-00002-of-00002.gguf', 'small.gguf']) writeFileSync(path.join(folder, name), 'x');
  });
  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  it('detects a split model by its first part only and names it without the split suffix', () => {
    const detect = (name: string): boolean => ggufModelInspector.detect(path.join(folder, name), statSync(path.join(folder, name)));
    expect(['Big-00001-of-00002.gguf', 'Big-00002-of-00002.gguf', 'small.gguf'].map(detect)).toEqual([true, false, true]);
    expect(ggufModelInspector.idOf(path.join(folder, 'Big-00001-of-00002.gguf'))).toBe('Big');
    expect(ggufModelInspector.idOf(path.join(folder, 'small.gguf'))).toBe('small');
  });
});
