import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { acquireWriterLock, writerLockFile } from './writer-lock.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'writer-lock-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the memory-writer lock', () => {
  it('is taken by the first process, written with its pid, and removed on release', () => {
    const lock = acquireWriterLock(dir);
    expect(lock).not.toBeNull();
    expect(readFileSync(path.join(dir, writerLockFile), 'utf8')).toBe(`${process.pid}\n`);
    lock?.release();
    expect(existsSync(path.join(dir, writerLockFile))).toBe(false);
  });

  it('is refused while another live process holds it, and left to it', async () => {
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(dir, writerLockFile), `${holder.pid ?? 0}\n`);
      expect(acquireWriterLock(dir)).toBeNull();
      expect(readFileSync(path.join(dir, writerLockFile), 'utf8')).toBe(`${holder.pid ?? 0}\n`);
    } finally {
      holder.kill();
    }
  });

  it('takes over a lock left by a process that died', () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(path.join(dir, writerLockFile), `${gone.stdout}\n`);
    const lock = acquireWriterLock(dir);
    expect(lock).not.toBeNull();
    expect(readFileSync(path.join(dir, writerLockFile), 'utf8')).toBe(`${process.pid}\n`);
    lock?.release();
  });
});
