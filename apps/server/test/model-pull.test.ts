import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { pino } from 'pino';
import { chatMlToolsTemplate, writeBrokenGguf, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { startFakeHub, type FakeHub, type FakeHubFile } from '@tabagent/model-cache/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';
import { cliPath, ServerProcess } from './support/server-process.js';

// Pulls from a fake Hugging Face Hub over real HTTP (HF_ENDPOINT pointed at it), through the
// whole server: HTTP with SSE progress, the official openai and ollama clients, native messaging
// in a child process, and the CLI.

let hub: FakeHub;
let fixtures: string;
let ggufBytes: Buffer;

function filesOf(folder: string, prefix = ''): FakeHubFile[] {
  return readdirSync(path.join(folder, prefix), { withFileTypes: true }).flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? filesOf(folder, relative) : [{ path: relative, content: readFileSync(path.join(folder, relative)) }];
  });
}

beforeAll(async () => {
  hub = await startFakeHub();
  fixtures = mkdtempSync(path.join(tmpdir(), 'pull-fixtures-'));
  writeTinyLlamaGguf(path.join(fixtures, 'tiny.gguf'), { chatTemplate: chatMlToolsTemplate });
  ggufBytes = readFileSync(path.join(fixtures, 'tiny.gguf'));
  await hub.addRepo('acme/Tiny-GGUF', {
    files: [
      { path: 'Tiny-Q8_0.gguf', content: ggufBytes },
      { path: 'Tiny-Q4_K_M.gguf', content: ggufBytes },
      { path: 'mmproj-Tiny-F16.gguf', content: Buffer.from('not a text model') },
      { path: 'README.md', content: Buffer.from('# Tiny\n') },
    ],
  });
  await hub.addRepo('acme/Broken-GGUF', { files: [{ path: 'Broken-Q4_K_M.gguf', content: Buffer.from('GGUF but not really a model file at all') }] });
  const embedder = path.join(fixtures, 'embedder');
  await writeTinyEmbedderModel(embedder, { modelFiles: ['onnx/model.onnx', 'onnx/model_quantized.onnx'] });
  await hub.addRepo('acme/tiny-embedder', { files: filesOf(embedder) });
}, 60_000);

afterAll(async () => {
  await hub.close();
  rmSync(fixtures, { recursive: true, force: true });
});

beforeEach(() => {
  hub.faults = {};
  hub.requests.length = 0;
});

const cdnRanges = () => hub.requests.filter((request) => request.server === 'cdn').map((request) => request.range);

/** The SSE events of a response body, parsed. */
async function sseEvents(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .map((block) => block.replace(/^data: /u, '').trim())
    .filter((data) => data !== '' && data !== '[DONE]')
    .map((data) => JSON.parse(data) as Record<string, unknown>);
}

describe('pulling through a running server', () => {
  let root: string;
  let server: RunningServer;
  let base: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'pull-server-'));
    const config = parseServeArguments(['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off', '--hf-endpoint', hub.url], {});
    server = await startServer(config, { logger: pino({ level: 'silent' }) });
    base = server.httpUrl as string;
  }, 60_000);

  afterAll(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });

  const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('scans a repository: GGUF quantisations with sizes, mmproj left out, the default marked', async () => {
    const response = await fetch(`${base}/v1/models/scan?model=${encodeURIComponent('hf.co/acme/Tiny-GGUF')}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      repo: 'acme/Tiny-GGUF',
      revision: 'main',
      variants: [
        {
          key: 'Q4_K_M',
          format: 'gguf',
          task: null,
          files: [{ path: 'Tiny-Q4_K_M.gguf', size: ggufBytes.length }],
          total_bytes: ggufBytes.length,
          fits: true,
          default: true,
        },
        {
          key: 'Q8_0',
          format: 'gguf',
          task: null,
          files: [{ path: 'Tiny-Q8_0.gguf', size: ggufBytes.length }],
          total_bytes: ggufBytes.length,
          fits: true,
          default: false,
        },
      ],
      default_variant: 'Q4_K_M',
    });
  });

  it('pulls a GGUF by quant tag with SSE progress, then the openai client chats with it by its hf.co name', async () => {
    const response = await post('/v1/models/pull', { model: 'hf.co/acme/Tiny-GGUF:Q8_0', stream: true }, { 'x-request-id': 'pull-gguf-1' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const events = await sseEvents(response);
    expect(events[0]).toEqual({ status: 'resolving', request_id: 'pull-gguf-1' });
    expect(events[1]).toEqual({
      status: 'downloading',
      file: 'Tiny-Q8_0.gguf',
      completed: 0,
      total: ggufBytes.length,
      bytes_per_second: 0,
      request_id: 'pull-gguf-1',
    });
    expect(events.filter((event) => event['status'] === 'downloading').at(-1)).toMatchObject({ completed: ggufBytes.length, total: ggufBytes.length });
    expect(events.at(-2)).toEqual({ status: 'registering', request_id: 'pull-gguf-1' });
    expect(events.at(-1)).toEqual({
      status: 'completed',
      model: 'Tiny-Q8_0',
      alias: 'hf.co/acme/Tiny-GGUF:Q8_0',
      path: path.join(root, 'models', 'Tiny-Q8_0.gguf'),
      format: 'gguf',
      task: 'text-generation',
      variant: 'Q8_0',
      size_bytes: ggufBytes.length,
      downloaded_bytes: ggufBytes.length,
      files: [{ path: 'Tiny-Q8_0.gguf', size: ggufBytes.length }],
      request_id: 'pull-gguf-1',
    });
    expect(readFileSync(path.join(root, 'models', 'Tiny-Q8_0.gguf')).equals(ggufBytes)).toBe(true);
    // The first download of this server: /metrics counts exactly its bytes, and nothing is in flight.
    const families = parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text());
    const metric = (name: string): string | undefined => families.find((family) => family.name === name)?.metrics[0]?.value;
    expect(metric('tabagent_download_bytes_total')).toBe(String(ggufBytes.length));
    expect(metric('tabagent_downloads_active')).toBe('0');

    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused' });
    const listed = await client.models.list();
    expect(listed.data.map((model) => model.id)).toEqual(expect.arrayContaining(['Tiny-Q8_0', 'hf.co/acme/Tiny-GGUF:Q8_0']));
    const completion = await client.chat.completions.create({ model: 'hf.co/acme/Tiny-GGUF:Q8_0', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    expect(completion.model).toBe('Tiny-Q8_0');
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
  }, 60_000);

  it('pulls an ONNX embedding folder laid out as the registry reads it, then embeds with it', async () => {
    const response = await post('/v1/models/pull', { model: 'acme/tiny-embedder' });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'completed',
      model: 'tiny-embedder',
      alias: 'hf.co/acme/tiny-embedder:fp32',
      format: 'onnx',
      task: 'embedding',
      variant: 'fp32',
    });
    const folder = path.join(root, 'models', 'tiny-embedder');
    expect(readdirSync(folder).sort()).toEqual(['1_Pooling', 'config.json', 'onnx', 'tokenizer.json', 'tokenizer_config.json']);
    expect(readdirSync(path.join(folder, 'onnx'))).toEqual(['model.onnx']);
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused' });
    const embedded = await client.embeddings.create({ model: 'hf.co/acme/tiny-embedder', input: ['a cat', 'a dog'] });
    expect(embedded.data).toHaveLength(2);
    expect(embedded.data[0]?.embedding.length).toBe(32);
  }, 60_000);

  it('refuses a download whose model file the GGUF check rejects, and lists nothing for it', async () => {
    const response = await post('/v1/models/pull', { model: 'acme/Broken-GGUF' });
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ code: 'invalid_model' });
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((model) => model.id)).not.toContain('Broken-Q4_K_M');
    // Inspected while staged: the file never reached the models folder.
    expect(existsSync(path.join(root, 'models', 'Broken-Q4_K_M.gguf'))).toBe(false);
  });

  it('answers a problem with its status before the stream starts: unknown repository, gated, no disk space', async () => {
    const missing = await post('/v1/models/pull', { model: 'acme/nothing', stream: true });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'model_not_found' });
    hub.faults = { declaredSizes: { 'Tiny-Q4_K_M.gguf': 2 ** 52 } };
    const full = await post('/v1/models/pull', { model: 'acme/Tiny-GGUF:Q4_K_M', stream: true });
    expect(full.status).toBe(507);
    expect(await full.json()).toMatchObject({ code: 'insufficient_storage' });
    expect(cdnRanges()).toEqual([]);
  });

  it('stops a pull by its request id with the generations stop route, lists the partial, and resumes it', async () => {
    hub.faults = { throttleBytesPerSecond: 200 * 1024 };
    const pulling = post('/v1/models/pull', { model: 'acme/Tiny-GGUF:Q4_K_M', stream: true }, { 'x-request-id': 'pull-to-stop' });
    const response = await pulling;
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    let downloads: { downloads: { file: string; completed: number; active: boolean }[] };
    do {
      await new Promise((resolve) => setTimeout(resolve, 100));
      downloads = (await (await fetch(`${base}/v1/models/downloads`)).json()) as typeof downloads;
    } while ((downloads.downloads[0]?.completed ?? 0) < 64 * 1024);
    expect(downloads.downloads[0]).toMatchObject({ file: 'Tiny-Q4_K_M.gguf', active: true });
    const stop = await post('/v1/generation/stop', { request_id: 'pull-to-stop' });
    expect(await stop.json()).toEqual({ status: 'stopped', request_id: 'pull-to-stop', stopped: 1 });
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += Buffer.from(chunk.value).toString('utf8');
    expect(rest).toContain('"code":"cancelled"');

    let partial: { completed: number; active: boolean } | undefined;
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      partial = ((await (await fetch(`${base}/v1/models/downloads`)).json()) as typeof downloads).downloads[0];
    } while (partial?.active !== false);
    const kept = statSync(
      path.join(root, 'models', '.downloads', readdirSync(path.join(root, 'models', '.downloads')).find((name) => name.endsWith('.partial')) as string),
    ).size;
    expect(partial.completed).toBe(kept);
    hub.faults = {};
    hub.requests.length = 0;
    const resumed = await post('/v1/models/pull', { model: 'acme/Tiny-GGUF:Q4_K_M' });
    expect(await resumed.json()).toMatchObject({ status: 'completed', model: 'Tiny-Q4_K_M', downloaded_bytes: ggufBytes.length - kept });
    expect(cdnRanges()).toEqual([`bytes=${kept}-`]);
    expect(((await (await fetch(`${base}/v1/models/downloads`)).json()) as typeof downloads).downloads).toEqual([]);
  }, 60_000);

  it('serves Ollama /api/pull to the official ollama client as progress lines, and the model is then listed', async () => {
    const ollama = new Ollama({ host: base });
    const statuses: string[] = [];
    for await (const progress of await ollama.pull({ model: 'hf.co/acme/Tiny-GGUF', stream: true })) statuses.push(progress.status);
    // Q4_K_M is already there from the resumed pull above: nothing to download.
    expect(statuses).toEqual(['pulling manifest', 'writing manifest', 'success']);

    const lines: { status: string; total?: number; completed?: number }[] = [];
    for await (const progress of await ollama.pull({ model: 'acme/tiny-embedder:quantized', stream: true })) lines.push(progress);
    const distinct = lines.map((line) => line.status).filter((status, index, all) => status !== all[index - 1]);
    expect(distinct.slice(0, 4)).toEqual(['pulling manifest', 'pulling onnx/model_quantized.onnx', 'verifying sha256 digest', 'pulling config.json']);
    expect(distinct.slice(-2)).toEqual(['writing manifest', 'success']);
    const model = lines.filter((line) => line.status === 'pulling onnx/model_quantized.onnx').at(-1);
    expect(model?.completed).toBe(model?.total);

    const names = (await ollama.list()).models.map((entry) => entry.name);
    expect(names).toEqual(expect.arrayContaining(['hf.co/acme/Tiny-GGUF:Q4_K_M', 'hf.co/acme/tiny-embedder:quantized']));
  }, 60_000);

  it('lists recommended models for a newcomer, filtered by what fits', async () => {
    const all = (await (await fetch(`${base}/v1/models/recommended?all=true`)).json()) as {
      models: { pull: string; fits: boolean; task: string }[];
      total: number;
    };
    expect(all.total).toBe(9);
    expect(all.models[0]).toMatchObject({ pull: 'hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', task: 'text-generation' });
    const fitting = (await (await fetch(`${base}/v1/models/recommended`)).json()) as { models: { fits: boolean }[] };
    expect(fitting.models.every((model) => model.fits)).toBe(true);
    expect(fitting.models.length).toBe(all.models.filter((model) => model.fits).length);
  });

  it('counts two pulls of one file that start together as one download: one active, its bytes once', async () => {
    await hub.addRepo('acme/Twice-GGUF', { files: [{ path: 'Twice-Q8_0.gguf', content: ggufBytes }] });
    const metrics = async (): Promise<Map<string, number>> => {
      const families = parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text());
      return new Map(families.map((family) => [family.name, Number(family.metrics[0]?.value)]));
    };
    const before = (await metrics()).get('tabagent_download_bytes_total') ?? 0;
    hub.faults = { throttleBytesPerSecond: 400 * 1024 };
    const pulls = [post('/v1/models/pull', { model: 'acme/Twice-GGUF:Q8_0' }), post('/v1/models/pull', { model: 'acme/Twice-GGUF:Q8_0' })];
    let active = 0;
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      active = (await metrics()).get('tabagent_downloads_active') ?? 0;
    } while (active === 0);
    expect(active).toBe(1);
    const answers = await Promise.all(pulls);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    const after = await metrics();
    expect([after.get('tabagent_download_bytes_total'), after.get('tabagent_downloads_active')]).toEqual([before + ggufBytes.length, 0]);
    expect(cdnRanges()).toHaveLength(1);
  }, 60_000);
});

describe('hostile repositories (a hostile Hub mirror at HF_ENDPOINT, or a hostile upload)', () => {
  let outer: string;
  let server: RunningServer;
  let base: string;

  /** Every file under `folder`, relative to it. */
  const allFiles = (folder: string, prefix = ''): string[] =>
    readdirSync(path.join(folder, prefix), { withFileTypes: true }).flatMap((entry) => {
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      return entry.isDirectory() ? allFiles(folder, relative) : [relative];
    });
  /** What exists outside the models folder, less the server's own database and log (which change with every request). */
  const outsideModels = (): string[] => allFiles(outer).filter((file) => !file.startsWith('data/models/') && !/^data\/(?:tabagent\.db|logs\/)/u.test(file));

  beforeAll(async () => {
    // The data directory one level down, so that a file escaping it lands where the test sees it.
    outer = mkdtempSync(path.join(tmpdir(), 'pull-hostile-'));
    const embedder = filesOf(path.join(fixtures, 'embedder'));
    const weights = Buffer.from('weights of an external-data file');
    await hub.addRepo('evil/onnx-dots', { files: [...embedder, { path: 'onnx/model.onnx_data/../../../../../escape-dots.txt', content: weights }] });
    await hub.addRepo('evil/onnx-backslash', { files: [...embedder, { path: 'onnx/model.onnx_data\\..\\..\\..\\..\\escape.cmd', content: weights }] });
    // A name git and the Hub accept: a split GGUF whose stem is `..`, saved as `<stem>/<name>`.
    await hub.addRepo('evil/split-dots', { files: [{ path: '..-00001-of-00001.gguf', content: ggufBytes }] });
    await hub.addRepo('evil/device-name', { files: [{ path: 'aux.gguf', content: ggufBytes }] });
    // Header bombs: a 20,000-deep nest of arrays, and an array claiming 4 billion elements.
    for (const kind of ['deeply-nested-array', 'absurd-array-count'] as const) {
      const crafted = path.join(outer, `${kind}.gguf`);
      writeBrokenGguf(crafted, kind);
      await hub.addRepo(`evil/${kind}`, { files: [{ path: `Bomb-Q4_K_M.gguf`, content: readFileSync(crafted) }] });
      rmSync(crafted);
    }
    const config = parseServeArguments(['--port', '0', '--data-dir', path.join(outer, 'data'), '--threads', '1', '--gpu', 'off', '--hf-endpoint', hub.url], {});
    server = await startServer(config, { logger: pino({ level: 'silent' }) });
    base = server.httpUrl as string;
  }, 60_000);

  afterAll(async () => {
    await server.close();
    rmSync(outer, { recursive: true, force: true });
  });

  it('refuses each with a clear problem before a byte is downloaded, writing nothing outside the models folder', async () => {
    const before = outsideModels();
    const refusals: Record<string, unknown>[] = [];
    for (const model of ['evil/onnx-dots', 'evil/onnx-backslash', 'evil/split-dots', 'evil/device-name']) {
      for (const stream of [false, true]) {
        const response = await fetch(`${base}/v1/models/pull`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model, stream }),
        });
        const problem = (await response.json()) as { code: string; detail: string };
        refusals.push({ model, stream, status: response.status, code: problem.code, detail: problem.detail });
      }
    }
    const expected = (model: string, detail: string) => [false, true].map((stream) => ({ model, stream, status: 502, code: 'upstream_error', detail }));
    expect(refusals).toEqual([
      ...expected(
        'evil/onnx-dots',
        'The Hub\'s listing of evil/onnx-dots names a file that cannot be saved safely, "onnx/model.onnx_data/../../../../../escape-dots.txt": it has a ".." segment. Nothing was downloaded.',
      ),
      ...expected(
        'evil/onnx-backslash',
        'The Hub\'s listing of evil/onnx-backslash names a file that cannot be saved safely, "onnx/model.onnx_data\\\\..\\\\..\\\\..\\\\..\\\\escape.cmd": it holds a backslash. Nothing was downloaded.',
      ),
      ...expected(
        'evil/split-dots',
        'evil/split-dots would save a file as "../..-00001-of-00001.gguf", which is not inside the models folder; nothing was downloaded.',
      ),
      ...expected(
        'evil/device-name',
        'The Hub\'s listing of evil/device-name names a file that cannot be saved safely, "aux.gguf": "aux.gguf" is a device name on Windows. Nothing was downloaded.',
      ),
    ]);
    expect(cdnRanges()).toEqual([]);
    expect(outsideModels()).toEqual(before);
    expect(allFiles(path.join(outer, 'data', 'models'))).toEqual([]);
  });

  it('inspects a pulled GGUF while it is staged: a header bomb is refused and deleted, and never reaches the models folder', async () => {
    const refusals: Record<string, unknown> = {};
    for (const kind of ['deeply-nested-array', 'absurd-array-count']) {
      const response = await fetch(`${base}/v1/models/pull`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: `evil/${kind}` }),
      });
      const problem = (await response.json()) as { code: string; detail: string };
      refusals[kind] = [response.status, problem.code, problem.detail];
    }
    const refused = (kind: string, why: string): RegExp =>
      new RegExp(
        `^evil/${kind}/Bomb-Q4_K_M\\.gguf is not a model this server can read \\(${why}\\); it was deleted and nothing was added to the models folder$`,
        'u',
      );
    expect(refusals).toEqual({
      'deeply-nested-array': [
        422,
        'invalid_model',
        expect.stringMatching(refused('deeply-nested-array', 'GGUF metadata "bomb\\.nested" nests arrays deeper than 2 levels')),
      ],
      'absurd-array-count': [
        422,
        'invalid_model',
        expect.stringMatching(
          refused('absurd-array-count', 'GGUF metadata "tokenizer\\.ggml\\.merges" claims 4000000000 array elements \\(at most 4194304\\)'),
        ),
      ],
    });
    expect(allFiles(path.join(outer, 'data', 'models'))).toEqual([]);
    const listed = (await (await fetch(`${base}/v1/models`)).json()) as { data: unknown[] };
    expect(listed.data).toEqual([]);
  });

  it('discards partials by repository and name only: a path in the name reaches nothing outside the staging folder', async () => {
    const staging = path.join(outer, 'data', 'models', '.downloads');
    const victims = ['victim.partial', 'victim.json'].map((name) => path.join(outer, name));
    for (const victim of victims) writeFileSync(victim, 'keep me');
    for (const file of ['../../../victim', '..\\..\\..\\victim', '/etc/passwd']) {
      const response = await fetch(`${base}/v1/models/downloads`, {
        method: 'DELETE',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ repo: 'evil/onnx-dots', file }),
      });
      expect([file, response.status, await response.json()]).toEqual([file, 200, { status: 'not_found', repo: 'evil/onnx-dots', file }]);
    }
    for (const victim of victims) expect(readFileSync(victim, 'utf8')).toBe('keep me');
    expect(existsSync(staging) ? readdirSync(staging) : []).toEqual([]);
  });
});

describe('pulling in a server process', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'pull-process-'));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('resumes after the server is killed mid-download: the next request asks for exactly the missing range', async () => {
    hub.faults = { throttleBytesPerSecond: 100 * 1024 };
    const args = ['--mode', 'http', '--port', '0', '--data-dir', root, '--gpu', 'off', '--threads', '1', '--hf-endpoint', hub.url];
    const first = new ServerProcess({ args });
    const base = await first.httpUrl();
    void fetch(`${base}/v1/models/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'acme/Tiny-GGUF:Q8_0' }),
    }).catch(() => undefined);
    const staging = path.join(root, 'models', '.downloads');
    const partialSize = (): number => {
      const name = existsSync(staging) ? readdirSync(staging).find((entry) => entry.endsWith('.partial')) : undefined;
      return name === undefined ? 0 : statSync(path.join(staging, name)).size;
    };
    while (partialSize() < 100 * 1024) await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await first.stop('SIGKILL')).signal).toBe('SIGKILL');
    const kept = partialSize();
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(ggufBytes.length);

    hub.faults = {};
    hub.requests.length = 0;
    const second = new ServerProcess({ args });
    const secondBase = await second.httpUrl();
    try {
      const listed = (await (await fetch(`${secondBase}/v1/models/downloads`)).json()) as { downloads: unknown[] };
      expect(listed.downloads).toEqual([expect.objectContaining({ file: 'Tiny-Q8_0.gguf', completed: kept, total: ggufBytes.length, active: false })]);
      const response = await fetch(`${secondBase}/v1/models/pull`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'acme/Tiny-GGUF:Q8_0' }),
      });
      expect(await response.json()).toMatchObject({ status: 'completed', model: 'Tiny-Q8_0', downloaded_bytes: ggufBytes.length - kept });
      expect(cdnRanges()).toEqual([`bytes=${kept}-`]);
      expect(readFileSync(path.join(root, 'models', 'Tiny-Q8_0.gguf')).equals(ggufBytes)).toBe(true);
    } finally {
      await second.stop('SIGTERM');
    }
  }, 90_000);

  it('reports progress over native messaging: chunks on the route envelope, modelWorkerLoadingProgress pushes on the legacy one', async () => {
    const host = new ServerProcess({ args: ['--mode', 'native', '--data-dir', root, '--gpu', 'off', '--threads', '1', '--hf-endpoint', hub.url] });
    try {
      host.send({ id: 'models.pull', request_id: 'nm-1', payload: { model: 'acme/Tiny-GGUF:Q8_0', stream: true } });
      const done = await host.reply((reply) => reply['request_id'] === 'nm-1' && reply['done'] === true, 30_000);
      expect(done).toMatchObject({ request_id: 'nm-1', done: true });
      const chunks = host.rawMessages
        .filter((message) => (message as Record<string, unknown>)['request_id'] === 'nm-1' && 'chunk' in (message as object))
        .map((message) => (message as { chunk: Record<string, unknown> }).chunk);
      expect(chunks[0]).toEqual({ status: 'resolving', request_id: 'nm-1' });
      expect(chunks[1]).toMatchObject({ status: 'downloading', file: 'Tiny-Q8_0.gguf', completed: 0, total: ggufBytes.length });
      expect(chunks.at(-1)).toMatchObject({ status: 'completed', model: 'Tiny-Q8_0', alias: 'hf.co/acme/Tiny-GGUF:Q8_0' });

      host.send({ action: 'pull_model', model_id: 'hf.co/acme/Tiny-GGUF:Q4_K_M', messageId: 'legacy-1' });
      const reply = await host.reply((message) => message['messageId'] === 'legacy-1' && message['status'] !== undefined, 30_000);
      expect(reply).toMatchObject({
        messageId: 'legacy-1',
        status: 'success',
        route_status: 'completed',
        model: 'Tiny-Q4_K_M',
        alias: 'hf.co/acme/Tiny-GGUF:Q4_K_M',
      });
      const pushes = host.rawMessages.filter(
        (message) =>
          (message as Record<string, unknown>)['messageId'] === 'legacy-1' && (message as Record<string, unknown>)['type'] === 'modelWorkerLoadingProgress',
      );
      expect(pushes.at(-2)).toEqual({
        messageId: 'legacy-1',
        type: 'modelWorkerLoadingProgress',
        payload: {
          status: 'downloading',
          file: 'Tiny-Q4_K_M.gguf',
          progress: 100,
          loaded: ggufBytes.length,
          total: ggufBytes.length,
          bytes_per_second: expect.any(Number),
          message: 'downloading Tiny-Q4_K_M.gguf',
        },
      });
      expect(pushes.at(-1)).toEqual({ messageId: 'legacy-1', type: 'modelWorkerLoadingProgress', payload: { status: 'registering', message: 'registering' } });
    } finally {
      host.child.stdin.end();
      await host.exited;
    }
  }, 60_000);

  it('pulls, lists and removes with the CLI, printing plain progress lines when not on a terminal', async () => {
    const run = promisify(execFile);
    const env = { ...process.env, HF_ENDPOINT: hub.url, TABAGENT_DATA_DIR: root };
    const pulled = await run(process.execPath, [cliPath, 'pull', 'hf.co/acme/Tiny-GGUF:Q8_0'], { env });
    expect(pulled.stdout.split('\n')).toEqual([
      'resolving',
      `downloading Tiny-Q8_0.gguf 0/${ggufBytes.length} bytes (0.0%) 0.0 MB/s`,
      expect.stringMatching(new RegExp(`^downloading Tiny-Q8_0\\.gguf ${ggufBytes.length}/${ggufBytes.length} bytes \\(100\\.0%\\) [\\d.]+ MB/s$`, 'u')),
      'registering',
      `pulled Tiny-Q8_0 (hf.co/acme/Tiny-GGUF:Q8_0, ${(ggufBytes.length / 1024 / 1024).toFixed(1)} MB) into ${path.join(root, 'models', 'Tiny-Q8_0.gguf')}`,
      '',
    ]);
    const listed = await run(process.execPath, [cliPath, 'list'], { env });
    expect(listed.stdout).toMatch(
      /^NAME +FORMAT +TASK +SIZE\nTiny-Q8_0 +gguf +text-generation +[\d.]+ MB\nhf\.co\/acme\/Tiny-GGUF:Q8_0 +gguf +text-generation +-> Tiny-Q8_0\n$/u,
    );
    const removed = await run(process.execPath, [cliPath, 'rm', 'Tiny-Q8_0'], { env });
    expect(removed.stdout).toBe('deleted Tiny-Q8_0\n');
    expect(existsSync(path.join(root, 'models', 'Tiny-Q8_0.gguf'))).toBe(false);
    await expect(run(process.execPath, [cliPath, 'pull', 'acme/nothing'], { env })).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('No repository acme/nothing'),
    });
  }, 60_000);
});
