import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prepareDataDir } from './data-dir.js';

describe('prepareDataDir', () => {
  let outer: string;
  beforeEach(() => {
    outer = mkdtempSync(path.join(tmpdir(), 'data-dir-'));
  });
  afterEach(() => rmSync(outer, { recursive: true, force: true }));

  const refusal = (root: string, uid: number): string => {
    try {
      prepareDataDir(root, { uid });
      return 'accepted';
    } catch (error) {
      return (error as Error).message.replace(outer, '<outer>');
    }
  };

  it("takes a new folder, and a link of the user's own to a folder of theirs (a data directory on another disk)", () => {
    const uid = statSync(outer).uid;
    expect(prepareDataDir(path.join(outer, 'fresh'), { uid }).models).toBe(path.join(outer, 'fresh', 'models'));
    expect((statSync(path.join(outer, 'fresh')).mode & 0o777).toString(8)).toBe('700');
    mkdirSync(path.join(outer, 'big-disk'));
    symlinkSync(path.join(outer, 'big-disk'), path.join(outer, 'linked'));
    expect(refusal(path.join(outer, 'linked'), uid)).toBe('accepted');
  });

  it('refuses a folder or a link another account owns, and a file, before writing anything there', () => {
    // The folder is this process's: seen from another uid, it belongs to "another account".
    const mine = statSync(outer).uid;
    const other = mine + 1;
    mkdirSync(path.join(outer, 'planted'));
    symlinkSync(path.join(outer, 'planted'), path.join(outer, 'planted-link'));
    writeFileSync(path.join(outer, 'a-file'), 'x');
    expect({
      folder: refusal(path.join(outer, 'planted'), other),
      link: refusal(path.join(outer, 'planted-link'), other),
      file: refusal(path.join(outer, 'a-file'), mine),
    }).toEqual({
      folder: `The data directory <outer>/planted belongs to another account (uid ${mine}); choose a folder of your own with --data-dir`,
      link: `The data directory <outer>/planted-link is a symbolic link owned by another account (uid ${mine}); choose a folder of your own with --data-dir`,
      file: expect.stringContaining('EEXIST'),
    });
    expect(() => statSync(path.join(outer, 'planted', 'models'))).toThrow();
  });
});
