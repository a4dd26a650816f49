#!/usr/bin/env node
import type { Writable } from 'node:stream';
// Light (frames and the route contract, no engine): static, as every other importer of it has it.
import { claimStdoutForFrames } from '@tabagent/native-messaging';
import type { CommandOutput } from './model-commands.js';
import type { RunningServer } from './start-server.js';
import { serverVersion } from './version.js';

// Each command imports what it needs when it runs: the engines (node-llama-cpp, onnxruntime,
// LanceDB) take most of a second and ~100 MB to load, which `--version`, `--help`, `key` or the
// native-host installer have no use for.

const usage = `tabagent ${serverVersion}

Usage:
  tabagent serve [--mode http|native|all] [--host 127.0.0.1] [--port 8080] [--data-dir DIR]
                 [--allowed-origin ORIGIN ...] [--auth none|owner] [--api-key-file FILE] [--model-dir DIR ...] [--embedding-model ID]
                 [--keep-alive SECONDS] [--threads N] [--gpu auto|off] [--webrtc on|off] [--metrics on|off] [--log-level info]
                 [--shutdown-timeout 8] [--mcp-admin]
  tabagent mcp [--mcp-admin] [serve options]   the Model Context Protocol over stdio (stdout carries JSON-RPC only)
  tabagent pull <hf.co/owner/repo[:Q4_K_M]> [--variant KEY] [--file PATH] [--revision REV] [--data-dir DIR]
  tabagent list [--data-dir DIR]
  tabagent rm <model> [--data-dir DIR]
  tabagent install-native-host --extension-id ID [--firefox-extension-id ID] [--browser chrome|chromium|edge|brave|firefox|all]
                 [--data-dir DIR] [--manifest-dir DIR]
  tabagent uninstall-native-host [--browser ...] [--data-dir DIR]
  tabagent doctor [--browser ...]
  tabagent key [--data-dir DIR]      the owner key that --auth owner requires (made on first use)
  tabagent --version

Every option also reads a TABAGENT_* variable (TABAGENT_PORT, TABAGENT_DATA_DIR, ...).
Downloads use HF_ENDPOINT (default https://huggingface.co) and the stored token or HF_TOKEN.
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
  const { parseServeArguments } = await import('./server-config.js');
  const config = parseServeArguments(argv);
  // Native messaging and MCP over stdio: stdout carries their messages only.
  const nativeOutput = config.mode === 'http' ? undefined : guardStdout();
  let server: RunningServer | undefined;
  let stopping = false;
  const log = (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void => {
    if (server) {
      server.logger[level](fields, message);
      server.logger.flush();
    } else process.stderr.write(`tabagent: ${message}\n`);
  };
  const shutDown = (running: RunningServer): void => {
    running
      .close()
      // Frames still queued in the pipe would be lost by process.exit: let the stream finish first.
      .then(() => (nativeOutput ? new Promise<void>((resolve) => nativeOutput.end(() => resolve())) : undefined))
      .then(
        () => process.exit(0),
        (error: unknown) => {
          log('error', { err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  /**
   * An orderly shutdown, bounded: after `--shutdown-timeout` seconds the process exits whatever is
   * still running (a model load, an index optimise, a reader that stopped reading stdout), and a
   * second signal exits at once. Outbox items not done stay pending for the next start. A signal
   * during start-up is kept and acted on once the server is up.
   */
  const stop = (reason: string): void => {
    if (stopping) {
      if (reason !== 'SIGINT' && reason !== 'SIGTERM') return;
      log('warn', { signal: reason }, 'second signal: exiting now');
      process.exit(reason === 'SIGINT' ? 130 : 143);
    }
    stopping = true;
    log('info', { signal: reason, timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutting down');
    const deadline = setTimeout(() => {
      log('error', { timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000);
    // The deadline must not be what keeps an otherwise finished process alive.
    deadline.unref();
    if (server) shutDown(server);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A function, not the variable: TypeScript would keep `stopping` narrowed to false across the await.
  const stopRequested = (): boolean => stopping;
  const { startServer } = await import('./start-server.js');
  server = await startServer(config, nativeOutput ? { nativeOutput } : {});
  if (stopRequested()) {
    shutDown(server);
    return;
  }
  // Chrome closes stdin when the extension disconnects; a native host then exits (it reconnects).
  // In `all` mode the HTTP API keeps serving.
  void server.nativeSessionEnded?.then((reason) => {
    log('info', { reason }, 'native messaging session ended');
    if (config.mode === 'native') stop('native-session-ended');
  });
  // An MCP client ends a stdio server by closing its stdin.
  void server.mcpSessionEnded?.then(() => {
    log('info', {}, 'MCP session ended');
    stop('mcp-session-ended');
  });
}

function terminal(): CommandOutput {
  return { write: (text) => process.stdout.write(text), isTTY: process.stderr.isTTY, stream: process.stderr };
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'mcp':
      return serve(['--mode', 'mcp', ...rest]);
    case 'pull':
      return (await import('./model-commands.js')).runPull(rest, terminal());
    case 'list':
    case 'ls':
      return (await import('./model-commands.js')).runList(rest, terminal());
    case 'rm':
      return (await import('./model-commands.js')).runRemove(rest, terminal());
    case 'install-native-host':
      return (await import('./native-host-commands.js')).runInstallNativeHost(rest, (text) => process.stdout.write(text));
    case 'uninstall-native-host':
      return (await import('./native-host-commands.js')).runUninstallNativeHost(rest, (text) => process.stdout.write(text));
    case 'doctor':
      if (!(await (await import('./native-host-commands.js')).runDoctor(rest, (text) => process.stdout.write(text)))) process.exitCode = 1;
      return;
    case 'key': {
      // Printed because it was asked for: the only output, so `$(tabagent key)` works in scripts.
      const [{ parseServeArguments }, { prepareDataDir }, { ensureOwnerKey }] = await Promise.all([
        import('./server-config.js'),
        import('./data-dir.js'),
        import('./owner-key.js'),
      ]);
      const { dataDir } = parseServeArguments(rest);
      process.stdout.write(`${ensureOwnerKey(prepareDataDir(dataDir).root)}\n`);
      return;
    }
    case '--version':
    case '-v':
      // Asked for, so on stdout as every CLI does (`tabagent --version | …`); stdout carries frames only in native mode.
      process.stdout.write(`${serverVersion}\n`);
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

// Everything this process creates (database, logs, downloads, tokens) is the user's alone.
process.umask(0o077);
main(process.argv.slice(2)).catch((error: unknown) => {
  // Every error this CLI means for a person (TabAgentError included) is an Error with its message.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`tabagent: ${message}\n`);
  process.exit(1);
});
