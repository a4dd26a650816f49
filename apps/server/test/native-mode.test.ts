import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFrameDecoder } from '@tabagent/native-messaging';
import { ServerProcess, type Reply } from './support/server-process.js';

const origin = 'chrome-extension://nhgeobigjnkldfcdbiinjheboppfafhi/';
const serverVersion = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
const logLine = (index: number): string => `${String(index).padStart(6, '0')} prepared log line ${'x'.repeat(130)}`;

function rawFrame(body: Buffer, declared = body.length): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(declared, 0);
  return Buffer.concat([header, body]);
}

/** The server in native mode, driven over its stdio like Chrome does. */
function nativeServer(dataDir: string): ServerProcess {
  return new ServerProcess({ args: ['--mode', 'native', '--data-dir', dataDir, origin] });
}

/** Decodes everything stdout carried from the start: frames only, nothing left over. */
function assertStdoutIsOnlyFrames(server: ServerProcess): number {
  const decoder = createFrameDecoder();
  const frames = decoder.push(Buffer.concat(server.stdoutChunks));
  expect(frames.every((frame) => frame.kind === 'message')).toBe(true);
  expect(decoder.bufferedBytes).toBe(0);
  return frames.length;
}

describe('tabagent serve --mode native (child process)', () => {
  let dataDir: string;
  let server: ServerProcess;

  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'tabagent-native-'));
    mkdirSync(path.join(dataDir, 'logs'), { recursive: true });
    writeFileSync(path.join(dataDir, 'logs', 'tabagent.log'), `${Array.from({ length: 20_000 }, (_unused, index) => logLine(index)).join('\n')}\n`);
    server = nativeServer(dataDir);
  });

  afterAll(async () => {
    server.child.stdin.end();
    await server.exited;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers the extension's handshake, ping and get_version", async () => {
    server.send({ action: 'handshake', source: 'extension', messageId: 'msg_1_1' });
    expect(await server.replyTo('msg_1_1')).toEqual({ messageId: 'msg_1_1', status: 'success', message: 'TabAgent host ready', version: serverVersion });
    server.send({ action: 'ping', messageId: 'msg_2_1' });
    expect(await server.replyTo('msg_2_1')).toEqual({ messageId: 'msg_2_1', status: 'success', response: 'pong', version: serverVersion });
    server.send({ action: 'get_version', messageId: 'msg_3_1' });
    expect(await server.replyTo('msg_3_1')).toEqual({ messageId: 'msg_3_1', status: 'success', version: serverVersion });
  });

  it('answers get_system_info with display strings at top level and under data', async () => {
    server.send({ action: 'get_system_info', messageId: 'sys' });
    const reply = await server.replyTo('sys');
    expect(Object.keys(reply).sort()).toEqual(['available_backends', 'cpu', 'data', 'gpu', 'messageId', 'os', 'ram', 'status', 'vram']);
    expect(reply.status).toBe('success');
    expect(reply.ram).toMatch(/^\d+(\.\d)? (GB|MB)$/);
    expect(typeof reply.os).toBe('string');
    expect(reply.cpu).toMatch(/\(\d+ cores, \d+ threads\)$/);
    expect((reply.available_backends as string[])[0]).toBe('cpu');
    const { messageId: _id, status: _status, data, ...top } = reply;
    expect(data).toEqual(top);
  });

  it('answers the route envelope through the same provider', async () => {
    server.send({ id: 'health', request_id: 'h1', payload: null });
    const reply = await server.replyTo('h1');
    expect(reply).toMatchObject({ request_id: 'h1', ok: true, data: { status: 'ok', service: 'tabagent-server', version: serverVersion } });
    server.send({ route: 'no.such.route', request_id: 'h2', payload: null });
    expect(await server.replyTo('h2')).toMatchObject({
      request_id: 'h2',
      ok: false,
      error: { code: 'not_found', status: 404, detail: 'Unknown route id: no.such.route' },
    });
  });

  it('answers bad JSON and bad UTF-8 with errors and keeps the session', async () => {
    server.sendBytes(rawFrame(Buffer.from('{"action":"ping",', 'utf8')));
    const badJson = await server.reply((reply) => reply.request_id === null && String(reply.message).startsWith('Malformed JSON'));
    expect(badJson).toMatchObject({ ok: false, status: 'error', error: { code: 'invalid_request', status: 400 } });
    server.sendBytes(rawFrame(Buffer.from([0x7b, 0xff, 0x7d])));
    expect(await server.reply((reply) => reply.message === 'Malformed frame: the message is not valid UTF-8')).toMatchObject({ ok: false, status: 'error' });
    server.send({ action: 'ping', messageId: 'after-bad' });
    expect(await server.replyTo('after-bad')).toMatchObject({ status: 'success', response: 'pong' });
  });

  it('accepts a 5 MB request', async () => {
    server.send({ action: 'ping', messageId: 'five-mb', padding: 'p'.repeat(5 * 1024 * 1024) });
    expect(await server.replyTo('five-mb')).toEqual({ messageId: 'five-mb', status: 'success', response: 'pong', version: serverVersion });
    server.send({ id: 'system.logs', request_id: 'five-mb-route', payload: { lines: 1, padding: 'q'.repeat(5 * 1024 * 1024) } });
    expect(await server.replyTo('five-mb-route')).toMatchObject({ request_id: 'five-mb-route', ok: true });
  });

  it('splits a route reply larger than 1 MB into continuations; refuses it in the legacy envelope', async () => {
    server.send({ id: 'system.logs', request_id: 'big-logs', payload: { lines: 10_000 } });
    const reply = await server.replyTo('big-logs');
    const parts = server.rawMessages.filter((message) => (message as Reply).request_id === 'big-logs');
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThanOrEqual(1_048_576);
    const data = reply.data as { lines: string; log_file: string };
    const lines = data.lines.split('\n');
    expect(lines).toHaveLength(10_000);
    expect(lines.filter((line) => line.includes('prepared log line')).length).toBeGreaterThan(9_900);
    // Served without absolute paths (SECURITY.md): the data directory shows as <data-dir>.
    expect(data.log_file).toBe('<data-dir>/logs/tabagent.log');
    server.send({ action: 'get_logs', lines: 10_000, messageId: 'big-legacy' });
    const legacy = await server.replyTo('big-legacy');
    expect(legacy).toMatchObject({ status: 'error', code: 'payload_too_large' });
    expect(legacy.message).toMatch(/^The reply \(\d+ bytes\) exceeds the 1 MB native messaging limit \(1048576 bytes\)/);
    server.send({ action: 'get_logs', lines: 3, messageId: 'small-legacy' });
    const small = await server.replyTo('small-legacy');
    expect(small).toMatchObject({ status: 'success', log_file: '<data-dir>/logs/tabagent.log' });
    expect((small.lines as string).split('\n')).toHaveLength(3);
  });

  it('handles concurrent requests of both envelopes and answers each once', async () => {
    for (let index = 0; index < 40; index += 1) {
      if (index % 4 === 0) server.send({ id: 'system.logs', request_id: `c${index}`, payload: { lines: 9000 } });
      else if (index % 4 === 1) server.send({ action: 'get_system_info', messageId: `c${index}` });
      else if (index % 4 === 2) server.send({ id: 'health', request_id: `c${index}`, payload: null });
      else server.send({ action: 'ping', messageId: `c${index}` });
    }
    const replies = await Promise.all(Array.from({ length: 40 }, (_unused, index) => server.replyTo(`c${index}`)));
    expect(replies.map((reply) => reply.ok === true || reply.status === 'success')).toEqual(Array.from({ length: 40 }, () => true));
  });

  it('answers stop_generation without waiting for other work, and refuses execute_command', async () => {
    server.send({ id: 'system.logs', request_id: 'slow-ish', payload: { lines: 10_000 } });
    server.send({ action: 'stop_generation', messageId: 'stop' });
    const stop = await server.replyTo('stop');
    expect(stop.messageId).toBe('stop');
    expect(['success', 'error']).toContain(stop.status);
    if (stop.status === 'error') expect(stop.message).toMatch(/not available|not enabled/);
    await server.replyTo('slow-ish');
    server.send({ action: 'execute_command', command: 'id', messageId: 'exec' });
    expect(await server.replyTo('exec')).toMatchObject({ status: 'error', message: 'execute_command is refused: the TabAgent host never runs shell commands' });
    server.send({ action: 'no_such_action', messageId: 'unknown' });
    expect(await server.replyTo('unknown')).toMatchObject({ messageId: 'unknown', status: 'error', message: 'Unknown action: no_such_action' });
  });

  it('wrote nothing but whole frames to stdout', () => {
    expect(assertStdoutIsOnlyFrames(server)).toBeGreaterThan(30);
  });
});

describe('native mode process lifecycle', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'tabagent-native-life-'));
  });

  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('exits promptly when stdin closes', async () => {
    const server = nativeServer(dataDir);
    server.send({ action: 'handshake', source: 'extension', messageId: 'hs' });
    await server.replyTo('hs');
    const started = Date.now();
    server.child.stdin.end();
    const exit = await server.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(5000);
    assertStdoutIsOnlyFrames(server);
  });

  it('writes an error frame, says why on stderr and exits cleanly on an oversize declared length', async () => {
    const server = nativeServer(dataDir);
    server.send({ action: 'handshake', source: 'extension', messageId: 'hs' });
    await server.replyTo('hs');
    server.sendBytes(rawFrame(Buffer.alloc(16), 0xffff_fff0));
    const failure = await server.reply((reply) => reply.request_id === null && (reply.error as Reply | undefined)?.code === 'payload_too_large');
    expect(failure.message).toBe(
      `A message declares 4294967280 bytes, more than the ${64 * 1024 * 1024}-byte limit; the stream can no longer be read, so the host exits (the browser reconnects).`,
    );
    const exit = await server.exited;
    expect(exit.signal).toBeNull();
    expect(server.stderr).toContain('native messaging stream is no longer trustworthy');
    assertStdoutIsOnlyFrames(server);
  });
});
