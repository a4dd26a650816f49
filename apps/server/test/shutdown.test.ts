import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
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
});

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
});
