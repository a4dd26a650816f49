#!/usr/bin/env node
// The `tabagent` command as npm links it. npm links a package's bin when it installs, and only if
// the file exists then; the CLI itself is built later (dist/cli.js), so the bin is this tracked
// launcher, which is always there: `npm ci` links node_modules/.bin/tabagent, and `npx tabagent`
// finds it instead of asking the public registry for a package of that name.
// In the repository a missing build is made first (its output on stderr: stdout may carry native
// messaging frames); an installed package always ships dist/.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The workspace's own Nx (its CLI script), or null outside the repository. */
function workspaceNx(workspace) {
  if (!existsSync(join(workspace, 'nx.json'))) return null;
  try {
    const manifest = createRequire(join(workspace, 'package.json')).resolve('nx/package.json');
    return join(dirname(manifest), JSON.parse(readFileSync(manifest, 'utf8')).bin.nx);
  } catch {
    return null;
  }
}

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  const workspace = fileURLToPath(new URL('../../../', import.meta.url));
  const nx = workspaceNx(workspace);
  if (nx === null) {
    process.stderr.write(`tabagent: ${fileURLToPath(cli)} is missing; reinstall the package, or run "npm ci && npm run build" in its repository\n`);
    process.exit(1);
  }
  process.stderr.write('tabagent: the server is not built yet; building it (npx nx run server:build)\n');
  const build = spawnSync(process.execPath, [nx, 'run', 'server:build', '--outputStyle=stream'], {
    cwd: workspace,
    stdio: ['ignore', process.stderr, process.stderr],
    env: { ...process.env, NX_DAEMON: 'false', NX_TUI: 'false' },
  });
  if (build.status !== 0 || !existsSync(cli)) {
    process.stderr.write(`tabagent: the build failed (exit ${build.status ?? build.signal}); run "npm run build" in ${workspace} to see why\n`);
    process.exit(1);
  }
}
await import(cli.href);
