import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOnnxTextEmbedder, type OnnxTextEmbedder } from '@tabagent/onnx-loader';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { createMemoryIndex } from '@tabagent/indexing';
import { createStorage } from '@tabagent/storage';
import { createWeaver } from '../src/memory-weaver.js';

const worker = fileURLToPath(new URL('./fixtures/memory-worker.mjs', import.meta.url));

interface WorkerRun {
  acked: string[];
  exit: Promise<number | null>;
  kill(): void;
  waitForAcks(n: number): Promise<void>;
}

function runWorker(args: string[]): WorkerRun {
  const child = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked: string[] = [];
  let buffer = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (data: string) => {
    buffer += data;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.startsWith('ack ')) acked.push(line.slice(4));
      newline = buffer.indexOf('\n');
    }
    for (const waiter of waiters) if (acked.length >= waiter.n) waiter.resolve();
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (data: string) => {
    stderr += data;
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    acked,
    exit,
    kill: () => child.kill('SIGKILL'),
    waitForAcks: (n) =>
      new Promise<void>((resolve, reject) => {
        if (acked.length >= n) {
          resolve();
          return;
        }
        waiters.push({ n, resolve });
        void exit.then((code) => (acked.length >= n ? resolve() : reject(new Error(`worker exited ${String(code)}: ${stderr}`))));
      }),
  };
}

let dir: string;
let modelFolder: string;
let embedder: OnnxTextEmbedder;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weaver-crash-'));
  modelFolder = join(dir, 'model');
  await writeTinyEmbedderModel(modelFolder);
  embedder = await createOnnxTextEmbedder(modelFolder, { modelId: 'tiny-a', threads: 1 });
});
afterAll(async () => {
  await embedder.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('crash recovery', () => {
  it('loses nothing acknowledged when the process is SIGKILLed mid-run, and the queue completes on restart', async () => {
    const dataDir = join(dir, 'crash');
    const run = runWorker([dataDir, modelFolder, 'crash', '100000', 'weaver']);
    await run.waitForAcks(60);
    run.kill();
    await run.exit;
    const acked = [...run.acked];
    expect(acked.length).toBeGreaterThanOrEqual(60);

    const storage = createStorage({ path: join(dataDir, 'tabagent.db') });
    for (const id of acked) expect(storage.getNode(id)?.kind).toBe('message');
    const before = storage.outboxStats();
    expect(before.pending + before.in_progress).toBeGreaterThan(0);
    const index = createMemoryIndex({ dir: join(dataDir, 'index'), storage, embedder: () => Promise.resolve(embedder) });
    // A restarted server uses the normal lease; the test shortens it to reclaim the killed worker's item now.
    const weaver = createWeaver({ storage, index, embedders: () => Promise.resolve(embedder), leaseMs: 0 });
    await weaver.drain();
    const after = storage.outboxStats();
    expect(after).toMatchObject({ pending: 0, in_progress: 0, dead: 0 });
    const messages = storage.countByKind().message ?? 0;
    expect(messages).toBeGreaterThanOrEqual(acked.length);
    expect((await index.stats())[0]?.rows).toBe(messages);
    const last = acked[acked.length - 1] ?? '';
    const hits = await index.search({ query: storage.getNode(last)?.text ?? '', k: 1, mode: 'vector' });
    expect(hits[0]?.node_id).toBe(last);
    await index.close();
    storage.close();
  });

  it('accepts concurrent writers from several processes without losing a message', async () => {
    const dataDir = join(dir, 'concurrent');
    const runs = ['w1', 'w2', 'w3'].map((prefix) => runWorker([dataDir, modelFolder, prefix, '100', 'none']));
    const codes = await Promise.all(runs.map((run) => run.exit));
    await Promise.all(runs.map((run) => run.waitForAcks(100)));
    expect(codes).toEqual([0, 0, 0]);
    const storage = createStorage({ path: join(dataDir, 'tabagent.db') });
    expect(storage.countByKind()).toEqual({ chat: 3, message: 300 });
    for (const run of runs) {
      expect(run.acked).toHaveLength(100);
      for (const id of run.acked) expect(storage.getNode(id)).toBeDefined();
    }
    expect(storage.outboxStats().pending).toBe(300);
    storage.close();
  });
});
