import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ggufModelInspector } from '@tabagent/gguf-loader';
import { writeBrokenGguf, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { TabAgentError } from '@tabagent/values';
import { createModelRegistry, defaultGenerationParams, type ModelRegistry } from '@tabagent/model-cache';

let root: string;
let dataDir: string;
let outside: string;
let registry: ModelRegistry;

async function caught(promise: Promise<unknown>): Promise<TabAgentError> {
  const error: unknown = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(TabAgentError.isInstance(error)).toBe(true);
  return error as TabAgentError;
}

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'registry-'));
  dataDir = path.join(root, 'data');
  outside = path.join(root, 'elsewhere');
  mkdirSync(path.join(dataDir, 'models', 'family'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  registry = createModelRegistry({ dataDir, inspectors: [ggufModelInspector], modelDirs: [outside] });
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('model registry', () => {
  it('lists .gguf files in the models folder (one level deep) with header details and deduplicated ids', async () => {
    const first = writeTinyLlamaGguf(path.join(dataDir, 'models', 'tiny.gguf'), { chatTemplate: '{{x}}' });
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'family', 'tiny.gguf'), { tensorType: 'F32' });
    writeFileSync(path.join(dataDir, 'models', 'notes.txt'), 'not a model');
    const models = await registry.list();
    expect(models.map((model) => [model.id, model.path, model.source])).toEqual([
      ['tiny', path.join(dataDir, 'models', 'tiny.gguf'), 'models-folder'],
      ['tiny-2', path.join(dataDir, 'models', 'family', 'tiny.gguf'), 'models-folder'],
    ]);
    const tiny = await registry.get('tiny');
    expect(tiny).toMatchObject({
      format: 'gguf',
      task: 'text-generation',
      details: {
        architecture: 'llama',
        parameters: first.parameters,
        context_length: 2048,
        quantization: 'F16',
        embedding_length: 64,
        has_chat_template: true,
      },
    });
    expect((await registry.get('tiny-2')).details.quantization).toBe('F32');
  });

  it('sees a model added to the models folder or a subfolder, or removed, on the next lookup; a file changed in place once the scan expires', async () => {
    const cached = createModelRegistry({ dataDir, inspectors: [ggufModelInspector], scanTtlMs: 60_000 });
    expect(await cached.list()).toEqual([]);
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'top.gguf'));
    expect((await cached.list()).map((model) => model.id)).toEqual(['top']);
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'family', 'nested.gguf'));
    expect((await cached.list()).map((model) => model.id)).toEqual(['top', 'nested']);
    rmSync(path.join(dataDir, 'models', 'top.gguf'));
    expect((await cached.list()).map((model) => model.id)).toEqual(['nested']);
    // Rewritten in place: no folder changes, so the 60 s scan still answers; a registry whose scans expire at once sees it.
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'family', 'nested.gguf'), { tensorType: 'F32' });
    expect((await cached.get('nested')).details.quantization).toBe('F16');
    const fresh = createModelRegistry({ dataDir, inspectors: [ggufModelInspector], scanTtlMs: 0 });
    expect((await fresh.get('nested')).details.quantization).toBe('F32');
    // What a caller does to an answer does not change the next one.
    const answer = await cached.get('nested');
    answer.details.quantization = 'changed';
    expect((await cached.get('nested')).details.quantization).toBe('F16');
  });

  it('reads the models folder once for lookups that miss the cached scan at the same moment', async () => {
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'a.gguf'));
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'family', 'b.gguf'));
    const seen: string[] = [];
    const counting = {
      ...ggufModelInspector,
      detect(file: string, fileStat: Stats): boolean {
        seen.push(path.basename(file));
        return ggufModelInspector.detect(file, fileStat);
      },
    };
    const cached = createModelRegistry({ dataDir, inspectors: [counting], scanTtlMs: 60_000 });
    const answers = await Promise.all([cached.list(), cached.list(), cached.get('b')]);
    expect(answers.map((answer) => (Array.isArray(answer) ? answer.map((model) => model.id) : answer.id))).toEqual([['a', 'b'], ['a', 'b'], 'b']);
    // One pass: the top level (a.gguf, family), then the subfolder (b.gguf).
    expect(seen).toEqual(['a.gguf', 'family', 'b.gguf']);
    await cached.list();
    expect(seen).toHaveLength(3);
  });

  it('treats toString and constructor as model names like any other, never as members every object has', async () => {
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'toString.gguf'));
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'plain.gguf'));
    expect((await registry.get('toString')).id).toBe('toString');
    const unknown: [string, string][] = [];
    for (const id of ['constructor', 'hasOwnProperty', '__proto__']) unknown.push([id, (await caught(registry.get(id))).code]);
    expect(unknown).toEqual([
      ['constructor', 'model_not_found'],
      ['hasOwnProperty', 'model_not_found'],
      ['__proto__', 'model_not_found'],
    ]);
    expect((await caught(registry.remove('constructor'))).code).toBe('model_not_found');
    expect(await registry.aliasTarget('valueOf')).toBeUndefined();
    await registry.setAlias('constructor', 'plain');
    expect(await registry.aliasTarget('constructor')).toBe('plain');
    expect((await registry.get('constructor')).id).toBe('plain');
  });

  it('answers model_not_found for an unknown id and invalid_model for a broken file, and lists only good models', async () => {
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'good.gguf'));
    writeBrokenGguf(path.join(dataDir, 'models', 'broken.gguf'), 'duplicate-token');
    expect((await registry.list()).map((model) => model.id)).toEqual(['good']);
    expect((await caught(registry.get('nope'))).code).toBe('model_not_found');
    const broken = await caught(registry.get('broken'));
    expect(broken.code).toBe('invalid_model');
    expect(broken.message).toMatch(/duplicate token/);
  });

  it('registers an outside path (persisted), unregisters it on delete and keeps the file', async () => {
    const file = path.join(outside, 'mine.gguf');
    writeTinyLlamaGguf(file);
    const model = await registry.register(file);
    expect(model).toMatchObject({ id: 'mine', source: 'registered', path: file });
    const reopened = createModelRegistry({ dataDir, inspectors: [ggufModelInspector], modelDirs: [outside] });
    expect((await reopened.list()).map((entry) => entry.id)).toEqual(['mine']);
    const stored = JSON.parse(readFileSync(path.join(dataDir, 'models.json'), 'utf8')) as { registered: { path: string }[] };
    expect(stored.registered.map((entry) => entry.path)).toEqual([file]);
    expect(await registry.remove('mine')).toBe('unregistered');
    expect(existsSync(file)).toBe(true);
    expect(await registry.list()).toEqual([]);
  });

  it('registers with an explicit id and refuses relative, missing, non-model and broken paths with one message', async () => {
    const file = path.join(outside, 'x.gguf');
    writeTinyLlamaGguf(file);
    expect((await registry.register(file, { id: 'custom' })).id).toBe('custom');
    writeFileSync(path.join(outside, 'a.txt'), 'x');
    writeBrokenGguf(path.join(outside, 'bad.gguf'), 'missing-head-count');
    for (const candidate of ['models/x.gguf', path.join(outside, 'missing.gguf'), path.join(outside, 'a.txt'), path.join(outside, 'bad.gguf')]) {
      const error = await caught(registry.register(candidate));
      expect({ candidate, code: error.code, message: error.message }).toEqual({
        candidate,
        code: 'invalid_request',
        message: 'Only a GGUF file or an ONNX model folder inside the models folder or a folder given with --model-dir can be registered',
      });
    }
    const other = path.join(outside, 'y.gguf');
    writeTinyLlamaGguf(other);
    expect((await caught(registry.register(other, { id: 'custom' }))).code).toBe('conflict');
  });

  it('logs the same refusal for an outside file that exists and one that does not (the log is served by /v1/logs)', async () => {
    const logged: unknown[] = [];
    const logging = createModelRegistry({
      dataDir,
      inspectors: [ggufModelInspector],
      modelDirs: [outside],
      logger: { warn: (fields: object | string, message?: string) => logged.push([fields, message]) },
    });
    const secret = path.join(root, 'not-allowed', 'id_ed25519');
    mkdirSync(path.dirname(secret));
    writeFileSync(secret, 'private key');
    for (const candidate of [secret, path.join(root, 'not-allowed', 'no-such-file')]) await caught(logging.register(candidate));
    expect(logged).toEqual([
      [{ path: secret, reason: 'outside the models folder and --model-dir folders' }, 'models.register refused'],
      [{ path: path.join(root, 'not-allowed', 'no-such-file'), reason: 'outside the models folder and --model-dir folders' }, 'models.register refused'],
    ]);
  });

  it('refuses any path outside the models folder and --model-dir folders, links included, revealing nothing and storing nothing', async () => {
    const elsewhere = path.join(root, 'not-allowed');
    mkdirSync(elsewhere);
    writeTinyLlamaGguf(path.join(elsewhere, 'real.gguf'));
    symlinkSync(path.join(elsewhere, 'real.gguf'), path.join(dataDir, 'models', 'link-out.gguf'));
    const messages = new Set<string>();
    for (const candidate of [
      '/etc/passwd',
      '/etc/shadow',
      '/etc/no-such-file',
      path.join(elsewhere, 'real.gguf'),
      path.join(dataDir, 'models', 'link-out.gguf'),
    ]) {
      const error = await caught(registry.register(candidate));
      expect({ candidate, code: error.code }).toEqual({ candidate, code: 'invalid_request' });
      messages.add(error.message);
    }
    expect([...messages]).toEqual(['Only a GGUF file or an ONNX model folder inside the models folder or a folder given with --model-dir can be registered']);
    expect(existsSync(path.join(dataDir, 'models.json'))).toBe(false);
  });

  it('deletes files inside the models folder only, and never follows a link out of it', async () => {
    const inside = path.join(dataDir, 'models', 'inside.gguf');
    writeTinyLlamaGguf(inside);
    await registry.setDefaultModel('inside');
    expect(await registry.remove('inside')).toBe('deleted');
    expect(existsSync(inside)).toBe(false);
    expect(await registry.defaultModel()).toBeNull();

    const target = path.join(outside, 'target.gguf');
    writeTinyLlamaGguf(target);
    symlinkSync(target, path.join(dataDir, 'models', 'link.gguf'));
    expect((await caught(registry.remove('link'))).code).toBe('forbidden');
    expect(existsSync(target)).toBe(true);
  });

  it('selects a default model (persisted) and refuses an unknown one', async () => {
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'a.gguf'));
    expect(await registry.defaultModel()).toBeNull();
    await registry.setDefaultModel('a');
    expect(await createModelRegistry({ dataDir, inspectors: [ggufModelInspector] }).defaultModel()).toBe('a');
    expect((await caught(registry.setDefaultModel('zzz'))).code).toBe('model_not_found');
  });

  it('persists per-model settings and generation defaults atomically', async () => {
    writeTinyLlamaGguf(path.join(dataDir, 'models', 'a.gguf'));
    await registry.setModelSettings('a', { context_size: 512 });
    await registry.setModelSettings('a', { threads: 2 });
    expect((await registry.get('a')).settings).toEqual({ context_size: 512, threads: 2 });

    expect(await registry.getGenerationParams()).toEqual(defaultGenerationParams);
    const updated = await registry.setGenerationParams({ temperature: 0.2, stop: ['END'] });
    expect(updated).toEqual({ ...defaultGenerationParams, temperature: 0.2, stop: ['END'] });
    expect(await createModelRegistry({ dataDir, inspectors: [ggufModelInspector] }).getGenerationParams()).toEqual(updated);
    expect((await caught(registry.setGenerationParams({ temperature: 5 }))).code).toBe('invalid_request');
    expect(JSON.parse(readFileSync(path.join(dataDir, 'settings.json'), 'utf8'))).toEqual({ generation: updated });
  });
});
