import { readFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { findChromium, installHint } from './chromium/find-chromium.mjs';
import { parseServeArguments } from '../../src/server-config.js';
import { startServer, type RunningServer } from '../../src/start-server.js';

// A real Chromium page (a web app on another origin, as an extension's offscreen document would
// be) opens the WebRTC transport: signalling through the server's CORS, then calls over the
// channel, a streaming chat stopped mid-way, and a request and a reply over 1 MB in parts.
const pageDir = fileURLToPath(new URL('./webrtc-page', import.meta.url));

/**
 * Chromium connects with its default flags when the machine has a network interface besides
 * loopback (it sends checks from it to the server's 127.0.0.1). In a loopback-only namespace it
 * needs these two flags; a real user's Chrome needs none.
 */
function loopbackOnlyFlags(): string[] {
  const external = Object.values(os.networkInterfaces())
    .flat()
    .some((address) => address !== undefined && address.family === 'IPv4' && !address.internal);
  return external ? [] : ['--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'];
}

interface BrowserResult {
  offerStatus?: number;
  offerError?: unknown;
  answerType: string;
  maxMessageSize: number;
  health: { request_id: string; ok: boolean; data: Record<string, unknown> };
  chatChunks: number;
  chatEnd: Record<string, unknown>;
  stopReply: unknown;
  created: boolean;
  added: unknown;
  addParts: number;
  largeReply: { ok: boolean; bytes: number; parts: number; contents: number[]; contentsMatch: boolean };
  session: Record<string, unknown>;
}

describe('a real Chromium page over the WebRTC transport', () => {
  let root: string;
  let pages: http.Server;
  let pageOrigin: string;
  let server: RunningServer | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    const chromiumPath = findChromium();
    if (chromiumPath === null) throw new Error(`No Chromium or Chrome found: ${installHint}`);
    pages = http.createServer((request, response) => {
      const name = request.url === '/webrtc-client.js' ? 'webrtc-client.js' : 'index.html';
      response.setHeader('content-type', name.endsWith('.js') ? 'text/javascript' : 'text/html');
      response.end(readFileSync(path.join(pageDir, name)));
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    root = mkdtempSync(path.join(os.tmpdir(), 'webrtc-browser-'));
    mkdirSync(path.join(root, 'models'));
    writeTinyLlamaGguf(path.join(root, 'models', 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
    const config = parseServeArguments(['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off', '--allowed-origin', pageOrigin], {});
    server = await startServer(config, { logger: pino({ level: 'silent' }) });
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu', ...loopbackOnlyFlags()] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await new Promise<void>((resolve) => pages.close(() => resolve()));
    rmSync(root, { recursive: true, force: true });
  });

  it('connects, calls health, streams and stops a chat, and moves over 1 MB each way in continuation parts', async () => {
    const page = await (browser as Browser).newPage();
    await page.goto(`${pageOrigin}/`);
    const base = (server as RunningServer).httpUrl as string;
    const result = (await page.evaluate(
      async ([serverBase, model]) => (globalThis as unknown as { runWebRtcTest: (b: string, m: string) => Promise<unknown> }).runWebRtcTest(serverBase, model),
      [base, 'chat'] as const,
    )) as BrowserResult;
    expect(result.offerError).toBeUndefined();
    expect([result.answerType, result.maxMessageSize]).toEqual(['answer', 262_144]);
    expect(result.health).toMatchObject({ request_id: 'h1', ok: true, data: { status: 'ok', service: 'tabagent-server' } });

    expect(result.stopReply).toEqual({ request_id: 'stop-1', ok: true, data: { status: 'stopped', request_id: 'chat-1', stopped: 1 } });
    expect(result.chatChunks).toBeGreaterThanOrEqual(2);
    expect(result.chatChunks).toBeLessThan(1500);
    expect(result.chatEnd).toEqual({ request_id: 'chat-1', done: true });

    expect(result.created).toBe(true);
    expect(result.added).toBe(2);
    expect(result.addParts).toBeGreaterThan(1);
    expect(result.largeReply).toMatchObject({ ok: true, contents: [700_000, 700_000], contentsMatch: true });
    expect(result.largeReply.bytes).toBeGreaterThan(1024 * 1024);
    expect(result.largeReply.parts).toBeGreaterThanOrEqual(Math.ceil(result.largeReply.bytes / 262_144));

    expect(result.session).toMatchObject({ peer_id: 'chromium', state: 'connected', data_channel_open: true });
    await page.close();
  }, 90_000);
});
