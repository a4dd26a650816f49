#!/usr/bin/env node
import type { Writable } from 'node:stream';
import { claimStdoutForFrames } from '@tabagent/native-messaging';
import { TabAgentError } from '@tabagent/values';
import { runDoctor, runInstallNativeHost, runUninstallNativeHost } from './native-host-commands.js';
import { parseServeArguments } from './server-config.js';
import { startServer } from './start-server.js';
import { serverVersion } from './version.js';

const usage = `tabagent ${serverVersion}

Usage:
  tabagent serve [--mode http|native|all] [--host 127.0.0.1] [--port 8080] [--data-dir DIR]
                 [--allowed-origin chrome-extension://ID ...] [--api-key KEY] [--embedding-model ID]
                 [--keep-alive SECONDS] [--threads N] [--gpu auto|off] [--log-level info]
  tabagent install-native-host --extension-id ID [--browser chrome|chromium|edge|brave|firefox|all]
                 [--data-dir DIR] [--manifest-dir DIR]
  tabagent uninstall-native-host [--browser ...] [--data-dir DIR]
  tabagent doctor [--browser ...]
  tabagent --version

Every option also reads a TABAGENT_* variable (TABAGENT_PORT, TABAGENT_DATA_DIR, ...).
Logs go to stderr and <data-dir>/logs/tabagent.log, never to stdout.
`;

/**
 * In native mode stdout carries frames only: the host gets its own stream over stdout, and any
 * other write to `process.stdout` or `console.log` (a library's banner or warning) goes to stderr.
 */
function guardStdout(): Writable {
  return claimStdoutForFrames();
}

async function serve(argv: string[]): Promise<void> {
  const config = parseServeArguments(argv);
  const nativeOutput = config.mode === 'http' ? undefined : guardStdout();
  const server = await startServer(config, nativeOutput ? { nativeOutput } : {});
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, 'shutting down');
    server
      .close()
      // Frames still queued in the pipe would be lost by process.exit: let the stream finish first.
      .then(() => (nativeOutput ? new Promise<void>((resolve) => nativeOutput.end(() => resolve())) : undefined))
      .then(
        () => process.exit(0),
        (error: unknown) => {
          server.logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Chrome closes stdin when the extension disconnects; a native host then exits (it reconnects).
  // In `all` mode the HTTP API keeps serving.
  void server.nativeSessionEnded?.then((reason) => {
    server.logger.info({ reason }, 'native messaging session ended');
    if (config.mode === 'native') stop('native-session-ended');
  });
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'install-native-host':
      return runInstallNativeHost(rest, (text) => process.stdout.write(text));
    case 'uninstall-native-host':
      return runUninstallNativeHost(rest, (text) => process.stdout.write(text));
    case 'doctor':
      if (!(await runDoctor(rest, (text) => process.stdout.write(text)))) process.exitCode = 1;
      return;
    case '--version':
    case '-v':
      process.stderr.write(`${serverVersion}\n`);
      return;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stderr.write(usage);
      return;
    default:
      // Chrome starts a native host with the caller origin as first argument and no command.
      if (command.startsWith('chrome-extension://') || command.startsWith('moz-extension://')) return serve(['--mode', 'native', ...argv]);
      process.stderr.write(`Unknown command: ${command}\n\n${usage}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = TabAgentError.isInstance(error) ? error.message : error instanceof Error ? error.message : String(error);
  process.stderr.write(`tabagent: ${message}\n`);
  process.exit(1);
});
