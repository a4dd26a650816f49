import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { routeList } from '@tabagent/values';

// The README's route table is what a reader trusts: it lists every operation of the catalogue,
// with its id, method, path and other paths, and nothing that is not there.
const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface Row {
  id: string;
  method: string;
  path: string;
  aliases: string[];
}

function readmeRoutes(): Row[] {
  const readme = readFileSync(path.join(repositoryRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('| route id | method and path | status |');
  expect(start).toBeGreaterThan(0);
  const lines = readme.slice(start).split('\n').slice(2);
  const rows: Row[] = [];
  for (const line of lines) {
    if (!line.startsWith('|')) break;
    const [id, methodAndPath] = line
      .split('|')
      .slice(1, 3)
      .map((cell) => cell.trim());
    const match = /^(GET|POST|PUT|DELETE) `([^`]+)`(?: \(also (.+)\))?$/u.exec(methodAndPath ?? '');
    if (match === null) throw new Error(`README route row not in the form "METHOD \`/path\` (also \`/other\`)": ${line}`);
    rows.push({
      id: (id ?? '').replaceAll('`', ''),
      method: match[1] ?? '',
      path: match[2] ?? '',
      aliases: [...(match[3] ?? '').matchAll(/`([^`]+)`/gu)].map((alias) => alias[1] ?? ''),
    });
  }
  return rows;
}

describe("README's route table", () => {
  it('lists every route of the catalogue, in its order, with its method, path and other paths, and nothing else', () => {
    const catalogue = routeList.map((route) => ({ id: route.id, method: route.method, path: route.path, aliases: [...(route.aliases ?? [])] }));
    expect(readmeRoutes()).toEqual(catalogue);
  });

  it('has the models.alias row', () => {
    expect(readmeRoutes().find((row) => row.id === 'models.alias')).toEqual({ id: 'models.alias', method: 'POST', path: '/v1/models/alias', aliases: [] });
  });
});
