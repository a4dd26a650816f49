import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Worker } from 'playwright-core';
import { findChromium, installHint } from './chromium/find-chromium.mjs';
import { installNativeHost } from '../../src/native-host-installer.js';

const extensionDir = fileURLToPath(new URL('./extension', import.meta.url));
const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const serverVersion = (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

/** Chromium's extension id: the first 128 bits of SHA-256 of the public key, as letters a-p. */
function extensionIdFromKey(base64Key: string): string {
  const digest = createHash('sha256').update(Buffer.from(base64Key, 'base64')).digest('hex').slice(0, 32);
  return Array.from(digest, (hex) => String.fromCharCode(97 + Number.parseInt(hex, 16))).join('');
}

interface NativeTestResult {
  handshake?: Record<string, unknown>;
  ping?: Record<string, unknown>;
  systemInfo?: Record<string, unknown>;
  health?: Record<string, unknown>;
  oneShotVersion?: Record<string, unknown>;
  disconnected?: string;
  timedOut?: boolean;
}

describe('a real Chromium talks to the native host', () => {
  let scratch: string | undefined;
  let context: BrowserContext | undefined;
  const manifest = JSON.parse(readFileSync(path.join(extensionDir, 'manifest.json'), 'utf8')) as { key: string };
  const extensionId = extensionIdFromKey(manifest.key);

  beforeAll(async () => {
    // The test command's ensure-browser step installs Debian's chromium when it can.
    const chromiumPath = findChromium();
    if (chromiumPath === null) throw new Error(`No Chromium or Chrome found: ${installHint}`);
    if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: build the server first (npx nx build server)`);
    scratch = mkdtempSync(path.join(os.tmpdir(), 'tabagent-browser-'));
    const userDataDir = path.join(scratch, 'profile');
    // Chromium on Linux also reads <user-data-dir>/NativeMessagingHosts/, so the real profile is untouched.
    await installNativeHost({
      extensionIds: [extensionId],
      browsers: [],
      extraManifestDirs: [path.join(userDataDir, 'NativeMessagingHosts')],
      homeDir: path.join(scratch, 'home'),
      launcherDir: path.join(scratch, 'bin'),
      platform: 'linux',
      nodePath: process.execPath,
      scriptPath: cliPath,
      extraServeArgs: ['--data-dir', path.join(scratch, 'data')],
    });
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      // Playwright disables extensions by default; the test extension must load.
      ignoreDefaultArgs: ['--disable-extensions'],
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        `--load-extension=${extensionDir}`,
        `--disable-extensions-except=${extensionDir}`,
      ],
    });
  }, 60_000);

  afterAll(async () => {
    // beforeAll may have failed before either existed.
    await context?.close();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  async function serviceWorker(): Promise<Worker> {
    const existing = context?.serviceWorkers()[0];
    if (existing) return existing;
    return (context as BrowserContext).waitForEvent('serviceworker', { timeout: 20_000 });
  }

  it("connects with connectNative and gets the extension's replies", async () => {
    const worker = await serviceWorker();
    expect(worker.url()).toBe(`chrome-extension://${extensionId}/background.js`);
    const result = (await worker.evaluate(async () => {
      const run = (globalThis as unknown as { runNativeMessagingTest: (timeoutMs: number) => Promise<unknown> }).runNativeMessagingTest;
      return run(30_000);
    })) as NativeTestResult;
    expect(result.timedOut).toBeUndefined();
    expect(result.disconnected).toBeUndefined();
    expect(result.handshake).toEqual({ messageId: 'msg_1_handshake', status: 'success', message: 'TabAgent host ready', version: serverVersion });
    expect(result.ping).toEqual({ messageId: 'msg_2_ping', status: 'success', response: 'pong', version: serverVersion });
    const systemInfo = result.systemInfo as Record<string, unknown>;
    expect(Object.keys(systemInfo).sort()).toEqual(['available_backends', 'cpu', 'data', 'gpu', 'messageId', 'os', 'ram', 'status', 'vram']);
    expect(systemInfo).toMatchObject({ messageId: 'msg_3_system', status: 'success' });
    expect(systemInfo.ram).toMatch(/^\d+(\.\d)? (GB|MB)$/);
    const { messageId: _messageId, status: _status, data, ...display } = systemInfo;
    expect(data).toEqual(display);
    expect(result.health).toMatchObject({ request_id: 'x', ok: true, data: { status: 'ok', service: 'tabagent-server', version: serverVersion } });
    expect(Object.keys(result.health as object).sort()).toEqual(['data', 'ok', 'request_id']);
    expect(result.oneShotVersion).toEqual({ status: 'success', version: serverVersion });
  }, 60_000);
});
