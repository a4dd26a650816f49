import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHardwareProbe } from '@tabagent/hardware';
import { createAppStateProvider, routeList, type CallContext } from '@tabagent/values';
import { createHfTokenStore } from '../hf-token-store.js';
import { composeHandlers } from './compose-handlers.js';
import { createSystemHandlers } from './system-handlers.js';

const context: CallContext = { requestId: 't', signal: new AbortController().signal, transport: 'in-process', caller: {} };

describe('system handlers', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tabagent-system-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const providerFor = (logFile?: string) =>
    createAppStateProvider(
      composeHandlers(
        createSystemHandlers({
          hardware: createHardwareProbe(),
          hfTokens: createHfTokenStore(dir),
          version: '9.9.9',
          logFile,
          dataDir: dir,
          loadedModelResources: async () => [{ model_id: 'tiny', memory_mb: 12, device: 'cpu' }],
          startedAt: Date.now() - 5000,
        }),
      ),
    );

  it('answers health with version and uptime', async () => {
    const health = await providerFor().handle('health', {}, context);
    expect(health).toMatchObject({ status: 'ok', service: 'tabagent-server', version: '9.9.9' });
    expect((health as { uptime_seconds: number }).uptime_seconds).toBeGreaterThanOrEqual(5);
  });

  it('lists every catalogue route', async () => {
    const result = (await providerFor().handle('routes.list', {}, context)) as { total: number; routes: { id: string }[] };
    expect(result.total).toBe(routeList.length);
    expect(result.routes.map((route) => route.id)).toEqual(routeList.map((route) => route.id));
  });

  it("reports this machine's real CPU and RAM", async () => {
    const info = (await providerFor().handle('system.info', {}, context)) as {
      cpu: { logical_cores: number };
      memory: { total_mb: number };
      node_version: string;
    };
    expect(info.cpu.logical_cores).toBe(os.cpus().length);
    expect(info.memory.total_mb).toBe(Math.round(os.totalmem() / 1048576));
    expect(info.node_version).toBe(process.version);
  });

  it('includes loaded models in resources', async () => {
    const resources = (await providerFor().handle('resources.get', {}, context)) as { loaded_models: unknown[] };
    expect(resources.loaded_models).toEqual([{ model_id: 'tiny', memory_mb: 12, device: 'cpu' }]);
  });

  it('tails the log file', async () => {
    const logFile = path.join(dir, 'tabagent.log');
    writeFileSync(logFile, ['one', 'two', 'three', 'four'].join('\n') + '\n');
    await expect(providerFor(logFile).handle('system.logs', { lines: 2 }, context)).resolves.toEqual({
      lines: 'three\nfour',
      log_file: '<data-dir>/tabagent.log',
      total_lines: 4,
    });
    await expect(providerFor().handle('system.logs', { lines: 2 }, context)).resolves.toEqual({ lines: '', log_file: null, total_lines: 0 });
  });

  it('serves log lines without stack traces or absolute paths', async () => {
    const logFile = path.join(dir, 'tabagent.log');
    const line = {
      level: 50,
      msg: `Model cannot be used: ${path.join(dir, 'models', 'x.gguf')}`,
      err: { type: 'Error', message: `ENOENT: open '${path.join(os.homedir(), 'secret', 'notes.txt')}'`, stack: 'Error: x\n    at /usr/lib/node/a.js:1:1' },
      path: '/opt/models/private/other.gguf',
    };
    writeFileSync(logFile, `${JSON.stringify(line)}\nplain text at /var/lib/thing/file.txt\n`);
    const served = (await providerFor(logFile).handle('system.logs', { lines: 10 }, context)) as { lines: string };
    const [first, second] = served.lines.split('\n');
    expect(JSON.parse(first ?? '')).toEqual({
      level: 50,
      msg: 'Model cannot be used: <data-dir>/models/x.gguf',
      err: { type: 'Error', message: "ENOENT: open '~/secret/notes.txt'" },
      path: '…/other.gguf',
    });
    expect(second).toBe('plain text at …/file.txt');
    expect(served.lines).not.toContain(dir);
    expect(served.lines).not.toContain(' at /');
  });

  it('stores, reports and clears the HF token in a user-only file', async () => {
    const provider = providerFor();
    await expect(provider.handle('hf.token.status', {}, context)).resolves.toEqual({ has_token: false, message: 'No Hugging Face token is stored' });
    await provider.handle('hf.token.set', { token: 'hf_abcdefgh' }, context);
    expect(statSync(path.join(dir, 'hf-token')).mode & 0o777).toBe(0o600);
    await expect(provider.handle('hf.token.status', {}, context)).resolves.toEqual({ has_token: true, message: 'A Hugging Face token is stored' });
    await expect(provider.handle('hf.token.clear', {}, context)).resolves.toEqual({ message: 'Hugging Face token removed' });
    await expect(provider.handle('hf.token.clear', {}, context)).resolves.toEqual({ message: 'No Hugging Face token was stored' });
  });

  it('answers 501 naming the capability for routes without a backend', async () => {
    await expect(providerFor().handle('webrtc.offer', { sdp: 'v=0' }, context)).rejects.toMatchObject({
      code: 'not_implemented',
      details: { capability: 'webrtc', route: 'webrtc.offer' },
    });
  });
});
