import { execFile } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { startFakeHub, type FakeHub } from '@tabagent/model-cache/test-support';

// The README's quick start, literally: `npm run build && npx tabagent pull hf.co/...`, run from
// the repository root. npm links a workspace's bin when it installs and only if the file exists
// then; the server's bin is a tracked launcher (apps/server/bin/tabagent.mjs), so `npm ci` on a
// fresh clone links node_modules/.bin/tabagent before anything is built, and npx runs it instead
// of asking the public registry for a package called `tabagent` (not ours). In CI this repository
// is such a fresh clone, installed by `npm ci` before the build. npx runs here with the registry
// pointed at a closed port and offline, so a lookup there fails the test instead of succeeding.
// Network-free: the pull goes to a fake Hugging Face Hub over real HTTP.
const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const run = promisify(execFile);
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const version = (JSON.parse(readFileSync(path.join(repositoryRoot, 'apps/server/package.json'), 'utf8')) as { version: string }).version;

let hub: FakeHub;
let root: string;
let ggufBytes: Buffer;

beforeAll(async () => {
  hub = await startFakeHub();
  root = mkdtempSync(path.join(tmpdir(), 'readme-quick-start-'));
  writeTinyLlamaGguf(path.join(root, 'tiny.gguf'), { chatTemplate: chatMlToolsTemplate });
  ggufBytes = readFileSync(path.join(root, 'tiny.gguf'));
  await hub.addRepo('acme/Tiny-GGUF', { files: [{ path: 'Tiny-Q4_K_M.gguf', content: ggufBytes }] });
}, 60_000);

afterAll(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

/** The environment of a user's shell, with npm unable to reach any registry. */
function offlineEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_offline: 'true', npm_config_update_notifier: 'false', ...extra };
}

describe("the README's quick start", () => {
  it('has npm link tabagent to the tracked launcher, which exists before any build', () => {
    const link = path.join(repositoryRoot, 'node_modules', '.bin', 'tabagent');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(realpathSync(link)).toBe(path.join(repositoryRoot, 'apps', 'server', 'bin', 'tabagent.mjs'));
    const manifest = JSON.parse(readFileSync(path.join(repositoryRoot, 'apps/server/package.json'), 'utf8')) as {
      bin: Record<string, string>;
      files: string[];
    };
    expect(manifest.bin).toEqual({ tabagent: './bin/tabagent.mjs' });
    expect(manifest.files).toContain('bin');
  });

  it('runs `npx tabagent --version` from the repository root: our version, from our CLI, with no registry', async () => {
    const result = await run(npx, ['tabagent', '--version'], { cwd: repositoryRoot, env: offlineEnv({}) });
    expect(result.stdout).toBe(`${version}\n`);
  }, 60_000);

  it('runs `npx tabagent pull hf.co/...` from the repository root into the data directory', async () => {
    const dataDir = path.join(root, 'data');
    const result = await run(npx, ['tabagent', 'pull', 'hf.co/acme/Tiny-GGUF:Q4_K_M'], {
      cwd: repositoryRoot,
      env: offlineEnv({ HF_ENDPOINT: hub.url, TABAGENT_DATA_DIR: dataDir }),
    });
    expect(result.stdout.split('\n').at(-2)).toBe(
      `pulled Tiny-Q4_K_M (hf.co/acme/Tiny-GGUF:Q4_K_M, ${(ggufBytes.length / 1024 / 1024).toFixed(1)} MB) into ${path.join(dataDir, 'models', 'Tiny-Q4_K_M.gguf')}`,
    );
    expect(readFileSync(path.join(dataDir, 'models', 'Tiny-Q4_K_M.gguf')).equals(ggufBytes)).toBe(true);
  }, 60_000);

  it('says how to get the CLI when the launcher is installed without its build, and exits 1', async () => {
    // The launcher as a package would hold it with dist/ missing and no workspace around it.
    const installed = path.join(root, 'installed', 'node_modules', '@tabagent', 'server');
    mkdirSync(path.join(installed, 'bin'), { recursive: true });
    cpSync(path.join(repositoryRoot, 'apps/server/bin/tabagent.mjs'), path.join(installed, 'bin', 'tabagent.mjs'));
    await expect(run(process.execPath, [path.join(installed, 'bin', 'tabagent.mjs'), '--version'])).rejects.toMatchObject({
      code: 1,
      stdout: '',
      stderr: `tabagent: ${path.join(installed, 'dist', 'cli.js')} is missing; reinstall the package, or run "npm ci && npm run build" in its repository\n`,
    });
    expect(existsSync(path.join(installed, 'dist'))).toBe(false);
  });
});
