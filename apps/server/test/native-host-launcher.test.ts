import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFrameDecoder, encodeFrame } from '@tabagent/native-messaging';
import { cliPath } from './support/server-process.js';

// The user's order of things with the default locations: `install-native-host`, then `serve`,
// then Chrome starting the host through the launcher. The launcher lives in the data directory,
// whose owner-only sweep at every start once made it 0600, so Chrome could no longer start it.
const extensionId = 'abcdefghijklmnopabcdefghijklmnop';
let home: string;

beforeAll(() => {
  home = mkdtempSync(path.join(tmpdir(), 'launcher-home-'));
});
afterAll(() => {
  rmSync(home, { recursive: true, force: true });
});

/** The environment of a user whose home is `home` and who set no data directory. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env['XDG_DATA_HOME'];
  delete env['XDG_CONFIG_HOME'];
  delete env['TABAGENT_DATA_DIR'];
  return env;
}

/** Runs `tabagent serve` until it says it is ready, then stops it. */
async function serveOnce(): Promise<void> {
  const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--gpu', 'off', '--threads', '1'], {
    env: userEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.includes('"msg":"server ready"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

it('keeps the launcher executable after serve, and Chrome can start the host through it', async () => {
  const install = spawnSync(process.execPath, [cliPath, 'install-native-host', '--extension-id', extensionId], { env: userEnv(), encoding: 'utf8' });
  expect(install.status).toBe(0);
  const launcher = path.join(home, '.local', 'share', 'tabagent', 'tabagent-native-host');
  expect((lstatSync(launcher).mode & 0o777).toString(8)).toBe('755');

  await serveOnce();
  // Owner-only, still executable by its owner; the data directory's other files are 0600.
  expect((lstatSync(launcher).mode & 0o777).toString(8)).toBe('700');
  expect((lstatSync(path.join(home, '.local', 'share', 'tabagent', 'tabagent.db')).mode & 0o777).toString(8)).toBe('600');

  // As Chrome starts it: the launcher itself, the caller's origin as the first argument, frames on stdio.
  const host = spawn(launcher, [`chrome-extension://${extensionId}/`], { env: userEnv(), stdio: ['pipe', 'pipe', 'ignore'] });
  const decoder = createFrameDecoder();
  const reply = new Promise<unknown>((resolve, reject) => {
    host.stdout.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) if (frame.kind === 'message') resolve(frame.value);
    });
    host.once('error', reject);
    host.once('exit', (code) => reject(new Error(`the host exited with ${code} before replying`)));
  });
  host.stdin.write(encodeFrame({ id: 'health', request_id: 'h1', payload: null }));
  await expect(reply).resolves.toMatchObject({ request_id: 'h1', ok: true, data: { status: 'ok' } });
  const exited = new Promise((resolve) => host.once('exit', resolve));
  host.stdin.end();
  await exited;
}, 60_000);
