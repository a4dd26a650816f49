import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The rule of direction (ARCHITECTURE.md) is enforced by lint: @nx/enforce-module-boundaries over
// the project tags (eslint.config.mjs) and @nx/dependency-checks on each package.json. A project
// without a type tag would escape both, so every project must carry exactly one.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const typeTags = ['type:contract', 'type:envelope', 'type:transport', 'type:backend', 'type:memory', 'type:services', 'type:app', 'type:tooling'];

function projectsIn(folder: string): string[] {
  return readdirSync(path.join(root, folder)).map((name) => path.join(folder, name));
}

describe('project tags', () => {
  const projects = [...projectsIn('packages'), ...projectsIn('apps'), 'bench', 'tools'];

  it.each(projects)('%s has exactly one type tag', (project) => {
    const manifest = JSON.parse(readFileSync(path.join(root, project, 'project.json'), 'utf8')) as { tags?: string[] };
    expect((manifest.tags ?? []).filter((tag) => typeTags.includes(tag))).toHaveLength(1);
  });

  it('tags values as the contract and the transports, backends and memory packages by their layer', () => {
    const tagOf = (project: string): string | undefined =>
      (JSON.parse(readFileSync(path.join(root, project, 'project.json'), 'utf8')) as { tags: string[] }).tags[0];
    expect(Object.fromEntries(projectsIn('packages').map((project) => [path.basename(project), tagOf(project)]))).toEqual({
      values: 'type:contract',
      'route-envelope': 'type:envelope',
      api: 'type:transport',
      'native-messaging': 'type:transport',
      webrtc: 'type:transport',
      mcp: 'type:transport',
      hardware: 'type:backend',
      'gguf-loader': 'type:backend',
      'onnx-loader': 'type:backend',
      'model-cache': 'type:backend',
      upstream: 'type:backend',
      storage: 'type:memory',
      indexing: 'type:memory',
      weaver: 'type:memory',
      services: 'type:services',
    });
  });

  it('keeps the app thin: under 10% of the production lines (the handlers live in packages/services)', () => {
    const linesIn = (folder: string): number =>
      readdirSync(folder, { withFileTypes: true }).reduce((sum, entry) => {
        const full = path.join(folder, entry.name);
        if (entry.isDirectory()) return entry.name === 'test-support' ? sum : sum + linesIn(full);
        if (!entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) return sum;
        return sum + readFileSync(full, 'utf8').split('\n').length - 1;
      }, 0);
    const app = linesIn(path.join(root, 'apps/server/src'));
    const total = app + projectsIn('packages').reduce((sum, project) => sum + linesIn(path.join(root, project, 'src')), 0);
    expect(app / total).toBeLessThan(0.1);
  });

  it('keeps format-specific code out of the app: only the composition names a format', () => {
    // A third format is one adapter package plus one line in start-server.ts.
    const sources = (folder: string): string[] =>
      readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
        const full = path.join(folder, entry.name);
        if (entry.isDirectory()) return sources(full);
        return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
      });
    const naming = sources(path.join(root, 'apps/server/src')).filter((file) => /['"](?:gguf|onnx)['"]/u.test(readFileSync(file, 'utf8')));
    expect(naming.map((file) => path.relative(root, file))).toEqual([]);
  });
});
