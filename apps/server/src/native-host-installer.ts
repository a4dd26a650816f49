import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidRequestError, safeParseJson } from '@tabagent/values';
import { defaultDataDir } from './data-dir.js';

/** The native messaging host name the extension connects to. */
export const nativeHostName = 'com.tabagent.host';

/** The extension's Firefox add-on id (`browser_specific_settings.gecko.id`). */

/** Browsers the installer knows. */
export const nativeHostBrowsers = ['chrome', 'chromium', 'edge', 'brave', 'firefox'] as const;
/** One browser the installer knows. */
export type NativeHostBrowser = (typeof nativeHostBrowsers)[number];

/** What a command run returned. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs an external command (Windows `reg`); injected so tests can assert the commands. */
export type CommandRunner = (command: string, args: readonly string[]) => Promise<CommandResult>;

/** Options shared by install, uninstall and doctor. */
export interface NativeHostLocationOptions {
  /** Browsers to act on (default: all). */
  browsers?: readonly NativeHostBrowser[] | 'all';
  /** Home directory (default `os.homedir()`). */
  homeDir?: string;
  /** Platform whose conventions apply (default `process.platform`). */
  platform?: NodeJS.Platform;
  /** Where the launcher script lives (default: the data directory; `%LOCALAPPDATA%\TabAgent` on Windows). */
  launcherDir?: string;
  /** `%LOCALAPPDATA%` on Windows (default from the environment, else `<home>\AppData\Local`). */
  localAppDataDir?: string;
  /**
   * Further Chromium-style `NativeMessagingHosts` folders to write the Chromium manifest into,
   * e.g. `<user-data-dir>/NativeMessagingHosts/` of a custom Chromium profile.
   */
  extraManifestDirs?: readonly string[];
  /** Runs `reg` on Windows (default: `execFile`). */
  runCommand?: CommandRunner;
}

/** Options of `installNativeHost`. */
export interface NativeHostInstallOptions extends NativeHostLocationOptions {
  /** Chromium extension ids (32 letters a-p) or their `chrome-extension://<id>/` origins. */
  extensionIds: readonly string[];
  /**
   * Firefox add-on ids for `allowed_extensions`. None by default: the Firefox manifest is written
   * only for ids the user names (an id nobody has claimed on addons.mozilla.org could be claimed
   * by anyone, and native messaging mints pairing tokens). Without any, `all` browsers means the
   * Chromium ones, and naming `firefox` is an error.
   */
  firefoxExtensionIds?: readonly string[];
  /** Absolute path of the Node binary the launcher runs (default `process.execPath`). */
  nodePath?: string;
  /** Absolute path of the server CLI script (`dist/cli.js`). */
  scriptPath: string;
  /** Arguments appended after `serve --mode native` (e.g. `['--data-dir', '/x']`). */
  extraServeArgs?: readonly string[];
}

/** A manifest written or removed, and for which browser. */
export interface NativeHostManifestLocation {
  browser: NativeHostBrowser | 'extra';
  path: string;
}

/** A Windows registry key pointing at a manifest. */
export interface NativeHostRegistryEntry {
  browser: NativeHostBrowser;
  key: string;
  manifestPath: string;
}

/** What `installNativeHost` did. */
export interface NativeHostInstallResult {
  launcherPath: string;
  manifests: NativeHostManifestLocation[];
  registry: NativeHostRegistryEntry[];
}

/** What `uninstallNativeHost` removed. */
export interface NativeHostUninstallResult {
  removed: string[];
  registryKeysRemoved: string[];
}

/** What `doctorNativeHost` found for one browser. */
export interface NativeHostDoctorEntry {
  browser: NativeHostBrowser | 'extra';
  manifestPath: string;
  /** The Windows registry key read, when on Windows. */
  registryKey?: string;
  found: boolean;
  /** The manifest parses and is named `com.tabagent.host` with type `stdio`. */
  valid: boolean;
  launcherPath: string | null;
  launcherExists: boolean;
  launcherExecutable: boolean;
  allowedOrigins: string[];
  allowedExtensions: string[];
  problems: string[];
}

interface ChromiumManifest {
  name: string;
  description: string;
  path: string;
  type: 'stdio';
  allowed_origins: string[];
}

interface FirefoxManifest {
  name: string;
  description: string;
  path: string;
  type: 'stdio';
  allowed_extensions: string[];
}

const manifestDescription = 'TabAgent local AI server (native messaging host)';
const chromiumManifestFile = `${nativeHostName}.json`;
const windowsFirefoxManifestFile = `${nativeHostName}.firefox.json`;

/** Per-user manifest folder of each browser on Linux and macOS. */
export function nativeHostManifestDirs(platform: NodeJS.Platform, homeDir: string): Record<NativeHostBrowser, string> {
  if (platform === 'darwin') {
    const support = path.join(homeDir, 'Library', 'Application Support');
    return {
      chrome: path.join(support, 'Google', 'Chrome', 'NativeMessagingHosts'),
      chromium: path.join(support, 'Chromium', 'NativeMessagingHosts'),
      edge: path.join(support, 'Microsoft Edge', 'NativeMessagingHosts'),
      brave: path.join(support, 'BraveSoftware', 'Brave-Browser', 'NativeMessagingHosts'),
      firefox: path.join(support, 'Mozilla', 'NativeMessagingHosts'),
    };
  }
  const config = path.join(homeDir, '.config');
  return {
    chrome: path.join(config, 'google-chrome', 'NativeMessagingHosts'),
    chromium: path.join(config, 'chromium', 'NativeMessagingHosts'),
    edge: path.join(config, 'microsoft-edge', 'NativeMessagingHosts'),
    brave: path.join(config, 'BraveSoftware', 'Brave-Browser', 'NativeMessagingHosts'),
    firefox: path.join(homeDir, '.mozilla', 'native-messaging-hosts'),
  };
}

/** The HKCU registry key of each browser on Windows. */
export function nativeHostRegistryKeys(): Record<NativeHostBrowser, string> {
  const suffix = `NativeMessagingHosts\\${nativeHostName}`;
  return {
    chrome: `HKCU\\Software\\Google\\Chrome\\${suffix}`,
    chromium: `HKCU\\Software\\Chromium\\${suffix}`,
    edge: `HKCU\\Software\\Microsoft\\Edge\\${suffix}`,
    brave: `HKCU\\Software\\BraveSoftware\\Brave-Browser\\${suffix}`,
    firefox: `HKCU\\Software\\Mozilla\\${suffix}`,
  };
}

/** `chrome-extension://<id>/` from an id or an origin; throws on anything else. */
export function toChromiumOrigin(extensionIdOrOrigin: string): string {
  const match = /^(?:chrome-extension:\/\/)?([a-p]{32})\/?$/.exec(extensionIdOrOrigin.trim());
  if (!match) {
    throw new InvalidRequestError(`Not a Chromium extension id: "${extensionIdOrOrigin}" (expected 32 letters a-p, as shown on chrome://extensions)`);
  }
  return `chrome-extension://${match[1] as string}/`;
}

/**
 * reg.exe by its full path: a bare `reg` is looked up through Windows' search order, which tries
 * the working directory first, so a reg.exe planted there would run with the user's rights.
 */
function regExe(): string {
  return path.win32.join(process.env['SystemRoot'] ?? 'C:\\Windows', 'System32', 'reg.exe');
}

const defaultRunCommand: CommandRunner = (command, args) =>
  new Promise((resolve) => {
    execFile(command, [...args], { windowsHide: true }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });

interface ResolvedLocations {
  platform: NodeJS.Platform;
  browsers: readonly NativeHostBrowser[];
  launcherPath: string;
  windowsDir: string;
  extraDirs: readonly string[];
  runCommand: CommandRunner;
}

function resolveLocations(options: NativeHostLocationOptions): ResolvedLocations {
  const platform = options.platform ?? process.platform;
  const homeDir = options.homeDir ?? os.homedir();
  const browsers = options.browsers === undefined || options.browsers === 'all' ? nativeHostBrowsers : options.browsers;
  for (const browser of browsers) {
    if (!(nativeHostBrowsers as readonly string[]).includes(browser))
      throw new InvalidRequestError(`Unknown browser "${browser}" (one of ${nativeHostBrowsers.join(', ')}, all)`);
  }
  const localAppData = options.localAppDataDir ?? process.env['LOCALAPPDATA'] ?? path.join(homeDir, 'AppData', 'Local');
  const windowsDir = path.join(localAppData, 'TabAgent');
  const launcherDir =
    options.launcherDir ??
    (platform === 'win32'
      ? windowsDir
      : defaultDataDir(platform, options.homeDir === undefined ? process.env : { ...process.env, XDG_DATA_HOME: undefined }, homeDir));
  const launcherPath = path.join(launcherDir, platform === 'win32' ? 'tabagent-native-host.bat' : 'tabagent-native-host');
  return { platform, browsers, launcherPath, windowsDir, extraDirs: options.extraManifestDirs ?? [], runCommand: options.runCommand ?? defaultRunCommand };
}

/** Quotes one argument for `/bin/sh` (single quotes; a quote inside becomes `'\''`). */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** Quotes one argument for a Windows batch file. */
function batchQuote(value: string): string {
  return `"${value.replaceAll('"', '""').replaceAll('%', '%%')}"`;
}

/** The launcher script Chrome starts: the right Node, the server CLI, native mode, the browser's arguments. */
export function renderLauncherScript(platform: NodeJS.Platform, nodePath: string, scriptPath: string, extraServeArgs: readonly string[] = []): string {
  if (platform === 'win32') {
    const extra = extraServeArgs
      .map(batchQuote)
      .map((arg) => ` ${arg}`)
      .join('');
    return `@echo off\r\n${batchQuote(nodePath)} ${batchQuote(scriptPath)} serve --mode native${extra} %*\r\n`;
  }
  const extra = extraServeArgs
    .map(shellQuote)
    .map((arg) => ` ${arg}`)
    .join('');
  return `#!/bin/sh\nexec ${shellQuote(nodePath)} ${shellQuote(scriptPath)} serve --mode native${extra} "$@"\n`;
}

function manifestTargets(locations: ResolvedLocations, homeDir: string): NativeHostManifestLocation[] {
  if (locations.platform === 'win32') {
    const targets: NativeHostManifestLocation[] = [];
    if (locations.browsers.some((browser) => browser !== 'firefox'))
      targets.push({ browser: 'chrome', path: path.join(locations.windowsDir, chromiumManifestFile) });
    if (locations.browsers.includes('firefox')) targets.push({ browser: 'firefox', path: path.join(locations.windowsDir, windowsFirefoxManifestFile) });
    return [...targets, ...locations.extraDirs.map((dir) => ({ browser: 'extra' as const, path: path.join(dir, chromiumManifestFile) }))];
  }
  const dirs = nativeHostManifestDirs(locations.platform, homeDir);
  return [
    ...locations.browsers.map((browser) => ({ browser, path: path.join(dirs[browser], chromiumManifestFile) })),
    ...locations.extraDirs.map((dir) => ({ browser: 'extra' as const, path: path.join(dir, chromiumManifestFile) })),
  ];
}

function windowsManifestFor(browser: NativeHostBrowser, windowsDir: string): string {
  return path.join(windowsDir, browser === 'firefox' ? windowsFirefoxManifestFile : chromiumManifestFile);
}

/**
 * Installs the native messaging host for the current user: writes the launcher script and the
 * host manifest into each browser's per-user folder (Linux, macOS), or one manifest per family
 * plus the HKCU registry keys (Windows).
 */
export async function installNativeHost(given: NativeHostInstallOptions): Promise<NativeHostInstallResult> {
  const allowedExtensions = [...new Set(given.firefoxExtensionIds ?? [])];
  if (allowedExtensions.length === 0 && Array.isArray(given.browsers) && given.browsers.includes('firefox')) {
    throw new InvalidRequestError("Firefox needs the add-on id to allow: give --firefox-extension-id ID (the extension's id in about:debugging)");
  }
  const options: NativeHostInstallOptions =
    allowedExtensions.length === 0 && (given.browsers === undefined || given.browsers === 'all')
      ? { ...given, browsers: nativeHostBrowsers.filter((browser) => browser !== 'firefox') }
      : given;
  const locations = resolveLocations(options);
  const homeDir = options.homeDir ?? os.homedir();
  const nodePath = options.nodePath ?? process.execPath;
  const platformPath = locations.platform === 'win32' ? path.win32 : path.posix;
  if (!platformPath.isAbsolute(nodePath) || !platformPath.isAbsolute(options.scriptPath))
    throw new InvalidRequestError('nodePath and scriptPath must be absolute paths');
  const allowedOrigins = [...new Set(options.extensionIds.map(toChromiumOrigin))];
  const chromiumWanted = locations.browsers.some((browser) => browser !== 'firefox') || locations.extraDirs.length > 0;
  if (chromiumWanted && allowedOrigins.length === 0)
    throw new InvalidRequestError('At least one --extension-id is required for Chromium browsers (see chrome://extensions)');

  await mkdir(path.dirname(locations.launcherPath), { recursive: true });
  await writeFile(locations.launcherPath, renderLauncherScript(locations.platform, nodePath, options.scriptPath, options.extraServeArgs));
  if (locations.platform !== 'win32') await chmod(locations.launcherPath, 0o755);

  const chromiumManifest: ChromiumManifest = {
    name: nativeHostName,
    description: manifestDescription,
    path: locations.launcherPath,
    type: 'stdio',
    allowed_origins: allowedOrigins,
  };
  const firefoxManifest: FirefoxManifest = {
    name: nativeHostName,
    description: manifestDescription,
    path: locations.launcherPath,
    type: 'stdio',
    allowed_extensions: allowedExtensions,
  };
  const manifests = manifestTargets(locations, homeDir);
  for (const target of manifests) {
    await mkdir(path.dirname(target.path), { recursive: true });
    const manifest = target.browser === 'firefox' ? firefoxManifest : chromiumManifest;
    await writeFile(target.path, `${JSON.stringify(manifest, null, 2)}\n`);
  }

  const registry: NativeHostRegistryEntry[] = [];
  if (locations.platform === 'win32') {
    const keys = nativeHostRegistryKeys();
    for (const browser of locations.browsers) {
      const manifestPath = windowsManifestFor(browser, locations.windowsDir);
      const result = await locations.runCommand(regExe(), ['add', keys[browser], '/ve', '/t', 'REG_SZ', '/d', manifestPath, '/f']);
      if (result.code !== 0) throw new InvalidRequestError(`reg add ${keys[browser]} failed: ${result.stderr.trim() || `exit code ${result.code}`}`);
      registry.push({ browser, key: keys[browser], manifestPath });
    }
  }
  return { launcherPath: locations.launcherPath, manifests, registry };
}

async function isOurManifest(file: string): Promise<boolean> {
  try {
    const parsed = safeParseJson(await readFile(file, 'utf8'));
    return parsed.success && typeof parsed.value === 'object' && parsed.value !== null && (parsed.value as { name?: unknown }).name === nativeHostName;
  } catch {
    return false;
  }
}

/** Removes the manifests, the launcher and (Windows) the registry keys `installNativeHost` wrote. */
export async function uninstallNativeHost(options: NativeHostLocationOptions = {}): Promise<NativeHostUninstallResult> {
  const locations = resolveLocations(options);
  const homeDir = options.homeDir ?? os.homedir();
  const removed: string[] = [];
  for (const target of manifestTargets(locations, homeDir)) {
    if (await isOurManifest(target.path)) {
      await rm(target.path, { force: true });
      removed.push(target.path);
    }
  }
  try {
    await stat(locations.launcherPath);
    await rm(locations.launcherPath, { force: true });
    removed.push(locations.launcherPath);
  } catch {
    // No launcher: nothing to remove.
  }
  const registryKeysRemoved: string[] = [];
  if (locations.platform === 'win32') {
    const keys = nativeHostRegistryKeys();
    for (const browser of locations.browsers) {
      const result = await locations.runCommand(regExe(), ['delete', keys[browser], '/f']);
      if (result.code === 0) registryKeysRemoved.push(keys[browser]);
    }
  }
  return { removed, registryKeysRemoved };
}

async function isExecutable(file: string, platform: NodeJS.Platform): Promise<boolean> {
  try {
    await access(file, platform === 'win32' ? fsConstants.R_OK : fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The manifest path a `reg query <key> /ve` answer names, if any. */
function parseRegQueryDefault(stdout: string): string | null {
  const match = /REG_SZ\s+(.+?)\s*$/m.exec(stdout);
  return match ? (match[1] as string) : null;
}

async function inspectManifest(
  browser: NativeHostBrowser | 'extra',
  manifestPath: string,
  platform: NodeJS.Platform,
  registryKey?: string,
): Promise<NativeHostDoctorEntry> {
  const entry: NativeHostDoctorEntry = {
    browser,
    manifestPath,
    found: false,
    valid: false,
    launcherPath: null,
    launcherExists: false,
    launcherExecutable: false,
    allowedOrigins: [],
    allowedExtensions: [],
    problems: [],
  };
  if (registryKey !== undefined) entry.registryKey = registryKey;
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch {
    entry.problems.push('manifest not found');
    return entry;
  }
  entry.found = true;
  const parsed = safeParseJson(text);
  if (!parsed.success || typeof parsed.value !== 'object' || parsed.value === null) {
    entry.problems.push('manifest is not valid JSON');
    return entry;
  }
  const manifest = parsed.value as Record<string, unknown>;
  entry.allowedOrigins = stringArray(manifest.allowed_origins);
  entry.allowedExtensions = stringArray(manifest.allowed_extensions);
  if (manifest.name !== nativeHostName) entry.problems.push(`manifest name is ${JSON.stringify(manifest.name)}, expected "${nativeHostName}"`);
  if (manifest.type !== 'stdio') entry.problems.push('manifest type is not "stdio"');
  if (browser === 'firefox' && entry.allowedExtensions.length === 0) entry.problems.push('allowed_extensions is empty');
  if (browser !== 'firefox' && entry.allowedOrigins.length === 0) entry.problems.push('allowed_origins is empty');
  if (typeof manifest.path === 'string') {
    entry.launcherPath = manifest.path;
    try {
      await stat(manifest.path);
      entry.launcherExists = true;
      entry.launcherExecutable = await isExecutable(manifest.path, platform);
      if (!entry.launcherExecutable) entry.problems.push('launcher is not executable');
    } catch {
      entry.problems.push(`launcher ${manifest.path} does not exist`);
    }
  } else {
    entry.problems.push('manifest has no path');
  }
  entry.valid = manifest.name === nativeHostName && manifest.type === 'stdio';
  return entry;
}

/** Reports, per browser, whether the host is installed and usable. */
export async function doctorNativeHost(options: NativeHostLocationOptions = {}): Promise<NativeHostDoctorEntry[]> {
  const locations = resolveLocations(options);
  const homeDir = options.homeDir ?? os.homedir();
  const entries: NativeHostDoctorEntry[] = [];
  if (locations.platform === 'win32') {
    const keys = nativeHostRegistryKeys();
    for (const browser of locations.browsers) {
      const result = await locations.runCommand(regExe(), ['query', keys[browser], '/ve']);
      const manifestPath = result.code === 0 ? parseRegQueryDefault(result.stdout) : null;
      if (manifestPath === null) {
        entries.push({
          browser,
          manifestPath: windowsManifestFor(browser, locations.windowsDir),
          registryKey: keys[browser],
          found: false,
          valid: false,
          launcherPath: null,
          launcherExists: false,
          launcherExecutable: false,
          allowedOrigins: [],
          allowedExtensions: [],
          problems: ['registry key not found'],
        });
      } else {
        entries.push(await inspectManifest(browser, manifestPath, locations.platform, keys[browser]));
      }
    }
    for (const dir of locations.extraDirs) entries.push(await inspectManifest('extra', path.join(dir, chromiumManifestFile), locations.platform));
    return entries;
  }
  for (const target of manifestTargets(locations, homeDir)) entries.push(await inspectManifest(target.browser, target.path, locations.platform));
  return entries;
}
