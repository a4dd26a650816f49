#!/usr/bin/env node
// Run by the test command before the browser tests: a machine without Chromium gets Debian's
// package when that can be done without asking (root on Debian or Ubuntu), and otherwise the test
// run stops here with the one command that fixes it.
import { spawnSync } from 'node:child_process';
import { findChromium, installHint, isDebianLike } from './find-chromium.mjs';

function fail(message) {
  process.stderr.write(`ensure-chromium: ${message}\n`);
  process.exit(1);
}

let found;
try {
  found = findChromium();
} catch (error) {
  fail(error.message);
}
if (found === null) {
  const canInstall =
    process.platform === 'linux' &&
    process.getuid?.() === 0 &&
    isDebianLike() &&
    spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (!canInstall) fail(`no Chromium or Chrome found for the browser tests. Install one: ${installHint}`);
  process.stderr.write("ensure-chromium: no Chromium found; installing Debian's chromium package with apt-get\n");
  const install = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null'], {
    stdio: 'inherit',
  });
  if (install.status !== 0) fail(`apt-get install chromium failed (exit ${install.status}). Install one: ${installHint}`);
  found = findChromium();
  if (found === null) fail(`chromium was installed but is not on PATH. Install one: ${installHint}`);
}
process.stdout.write(`ensure-chromium: using ${found}\n`);
