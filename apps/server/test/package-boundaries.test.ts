import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The one rule of direction (ARCHITECTURE.md): values depends on nothing of ours; transports know
// only values; every package depends only on packages below it; apps/server knows everything.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const layer: Record<string, number> = {
  values: 0,
  hardware: 1,
  storage: 1,
  indexing: 2,
  'onnx-loader': 2,
  'gguf-loader': 2,
  weaver: 3,
  api: 1,
  'native-messaging': 1,
  webrtc: 1,
};
const transports = new Set(['api', 'native-messaging', 'webrtc']);

function ourDependencies(packageDir: string): string[] {
  const manifest = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
  return Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })
    .filter((name) => name.startsWith('@tabagent/'))
    .map((name) => name.slice('@tabagent/'.length));
}

function importedPackages(dir: string): string[] {
  const found = new Set<string>();
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
        for (const match of readFileSync(full, 'utf8').matchAll(/from '@tabagent\/([a-z-]+)/g)) found.add(match[1] as string);
      }
    }
  };
  walk(dir);
  return [...found];
}

describe('package boundaries', () => {
  const packages = readdirSync(path.join(root, 'packages'));

  it('knows every package', () => {
    expect(packages.sort()).toEqual(Object.keys(layer).sort());
  });

  it.each(packages)('%s depends only downwards, and transports only on values', (name) => {
    const dir = path.join(root, 'packages', name);
    const deps = ourDependencies(dir);
    const violations = deps.filter((dep) => (transports.has(name) ? dep !== 'values' : (layer[dep] ?? 99) >= (layer[name] ?? -1)));
    expect(violations).toEqual([]);
  });

  it.each(packages.filter((name) => readdirSync(path.join(root, 'packages', name)).includes('src')))('%s imports only the packages it declares', (name) => {
    const dir = path.join(root, 'packages', name);
    const declared = new Set(ourDependencies(dir));
    expect(importedPackages(path.join(dir, 'src')).filter((imported) => imported !== name && !declared.has(imported))).toEqual([]);
  });
});
