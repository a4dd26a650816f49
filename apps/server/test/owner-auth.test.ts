import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { pino } from 'pino';
import { recordAllowedOrigins } from '../src/allowed-origins-store.js';
import { parseServeArguments } from '../src/server-config.js';
import { startServer } from '../src/start-server.js';
import { cliPath } from './support/server-process.js';

// `--auth owner`: loopback is open to every account on the machine, so a server that holds one
// user's memory can require a key only that user can read. Other local users are the attacker.

const extension = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';
const run = promisify(execFile);
const roots: string[] = [];
const newRoot = (): string => {
  const root = mkdtempSync(path.join(tmpdir(), 'owner-auth-'));
  roots.push(root);
  return root;
};
const serve = (root: string, extra: string[] = []) =>
  startServer(parseServeArguments(['--port', '0', '--data-dir', root, '--auth', 'owner', '--threads', '1', '--gpu', 'off', '--webrtc', 'off', ...extra], {}), {
    logger: pino({ level: 'silent' }),
  });

afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

it('makes a key only its owner can read, requires it from every caller but health, keeps it across restarts, and tabagent key prints it', async () => {
  const root = newRoot();
  // Allowed origins get no pass: any local program can send the extension's Origin header.
  recordAllowedOrigins(root, [extension]);
  let server = await serve(root);
  const keyFile = path.join(root, 'owner.key');
  const key = readFileSync(keyFile, 'utf8').trim();
  expect(key).toMatch(/^tao_[A-Za-z0-9_-]{43}$/u);
  expect(statSync(keyFile).mode & 0o777).toBe(0o600);

  const statusOf = async (headers: Record<string, string>, route = '/v1/models'): Promise<[number, string | undefined]> => {
    const response = await fetch(`${server.httpUrl}${route}`, { headers });
    const body = (await response.json()) as { code?: string };
    return [response.status, body.code];
  };
  expect({
    none: await statusOf({}),
    wrongKey: await statusOf({ authorization: 'Bearer tao_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
    forgedExtensionOrigin: await statusOf({ origin: extension }),
    key: await statusOf({ authorization: `Bearer ${key}` }),
    health: await statusOf({}, '/health'),
  }).toEqual({
    none: [401, 'unauthorized'],
    wrongKey: [401, 'unauthorized'],
    forgedExtensionOrigin: [401, 'unauthorized'],
    key: [200, undefined],
    health: [200, undefined],
  });
  const owner = new OpenAI({ baseURL: `${server.httpUrl}/v1`, apiKey: key });
  expect((await owner.models.list()).data).toEqual([]);
  const stranger = new OpenAI({ baseURL: `${server.httpUrl}/v1`, apiKey: 'sk-guess', maxRetries: 0 });
  await expect(stranger.models.list()).rejects.toMatchObject({ status: 401 });
  await server.close();

  server = await serve(root);
  expect(readFileSync(keyFile, 'utf8').trim()).toBe(key);
  expect(await statusOf({ authorization: `Bearer ${key}` })).toEqual([200, undefined]);
  await server.close();

  const printed = await run(process.execPath, [cliPath, 'key', '--data-dir', root]);
  expect(printed).toEqual({ stdout: `${key}\n`, stderr: '' });
}, 60_000);

it('refuses to start on a key file it cannot trust, and on --auth owner with another key', async () => {
  const planted = `tao_${'B'.repeat(43)}`;
  const refusal = async (prepare: (keyFile: string) => void, extra: string[] = []): Promise<string> => {
    const root = newRoot();
    prepare(path.join(root, 'owner.key'));
    return serve(root, extra).then(
      async (server) => {
        await server.close();
        return 'started';
      },
      (error: unknown) => (error as Error).message.replace(root, '<root>'),
    );
  };
  const decoy = path.join(newRoot(), 'decoy');
  writeFileSync(decoy, planted, { mode: 0o600 });
  expect({
    symlink: await refusal((file) => symlinkSync(decoy, file)),
    readableByOthers: await refusal((file) => {
      writeFileSync(file, planted);
      chmodSync(file, 0o644);
    }),
    notAKey: await refusal((file) => writeFileSync(file, 'hunter2', { mode: 0o600 })),
    folder: await refusal((file) => mkdirSync(file)),
    withApiKey: await refusal(() => undefined, ['--api-key', 'k']),
  }).toEqual({
    symlink: '<root>/owner.key is a symbolic link; delete it and start again with --auth owner to make a new key',
    readableByOthers: '<root>/owner.key can be read by other accounts (mode 0644); delete it and start again with --auth owner to make a new key',
    notAKey: '<root>/owner.key does not hold an owner key (tao_ and 43 characters); delete it and start again with --auth owner to make a new key',
    folder: '<root>/owner.key is not a regular file; delete it and start again with --auth owner to make a new key',
    withApiKey: '--auth owner makes and keeps its own key in <data-dir>/owner.key (print it with tabagent key); drop --api-key and --api-key-file',
  });
  // The decoy a link pointed at is untouched.
  expect(readFileSync(decoy, 'utf8')).toBe(planted);
}, 60_000);
