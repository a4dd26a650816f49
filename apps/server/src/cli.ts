#!/usr/bin/env node
import { TabAgentError } from '@tabagent/values';
import { parseServeArguments } from './server-config.js';
import { startServer } from './start-server.js';
import { serverVersion } from './version.js';

const usage = `tabagent ${serverVersion}

Usage:
  tabagent serve [--mode http|native|all] [--host 127.0.0.1] [--port 8080] [--data-dir DIR]
                 [--allowed-origin chrome-extension://ID ...] [--api-key KEY] [--embedding-model ID]
                 [--keep-alive SECONDS] [--threads N] [--gpu auto|off] [--log-level info]
  tabagent --version

Every option also reads a TABAGENT_* variable (TABAGENT_PORT, TABAGENT_DATA_DIR, ...).
Logs go to stderr and <data-dir>/logs/tabagent.log, never to stdout.
`;

async function serve(argv: string[]): Promise<void> {
  const config = parseServeArguments(argv);
  const server = await startServer(config);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
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
