import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { runInPlainNode } from './support/plain-node.js';
import { createStorage } from '@tabagent/storage';
import { ServerProcess } from './support/server-process.js';

// SIGINT and SIGTERM stop the real CLI within its bound whatever is running: streams, a weaver
// backlog, native messaging, a browser that stopped reading. Outbox work not done stays pending.
let root: string;
let run = 0;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'tabagent-shutdown-'));
  mkdirSync(path.join(root, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(root, 'models', 'tiny-llama.gguf'));
  await writeTinyEmbedderModel(path.join(root, 'models', 'tiny-embedder'));
  // Models whose load takes long enough for a signal to land in the middle of it: a GGUF with a
  // real-sized vocabulary and a Jinja chat template, and a BERT-shaped ONNX encoder of 12 layers
  // (all-MiniLM-L12-v2's shape). First loads measured here: 2.0 s and 0.4 s.
  const slow = path.join(root, 'slow-models');
  mkdirSync(slow);
  await runInPlainNode(`
    import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
    import { writeBertEncoderModel } from '@tabagent/onnx-loader/test-support';
    writeTinyLlamaGguf(${JSON.stringify(path.join(slow, 'slow-llama.gguf'))}, { chatTemplate: chatMlToolsTemplate, vocabularySize: 32000, contextLength: 8192 });
    await writeBertEncoderModel(${JSON.stringify(path.join(slow, 'slow-encoder'))}, { layers: 12 });
  `);
}, 60_000);

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A data directory of its own, with a copy of the models. */
function dataDir(): string {
  run += 1;
  const dir = path.join(root, `data-${run}`);
  cpSync(path.join(root, 'models'), path.join(dir, 'models'), { recursive: true });
  return dir;
}

function serve(dir: string, ...args: string[]): ServerProcess {
  return new ServerProcess({ args: ['--data-dir', dir, '--threads', '1', '--gpu', 'off', '--port', '0', ...args] });
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

function outbox(dir: string): { pending: number; in_progress: number; done: number } {
  const storage = createStorage({ path: path.join(dir, 'tabagent.db') });
  try {
    return storage.outboxStats();
  } finally {
    storage.close();
  }
}

/** Every file under a folder, relative, with its bytes' hash. */
function filesOf(folder: string, prefix = ''): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(path.join(folder, prefix), { withFileTypes: true })) {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) for (const [name, hash] of filesOf(folder, relative)) files.set(name, hash);
    else
      files.set(
        relative,
        createHash('sha256')
          .update(readFileSync(path.join(folder, relative)))
          .digest('hex'),
      );
  }
  return files;
}

/**
 * What a stop must leave: no temporary file (registry and settings are written to a temporary and
 * renamed), every JSON file whole, every log line a whole JSON line, the database readable with
 * nothing claimed, the model files as they were.
 */
function expectNothingHalfWritten(dir: string, modelsBefore: Map<string, string>): void {
  const files = filesOf(dir);
  expect([...files.keys()].filter((name) => /\.tmp$|\.partial$|\.lock$/u.test(name))).toEqual([]);
  const parses = (text: string): boolean => {
    try {
      JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  };
  expect([...files.keys()].filter((name) => name.endsWith('.json') && !parses(readFileSync(path.join(dir, name), 'utf8')))).toEqual([]);
  const log = readFileSync(path.join(dir, 'logs', 'tabagent.log'), 'utf8');
  expect(log.endsWith('\n')).toBe(true);
  expect(
    log
      .trimEnd()
      .split('\n')
      .filter((line) => !parses(line)),
  ).toEqual([]);
  expect(outbox(dir).in_progress).toBe(0);
  expect(new Map([...files].filter(([name]) => name.startsWith(`models${path.sep}`)))).toEqual(modelsBefore);
}

describe('shutdown of tabagent serve (child process)', () => {
  it('stops on SIGINT within 10 s with a stream in flight, a weaver backlog and native messaging connected; the backlog resumes on the next start', async () => {
    const dir = dataDir();
    const server = serve(dir, '--mode', 'all');
    const base = await server.httpUrl();
    await post(`${base}/v1/conversations`, { id: 'backlog', title: 'Backlog' });
    for (let batch = 0; batch < 20; batch += 1) {
      await post(`${base}/v1/conversations/backlog/messages`, {
        messages: Array.from({ length: 100 }, (_, i) => ({ role: 'user', content: `message ${batch * 100 + i} about lighthouses and bread` })),
      });
    }
    const stream = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-llama', messages: [{ role: 'user', content: 'go on' }], stream: true, max_tokens: 1_000_000, ignore_eos: true }),
    });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    expect((await reader.read()).done).toBe(false);
    server.send({ action: 'ping', messageId: 'connected' });
    expect(await server.replyTo('connected')).toMatchObject({ status: 'success', response: 'pong' });
    const status = (await (await fetch(`${base}/v1/memory/status`)).json()) as { queue_depth: number };
    expect(status.queue_depth).toBeGreaterThan(0);

    const stopped = await server.stop('SIGINT');
    expect([stopped.code, stopped.signal]).toEqual([0, null]);
    expect(stopped.elapsedMs).toBeLessThan(10_000);
    // The stream was ended by the shutdown, not left hanging.
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return 'ended';
      })(),
    ).resolves.toBe('ended');
    const left = outbox(dir);
    expect(left.in_progress).toBe(0);
    expect(left.pending).toBeGreaterThan(0);

    // The next start picks the backlog up where it was left.
    const again = serve(dir, '--mode', 'http');
    const nextBase = await again.httpUrl();
    // Until an item is done (a claimed one that the stop interrupts goes back to pending).
    await fetch(`${nextBase}/v1/health`);
    while (outbox(dir).done <= left.done) await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await again.stop('SIGTERM');
    expect([second.code, second.elapsedMs < 10_000]).toEqual([0, true]);
    expect(outbox(dir).done).toBeGreaterThan(left.done);
  }, 90_000);

  it('exits by --shutdown-timeout when a browser stopped reading stdout, and at once on a second signal', async () => {
    const fill = (server: ServerProcess): void => {
      // Far more reply bytes than a pipe holds, none of them read: writing blocks for good.
      for (let i = 0; i < 60; i += 1) server.send({ id: 'routes.list', request_id: `fill-${i}`, payload: null });
    };
    const stuck = new ServerProcess({
      args: ['--mode', 'native', '--data-dir', dataDir(), '--gpu', 'off', '--shutdown-timeout', '2'],
      stopReadingStdout: true,
    });
    await stuck.ready();
    fill(stuck);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const timedOut = await stuck.stop('SIGTERM');
    expect(timedOut.code).toBe(1);
    expect(timedOut.elapsedMs).toBeGreaterThan(1500);
    expect(timedOut.elapsedMs).toBeLessThan(10_000);
    expect(stuck.stderr).toContain('shutdown did not finish in time; exiting');

    const twice = new ServerProcess({
      args: ['--mode', 'native', '--data-dir', dataDir(), '--gpu', 'off', '--shutdown-timeout', '60'],
      stopReadingStdout: true,
    });
    await twice.ready();
    fill(twice);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    twice.child.kill('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(twice.child.exitCode).toBeNull();
    const forced = await twice.stop('SIGINT');
    expect([forced.code, forced.elapsedMs < 2000]).toEqual([130, true]);
    expect(twice.stderr).toContain('second signal: exiting now');
  }, 60_000);
  it.each([
    ['a GGUF', 'slow-llama.gguf', 'slow-llama'],
    ['an ONNX', 'slow-encoder', 'slow-encoder'],
  ])(
    'stops on SIGTERM while %s model is loading, within the bound, and leaves nothing half-written; the next start loads it',
    async (_format, file, model) => {
      const dir = dataDir();
      cpSync(path.join(root, 'slow-models', file), path.join(dir, 'models', file), { recursive: true });
      const modelsBefore = new Map([...filesOf(dir)].filter(([name]) => name.startsWith(`models${path.sep}`)));
      const server = serve(dir, '--mode', 'http');
      const base = await server.httpUrl();
      const load = fetch(`${base}/v1/models/load`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model }) }).then(
        (response) => response.status,
        () => 'connection closed',
      );
      const loading = `"model":"${model}","path":`;
      await server.waitForStderr((stderr) => stderr.includes(loading) && stderr.includes('"msg":"Loading model"'), 'the load to start');
      // The signal goes while the load runs: it started and has not finished.
      const seen = server.stderr;
      expect(seen.split('\n').filter((line) => line.includes('"msg":"Model loaded"') && line.includes(`"model":"${model}"`))).toEqual([]);
      const stopped = await server.stop('SIGTERM');
      expect([stopped.code, stopped.signal]).toEqual([0, null]);
      expect(stopped.elapsedMs).toBeLessThan(10_000);
      expect(server.stderr).not.toContain('shutdown did not finish in time');
      // The load's request got an answer or a closed connection, never a hang.
      expect([200, 503, 'connection closed']).toContain(await load);
      expectNothingHalfWritten(dir, modelsBefore);

      // The next start loads the same model and uses it.
      const again = serve(dir, '--mode', 'http');
      const nextBase = await again.httpUrl();
      const loaded = await post(`${nextBase}/v1/models/load`, { model });
      expect(loaded['status']).toBe('loaded');
      if (file.endsWith('.gguf')) {
        const completion = await post(`${nextBase}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
        expect((completion['usage'] as { completion_tokens: number }).completion_tokens).toBeGreaterThan(0);
      } else {
        const embedded = await post(`${nextBase}/v1/embeddings`, { model, input: ['a lighthouse'] });
        expect(((embedded['data'] as { embedding: number[] }[])[0]?.embedding ?? []).length).toBe(384);
      }
      const second = await again.stop('SIGTERM');
      expect([second.code, second.elapsedMs < 10_000]).toEqual([0, true]);
      expectNothingHalfWritten(dir, modelsBefore);
    },
    90_000,
  );
});
