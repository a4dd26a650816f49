import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { parseServeArguments } from '../src/server-config.js';
import { startServer } from '../src/start-server.js';

// A start-up that fails part way (a memory store that cannot open, a port in use) closes what it
// had opened before the error goes up: the listening socket, the model engines, the store and its
// weaver. Measured as this process's open file descriptors, which a leaked SQLite or LanceDB
// handle, or a bound socket, keeps open: after each failed start they are back where they were.
let root: string;
const openDescriptors = (): number => readdirSync('/proc/self/fd').length;
const start = (dataDir: string, port: number) =>
  startServer(parseServeArguments(['--port', String(port), '--data-dir', dataDir, '--threads', '1', '--gpu', 'off'], {}), {
    logger: pino({ level: 'silent' }),
  });

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'start-failure-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

it('releases what it opened when the port is taken, and the same data directory starts after', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  const dataDir = path.join(root, 'busy-port');
  try {
    // The first attempt loads the native modules (their descriptors stay for the process's life).
    await expect(start(dataDir, port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const before = openDescriptors();
    for (let attempt = 0; attempt < 3; attempt += 1) await expect(start(dataDir, port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(openDescriptors()).toBe(before);
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
  const server = await start(dataDir, 0);
  expect((await fetch(`${server.httpUrl}/v1/health`)).status).toBe(200);
  await server.close();
}, 60_000);

it('releases what it opened when the memory store cannot open, and says why', async () => {
  const dataDir = path.join(root, 'bad-store');
  mkdirSync(dataDir, { recursive: true });
  const server = await start(dataDir, 0);
  await server.close();
  writeFileSync(path.join(dataDir, 'tabagent.db'), 'this is not an SQLite database, but long enough to be read as one: '.repeat(100));
  // No write-ahead log beside it to recover the pages from: the file alone is what opens.
  for (const suffix of ['-wal', '-shm']) rmSync(path.join(dataDir, `tabagent.db${suffix}`), { force: true });
  // Matched by message: better-sqlite3's SqliteError comes from the realm that first loaded the
  // module, which jest's toThrow does not take for an Error when other test files ran first.
  const notADatabase = { message: expect.stringMatching(/not a database/u) as unknown };
  await expect(start(dataDir, 0)).rejects.toMatchObject(notADatabase);
  const before = openDescriptors();
  for (let attempt = 0; attempt < 3; attempt += 1) await expect(start(dataDir, 0)).rejects.toMatchObject(notADatabase);
  expect(openDescriptors()).toBe(before);
}, 60_000);
