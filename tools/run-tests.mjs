#!/usr/bin/env node
// `npm test`: every project's format check, lint, type check and tests, through Nx (cached, one
// task per project and target, as CI and `npx nx test <name>` run them).
//
// Why not one `nx run-many`: Nx starts the ready task with the most dependents first, so the
// server's test suite (the longest, and nothing depends on it) started only after every other
// task had finished, and the run took the sum of both (5 min 41 s here, the server's tests alone
// 2 min 56 s of it, started at 2 min 45 s). So the builds come first (with Chromium for the browser
// tests), then the server's tests run beside everything else.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nxManifest = createRequire(join(root, 'package.json')).resolve('nx/package.json');
const nxCli = join(dirname(nxManifest), JSON.parse(readFileSync(nxManifest, 'utf8')).bin.nx);
const env = { ...process.env, NX_DAEMON: process.env.NX_DAEMON ?? 'false', NX_TUI: 'false', NX_NO_CLOUD: 'true' };
const checks = ['format-check', 'lint', 'typecheck'];

let commands = 0;

/**
 * Runs one Nx command, its output passed on line by line (two run at once), and resolves with its
 * exit code and duration. With NX_PROFILE=file.json each command writes its task timings to
 * file-1.json, file-2.json, ... (Nx would have them overwrite one file).
 */
function nx(label, args) {
  const started = performance.now();
  commands += 1;
  const profile = process.env.NX_PROFILE ? { NX_PROFILE: process.env.NX_PROFILE.replace(/(\.json)?$/u, `-${commands}.json`) } : {};
  const child = spawn(process.execPath, [nxCli, ...args, '--outputStyle=stream'], {
    cwd: root,
    env: { ...env, ...profile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const [from, to] of [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ]) {
    let pending = '';
    from.on('data', (bytes) => {
      const lines = (pending + bytes.toString('utf8')).split('\n');
      pending = lines.pop() ?? '';
      if (lines.length > 0) to.write(`${lines.join('\n')}\n`);
    });
    from.on('end', () => pending && to.write(`${pending}\n`));
  }
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ label, code: 1, seconds: 0, error }));
    child.once('close', (code, signal) => resolve({ label, code: code ?? (signal ? 1 : 0), seconds: (performance.now() - started) / 1000 }));
  });
}

/** Runs Nx commands one after the other, all of them even when one fails. */
async function inOrder(steps) {
  const results = [];
  for (const [label, args] of steps) results.push(await nx(label, args));
  return results;
}

const started = performance.now();
const results = [await nx('builds (and Chromium for the browser tests)', ['run-many', '-t', 'build', 'ensure-browser', '--parallel=2'])];
if (results[0].code === 0) {
  results.push(
    ...(
      await Promise.all([
        inOrder([['server tests', ['run', 'server:test', '--excludeTaskDependencies']]]),
        inOrder([
          // Without their task dependencies: the builds ran in the first phase, and Nx, asked again,
          // restores each package's dist/ from its cache (deleting it first) while the server's
          // tests import from those folders (a run failed on a dist file missing for that moment).
          // Two at a time beside the server's suite (three processes on a 2-core machine): with one
          // at a time this chain (about 210 s of tasks, then the server's checks) outlasted the
          // server's tests (about 190 s) and set the run's length.
          ['every other project: checks and tests', ['run-many', '-t', ...checks, 'test', '--exclude=server', '--parallel=2', '--excludeTaskDependencies']],
          ['server: checks', ['run-many', '-t', ...checks, '-p', 'server', '--parallel=1', '--excludeTaskDependencies']],
        ]),
      ])
    ).flat(),
  );
}
const failed = results.filter((result) => result.code !== 0);
process.stdout.write(
  [
    '',
    `npm test: ${failed.length === 0 ? 'every check and test passed' : `FAILED: ${failed.map((result) => result.label).join(', ')}`} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
    ...results.map((result) => `  ${result.label}: ${result.code === 0 ? 'passed' : `failed (exit ${result.code})`} in ${result.seconds.toFixed(0)} s`),
    '',
  ].join('\n'),
);
process.exitCode = failed.length === 0 ? 0 : 1;
