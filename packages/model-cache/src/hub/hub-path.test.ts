import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { containedPath, unsafePathReason } from './hub-path.js';

describe('unsafePathReason', () => {
  it('accepts the names real repositories use', () => {
    const names = [
      'model.onnx',
      'onnx/model_quantized.onnx',
      'onnx/model.onnx_data',
      'Qwen2.5-0.5B-Instruct-Q4_K_M.gguf',
      'Q8_0/model-00001-of-00002.gguf',
      '.gitattributes',
      '1_Pooling/config.json',
      'auxiliary.json',
    ];
    expect(names.map(unsafePathReason)).toEqual(names.map(() => null));
  });

  it('names what is wrong with each hostile name', () => {
    const reasons = Object.fromEntries(
      [
        '',
        '/etc/passwd',
        '../x.gguf',
        'sub/../../x.gguf',
        'a/./b',
        'a//b',
        'model.onnx_data\\..\\..\\Startup\\x.cmd',
        'C:x.gguf',
        'model.gguf:stream',
        'a\u0000b',
        'line\nbreak',
        'CON',
        'nul.txt',
        'sub/COM1.gguf',
        'lpt9',
        'trailing.',
        'trailing ',
        `${'a'.repeat(256)}.gguf`,
      ].map((name) => [name, unsafePathReason(name)]),
    );
    expect(reasons).toEqual({
      '': 'it is empty',
      '/etc/passwd': 'it is absolute',
      '../x.gguf': 'it has a ".." segment',
      'sub/../../x.gguf': 'it has a ".." segment',
      'a/./b': 'it has a "." segment',
      'a//b': 'it has a "" segment',
      'model.onnx_data\\..\\..\\Startup\\x.cmd': 'it holds a backslash',
      'C:x.gguf': 'it holds a colon',
      'model.gguf:stream': 'it holds a colon',
      'a\u0000b': 'it holds a control character',
      'line\nbreak': 'it holds a control character',
      CON: '"CON" is a device name on Windows',
      'nul.txt': '"nul.txt" is a device name on Windows',
      'sub/COM1.gguf': '"COM1.gguf" is a device name on Windows',
      lpt9: '"lpt9" is a device name on Windows',
      'trailing.': '"trailing." ends in a dot or a space',
      'trailing ': '"trailing " ends in a dot or a space',
      [`${'a'.repeat(256)}.gguf`]: 'a part of it is longer than 255 bytes',
    });
  });
});

describe('containedPath', () => {
  let root: string;
  let models: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'hub-path-'));
    models = path.join(root, 'models');
    mkdirSync(models);
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('resolves a safe target inside the models folder', async () => {
    await expect(containedPath(models, 'tiny/onnx/model.onnx', 'acme/tiny')).resolves.toBe(path.join(models, 'tiny', 'onnx', 'model.onnx'));
  });

  it('refuses a target with a ".." segment, and one that a symbolic link in the folder leads out of', async () => {
    symlinkSync(root, path.join(models, 'link'));
    for (const target of ['../..-00001-of-00001.gguf', 'link/escaped.gguf', 'link/deeper/escaped.gguf'])
      await expect(containedPath(models, target, 'evil/repo')).rejects.toMatchObject({
        code: 'upstream_error',
        message: `evil/repo would save a file as ${JSON.stringify(target)}, which is not inside the models folder; nothing was downloaded.`,
      });
  });
});
