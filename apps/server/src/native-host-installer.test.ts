import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  doctorNativeHost,
  installNativeHost,
  renderLauncherScript,
  toChromiumOrigin,
  uninstallNativeHost,
  type CommandRunner,
} from './native-host-installer.js';

const extensionId = 'fkkeoobeahalebjpbockfedlncckobjb';
const origin = `chrome-extension://${extensionId}/`;

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

describe('native host installer', () => {
  let homeDir: string;

  beforeEach(async () => {
    homeDir = await mkdtemp(path.join(os.tmpdir(), 'tabagent-home-'));
  });

  afterEach(async () => {
    await rm(homeDir, { recursive: true, force: true });
  });

  it('writes a launcher and the manifests into every Linux browser folder', async () => {
    const result = await installNativeHost({
      extensionIds: [extensionId],
      firefoxExtensionIds: ['tabagent@tabagent.com'],
      nodePath: '/usr/bin/node',
      scriptPath: '/opt/tabagent/dist/cli.js',
      homeDir,
      platform: 'linux',
    });
    const launcherPath = path.join(homeDir, '.local', 'share', 'tabagent', 'tabagent-native-host');
    expect(result.launcherPath).toBe(launcherPath);
    expect(await readFile(launcherPath, 'utf8')).toBe(`#!/bin/sh\nexec '/usr/bin/node' '/opt/tabagent/dist/cli.js' serve --mode native "$@"\n`);
    expect((await stat(launcherPath)).mode & 0o777).toBe(0o755);
    expect(result.manifests).toEqual([
      { browser: 'chrome', path: path.join(homeDir, '.config/google-chrome/NativeMessagingHosts/com.tabagent.host.json') },
      { browser: 'chromium', path: path.join(homeDir, '.config/chromium/NativeMessagingHosts/com.tabagent.host.json') },
      { browser: 'edge', path: path.join(homeDir, '.config/microsoft-edge/NativeMessagingHosts/com.tabagent.host.json') },
      { browser: 'brave', path: path.join(homeDir, '.config/BraveSoftware/Brave-Browser/NativeMessagingHosts/com.tabagent.host.json') },
      { browser: 'firefox', path: path.join(homeDir, '.mozilla/native-messaging-hosts/com.tabagent.host.json') },
    ]);
    expect(await readJson(result.manifests[0]?.path as string)).toEqual({
      name: 'com.tabagent.host',
      description: 'TabAgent local AI server (native messaging host)',
      path: launcherPath,
      type: 'stdio',
      allowed_origins: [origin],
    });
    expect(await readJson(result.manifests[4]?.path as string)).toEqual({
      name: 'com.tabagent.host',
      description: 'TabAgent local AI server (native messaging host)',
      path: launcherPath,
      type: 'stdio',
      allowed_extensions: ['tabagent@tabagent.com'],
    });
    expect(result.registry).toEqual([]);
  });

  it('writes the macOS folders, only for the browsers asked, plus extra folders', async () => {
    const extra = path.join(homeDir, 'profile', 'NativeMessagingHosts');
    const result = await installNativeHost({
      extensionIds: [origin, 'abcdefghijklmnopabcdefghijklmnop'],
      browsers: ['chrome', 'edge', 'firefox'],
      firefoxExtensionIds: ['tabagent@tabagent.com'],
      nodePath: '/opt/homebrew/bin/node',
      scriptPath: "/Applications/Tab Agent's/cli.js",
      homeDir,
      platform: 'darwin',
      extraManifestDirs: [extra],
      extraServeArgs: ['--data-dir', '/Users/u/TabAgent data'],
    });
    const support = path.join(homeDir, 'Library', 'Application Support');
    expect(result.launcherPath).toBe(path.join(support, 'TabAgent', 'tabagent-native-host'));
    expect(result.manifests.map((entry) => entry.path)).toEqual([
      path.join(support, 'Google/Chrome/NativeMessagingHosts/com.tabagent.host.json'),
      path.join(support, 'Microsoft Edge/NativeMessagingHosts/com.tabagent.host.json'),
      path.join(support, 'Mozilla/NativeMessagingHosts/com.tabagent.host.json'),
      path.join(extra, 'com.tabagent.host.json'),
    ]);
    expect(await readFile(result.launcherPath, 'utf8')).toBe(
      `#!/bin/sh\nexec '/opt/homebrew/bin/node' '/Applications/Tab Agent'\\''s/cli.js' serve --mode native '--data-dir' '/Users/u/TabAgent data' "$@"\n`,
    );
    expect(await readJson(path.join(extra, 'com.tabagent.host.json'))).toMatchObject({
      allowed_origins: [origin, 'chrome-extension://abcdefghijklmnopabcdefghijklmnop/'],
    });
    await expect(stat(path.join(support, 'Chromium'))).rejects.toThrow('ENOENT');
  });

  it('reports what is installed, then removes it all', async () => {
    await installNativeHost({
      extensionIds: [extensionId],
      browsers: ['chrome', 'firefox'],
      firefoxExtensionIds: ['tabagent@tabagent.com'],
      nodePath: '/usr/bin/node',
      scriptPath: '/opt/cli.js',
      homeDir,
      platform: 'linux',
    });
    const report = await doctorNativeHost({ homeDir, platform: 'linux', browsers: ['chrome', 'chromium', 'firefox'] });
    const launcherPath = path.join(homeDir, '.local/share/tabagent/tabagent-native-host');
    expect(report).toEqual([
      {
        browser: 'chrome',
        manifestPath: path.join(homeDir, '.config/google-chrome/NativeMessagingHosts/com.tabagent.host.json'),
        found: true,
        valid: true,
        launcherPath,
        launcherExists: true,
        launcherExecutable: true,
        allowedOrigins: [origin],
        allowedExtensions: [],
        problems: [],
      },
      {
        browser: 'chromium',
        manifestPath: path.join(homeDir, '.config/chromium/NativeMessagingHosts/com.tabagent.host.json'),
        found: false,
        valid: false,
        launcherPath: null,
        launcherExists: false,
        launcherExecutable: false,
        allowedOrigins: [],
        allowedExtensions: [],
        problems: ['manifest not found'],
      },
      {
        browser: 'firefox',
        manifestPath: path.join(homeDir, '.mozilla/native-messaging-hosts/com.tabagent.host.json'),
        found: true,
        valid: true,
        launcherPath,
        launcherExists: true,
        launcherExecutable: true,
        allowedOrigins: [],
        allowedExtensions: ['tabagent@tabagent.com'],
        problems: [],
      },
    ]);
    const removed = await uninstallNativeHost({ homeDir, platform: 'linux' });
    expect(removed).toEqual({
      removed: [
        path.join(homeDir, '.config/google-chrome/NativeMessagingHosts/com.tabagent.host.json'),
        path.join(homeDir, '.mozilla/native-messaging-hosts/com.tabagent.host.json'),
        launcherPath,
      ],
      registryKeysRemoved: [],
    });
    const after = await doctorNativeHost({ homeDir, platform: 'linux', browsers: ['chrome'] });
    expect(after[0]).toMatchObject({ found: false, problems: ['manifest not found'] });
  });

  it('writes a Firefox manifest only for add-on ids the user names: an unclaimed default id could be claimed by anyone', async () => {
    const result = await installNativeHost({ extensionIds: [extensionId], nodePath: '/usr/bin/node', scriptPath: '/opt/cli.js', homeDir, platform: 'linux' });
    expect(result.manifests.map((manifest) => manifest.browser)).toEqual(['chrome', 'chromium', 'edge', 'brave']);
    expect(existsSync(path.join(homeDir, '.mozilla/native-messaging-hosts/com.tabagent.host.json'))).toBe(false);
    await expect(
      installNativeHost({
        extensionIds: [extensionId],
        browsers: ['chrome', 'firefox'],
        nodePath: '/usr/bin/node',
        scriptPath: '/opt/cli.js',
        homeDir,
        platform: 'linux',
      }),
    ).rejects.toThrow("Firefox needs the add-on id to allow: give --firefox-extension-id ID (the extension's id in about:debugging)");
  });

  it('flags a manifest whose launcher is missing or not executable', async () => {
    await installNativeHost({
      extensionIds: [extensionId],
      browsers: ['chrome'],
      nodePath: '/usr/bin/node',
      scriptPath: '/opt/cli.js',
      homeDir,
      platform: 'linux',
    });
    const launcherPath = path.join(homeDir, '.local/share/tabagent/tabagent-native-host');
    await writeFile(launcherPath, '#!/bin/sh\n', { mode: 0o644 });
    const { chmod } = await import('node:fs/promises');
    await chmod(launcherPath, 0o644);
    const [notExecutable] = await doctorNativeHost({ homeDir, platform: 'linux', browsers: ['chrome'] });
    expect(notExecutable?.problems).toEqual(['launcher is not executable']);
    await rm(launcherPath);
    const [missing] = await doctorNativeHost({ homeDir, platform: 'linux', browsers: ['chrome'] });
    expect(missing).toMatchObject({ found: true, launcherExists: false, problems: [`launcher ${launcherPath} does not exist`] });
  });

  it('writes the Windows manifests and registry keys through the command runner', async () => {
    // By its full path: a bare `reg` would be searched for in the working directory first.
    const regExe = 'C:\\Windows\\System32\\reg.exe';
    expect(process.env['SystemRoot']).toBeUndefined();
    const commands: Array<[string, readonly string[]]> = [];
    const registry = new Map<string, string>();
    const runCommand: CommandRunner = async (command, args) => {
      commands.push([command, args]);
      const [verb, key] = args as [string, string];
      if (verb === 'add') registry.set(key, args[6] as string);
      if (verb === 'delete')
        return registry.delete(key)
          ? { code: 0, stdout: '', stderr: '' }
          : { code: 1, stdout: '', stderr: 'ERROR: The system was unable to find the specified registry key or value.' };
      if (verb === 'query') {
        const value = registry.get(key);
        return value === undefined
          ? { code: 1, stdout: '', stderr: 'not found' }
          : { code: 0, stdout: `\r\n${key}\r\n    (Default)    REG_SZ    ${value}\r\n\r\n`, stderr: '' };
      }
      return { code: 0, stdout: '', stderr: '' };
    };
    const localAppDataDir = path.join(homeDir, 'AppData', 'Local');
    const result = await installNativeHost({
      extensionIds: [extensionId],
      firefoxExtensionIds: ['tabagent@tabagent.com'],
      nodePath: 'C:\\Program Files\\nodejs\\node.exe',
      scriptPath: 'C:\\tabagent\\dist\\cli.js',
      homeDir,
      platform: 'win32',
      localAppDataDir,
      runCommand,
    });
    const dir = path.join(localAppDataDir, 'TabAgent');
    const chromiumManifest = path.join(dir, 'com.tabagent.host.json');
    const firefoxManifest = path.join(dir, 'com.tabagent.host.firefox.json');
    expect(result.launcherPath).toBe(path.join(dir, 'tabagent-native-host.bat'));
    expect(await readFile(result.launcherPath, 'utf8')).toBe(
      '@echo off\r\n"C:\\Program Files\\nodejs\\node.exe" "C:\\tabagent\\dist\\cli.js" serve --mode native %*\r\n',
    );
    expect(await readJson(chromiumManifest)).toMatchObject({ path: result.launcherPath, allowed_origins: [origin] });
    expect(await readJson(firefoxManifest)).toMatchObject({ path: result.launcherPath, allowed_extensions: ['tabagent@tabagent.com'] });
    expect(commands).toEqual([
      [regExe, ['add', 'HKCU\\Software\\Google\\Chrome\\NativeMessagingHosts\\com.tabagent.host', '/ve', '/t', 'REG_SZ', '/d', chromiumManifest, '/f']],
      [regExe, ['add', 'HKCU\\Software\\Chromium\\NativeMessagingHosts\\com.tabagent.host', '/ve', '/t', 'REG_SZ', '/d', chromiumManifest, '/f']],
      [regExe, ['add', 'HKCU\\Software\\Microsoft\\Edge\\NativeMessagingHosts\\com.tabagent.host', '/ve', '/t', 'REG_SZ', '/d', chromiumManifest, '/f']],
      [
        regExe,
        ['add', 'HKCU\\Software\\BraveSoftware\\Brave-Browser\\NativeMessagingHosts\\com.tabagent.host', '/ve', '/t', 'REG_SZ', '/d', chromiumManifest, '/f'],
      ],
      [regExe, ['add', 'HKCU\\Software\\Mozilla\\NativeMessagingHosts\\com.tabagent.host', '/ve', '/t', 'REG_SZ', '/d', firefoxManifest, '/f']],
    ]);
    const report = await doctorNativeHost({ homeDir, platform: 'win32', localAppDataDir, runCommand, browsers: ['edge', 'firefox'] });
    expect(report.map((entry) => [entry.browser, entry.registryKey, entry.manifestPath, entry.found, entry.launcherExists, entry.problems])).toEqual([
      ['edge', 'HKCU\\Software\\Microsoft\\Edge\\NativeMessagingHosts\\com.tabagent.host', chromiumManifest, true, true, []],
      ['firefox', 'HKCU\\Software\\Mozilla\\NativeMessagingHosts\\com.tabagent.host', firefoxManifest, true, true, []],
    ]);
    commands.length = 0;
    const removed = await uninstallNativeHost({ homeDir, platform: 'win32', localAppDataDir, runCommand });
    expect(removed.removed).toEqual([chromiumManifest, firefoxManifest, result.launcherPath]);
    expect(removed.registryKeysRemoved).toHaveLength(5);
    expect(commands.every(([command, args]) => command === regExe && args[0] === 'delete' && args[2] === '/f')).toBe(true);
    expect(registry.size).toBe(0);
  });

  it('fails clearly when reg fails, on bad ids and on relative paths', async () => {
    const failing: CommandRunner = async () => ({ code: 1, stdout: '', stderr: 'ERROR: Access is denied.' });
    await expect(
      installNativeHost({
        extensionIds: [extensionId],
        browsers: ['chrome'],
        nodePath: '/n',
        scriptPath: '/s',
        homeDir,
        platform: 'win32',
        localAppDataDir: homeDir,
        runCommand: failing,
      }),
    ).rejects.toThrow('reg add HKCU\\Software\\Google\\Chrome\\NativeMessagingHosts\\com.tabagent.host failed: ERROR: Access is denied.');
    await expect(installNativeHost({ extensionIds: ['not-an-id'], nodePath: '/n', scriptPath: '/s', homeDir, platform: 'linux' })).rejects.toThrow(
      'Not a Chromium extension id: "not-an-id" (expected 32 letters a-p, as shown on chrome://extensions)',
    );
    await expect(installNativeHost({ extensionIds: [], browsers: ['chrome'], nodePath: '/n', scriptPath: '/s', homeDir, platform: 'linux' })).rejects.toThrow(
      'At least one --extension-id is required for Chromium browsers',
    );
    await expect(installNativeHost({ extensionIds: [extensionId], nodePath: 'node', scriptPath: '/s', homeDir, platform: 'linux' })).rejects.toThrow(
      'nodePath and scriptPath must be absolute paths',
    );
    expect(
      await installNativeHost({
        extensionIds: [],
        browsers: ['firefox'],
        firefoxExtensionIds: ['tabagent@tabagent.com'],
        nodePath: '/n',
        scriptPath: '/s',
        homeDir,
        platform: 'linux',
      }),
    ).toMatchObject({
      manifests: [{ browser: 'firefox' }],
    });
  });

  it('normalises ids and renders launchers', () => {
    expect(toChromiumOrigin(`chrome-extension://${extensionId}`)).toBe(origin);
    expect(renderLauncherScript('linux', '/n', '/c')).toBe(`#!/bin/sh\nexec '/n' '/c' serve --mode native "$@"\n`);
  });
});
