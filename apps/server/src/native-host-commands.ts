import { fileURLToPath } from 'node:url';
import { InvalidRequestError } from '@tabagent/values';
import { recordAllowedOrigins } from './allowed-origins-store.js';
import { defaultDataDir, prepareDataDir } from './data-dir.js';
import {
  toChromiumOrigin,
  doctorNativeHost,
  installNativeHost,
  nativeHostBrowsers,
  uninstallNativeHost,
  type NativeHostBrowser,
  type NativeHostLocationOptions,
} from './native-host-installer.js';

function isNativeHostBrowser(name: string): name is NativeHostBrowser {
  return (nativeHostBrowsers as readonly string[]).includes(name);
}

interface ParsedInstallArguments {
  extensionIds: string[];
  browsers: NativeHostBrowser[] | 'all';
  dataDir: string;
  extraManifestDirs: string[];
  /** Firefox add-on ids (`--firefox-extension-id`); without any, no Firefox manifest is written. */
  firefoxExtensionIds: string[];
  serveArgs: string[];
}

/** The ids of a comma-separated flag value (`--extension-id a,b`), blanks dropped. */
function idList(value: string): string[] {
  return value
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
}

function parseInstallArguments(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedInstallArguments {
  const parsed: ParsedInstallArguments = {
    extensionIds: [],
    browsers: 'all',
    dataDir: env['TABAGENT_DATA_DIR'] || defaultDataDir(),
    extraManifestDirs: [],
    firefoxExtensionIds: [],
    serveArgs: [],
  };
  for (let index = 0; index < argv.length; index += 1) {
    const flag = argv[index] as string;
    const value = argv[index + 1];
    const need = (): string => {
      if (value === undefined) throw new InvalidRequestError(`${flag} needs a value`);
      index += 1;
      return value;
    };
    switch (flag) {
      case '--extension-id':
        parsed.extensionIds.push(...idList(need()));
        break;
      case '--browser': {
        const browser = need();
        if (browser === 'all') parsed.browsers = 'all';
        else if (isNativeHostBrowser(browser)) parsed.browsers = [...(parsed.browsers === 'all' ? [] : parsed.browsers), browser];
        else throw new InvalidRequestError(`--browser must be one of ${nativeHostBrowsers.join(', ')} or all, got "${browser}"`);
        break;
      }
      case '--data-dir':
        parsed.dataDir = need();
        parsed.serveArgs.push('--data-dir', parsed.dataDir);
        break;
      case '--manifest-dir':
        parsed.extraManifestDirs.push(need());
        break;
      case '--firefox-extension-id':
        parsed.firefoxExtensionIds.push(...idList(need()));
        break;
      default:
        throw new InvalidRequestError(`Unknown option: ${flag}`);
    }
  }
  return parsed;
}

function locationOptions(parsed: ParsedInstallArguments): NativeHostLocationOptions {
  return { browsers: parsed.browsers, launcherDir: parsed.dataDir, extraManifestDirs: parsed.extraManifestDirs };
}

/** `tabagent install-native-host --extension-id <id> [--browser ...] [--data-dir DIR] [--manifest-dir DIR]` */
export async function runInstallNativeHost(argv: readonly string[], write: (text: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const parsed = parseInstallArguments(argv, env);
  if (parsed.extensionIds.length === 0 && parsed.firefoxExtensionIds.length === 0)
    throw new InvalidRequestError('--extension-id is required (the id shown in chrome://extensions; for Firefox, --firefox-extension-id)');
  const result = await installNativeHost({
    ...locationOptions(parsed),
    extensionIds: parsed.extensionIds,
    firefoxExtensionIds: parsed.firefoxExtensionIds,
    scriptPath: fileURLToPath(new URL('./cli.js', import.meta.url)),
    extraServeArgs: parsed.serveArgs,
  });
  // The HTTP API then lets exactly these extensions in, with no --allowed-origin to set by hand.
  const origins = recordAllowedOrigins(prepareDataDir(parsed.dataDir).root, parsed.extensionIds.map(toChromiumOrigin));
  write(`allowed origins (HTTP API): ${origins.join(', ')}\n`);
  write(`launcher: ${result.launcherPath}\n`);
  for (const manifest of result.manifests) write(`manifest (${manifest.browser}): ${manifest.path}\n`);
  for (const entry of result.registry) write(`registry (${entry.browser}): ${entry.key}\n`);
}

/** `tabagent uninstall-native-host [--browser ...] [--data-dir DIR] [--manifest-dir DIR]` */
export async function runUninstallNativeHost(argv: readonly string[], write: (text: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const result = await uninstallNativeHost(locationOptions(parseInstallArguments(argv, env)));
  for (const removed of result.removed) write(`removed: ${removed}\n`);
  for (const key of result.registryKeysRemoved) write(`registry key removed: ${key}\n`);
  if (result.removed.length === 0 && result.registryKeysRemoved.length === 0) write('nothing was installed\n');
}

/** `tabagent doctor`: what is installed where, and what is wrong with it. Exit code 1 when nothing valid is installed. */
export async function runDoctor(argv: readonly string[], write: (text: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const entries = await doctorNativeHost(locationOptions(parseInstallArguments(argv, env)));
  for (const entry of entries) {
    const state = !entry.found ? 'not installed' : entry.valid ? 'ok' : 'broken';
    write(`${entry.browser.padEnd(9)} ${state.padEnd(13)} ${entry.manifestPath}\n`);
    if (entry.found) {
      write(
        `          launcher ${entry.launcherPath ?? '(none)'}${entry.launcherExists ? '' : ' (missing)'}${entry.launcherExists && !entry.launcherExecutable ? ' (not executable)' : ''}\n`,
      );
      const allowed = [...entry.allowedOrigins, ...entry.allowedExtensions];
      if (allowed.length > 0) write(`          allowed  ${allowed.join(', ')}\n`);
    }
    for (const problem of entry.problems) write(`          problem: ${problem}\n`);
  }
  return entries.some((entry) => entry.found && entry.valid);
}
