import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApiApp, createApiHttpServer } from '@tabagent/api';
import { createHardwareProbe } from '@tabagent/hardware';
import { createAppStateProvider, type AppStateProvider } from '@tabagent/values';
import { prepareDataDir, type DataDirLayout } from './data-dir.js';
import { composeHandlers } from './handlers/compose-handlers.js';
import { createSystemHandlers } from './handlers/system-handlers.js';
import { createHfTokenStore } from './hf-token-store.js';
import { createServerLogger } from './logger.js';
import type { ServerConfig } from './server-config.js';
import { serverVersion } from './version.js';

/** A running server: its provider, its HTTP listener (when serving HTTP) and a shutdown. */
export interface RunningServer {
  readonly config: ServerConfig;
  readonly layout: DataDirLayout;
  readonly provider: AppStateProvider;
  readonly logger: Logger;
  /** `http://host:port` once HTTP listens; undefined in native mode or when the port was taken in `all` mode. */
  readonly httpUrl: string | undefined;
  /** Stops accepting, aborts streams, closes stores; idempotent. */
  close(): Promise<void>;
}

/** Options for embedding the server (tests, other programs). */
export interface StartServerOptions {
  /** Use this logger instead of the stderr + log-file one. */
  logger?: Logger;
}

function listen(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Composes every package into one provider and starts the transports the mode asks for. */
export async function startServer(config: ServerConfig, options: StartServerOptions = {}): Promise<RunningServer> {
  const layout = prepareDataDir(config.dataDir);
  const logger = options.logger ?? createServerLogger({ level: config.logLevel, logFile: layout.logFile });
  const hardware = createHardwareProbe();
  const hfTokens = createHfTokenStore(layout.root);
  const disposers: (() => Promise<void> | void)[] = [];

  const handlers = composeHandlers(
    createSystemHandlers({ hardware, hfTokens, version: serverVersion, logFile: options.logger ? undefined : layout.logFile, loadedModelResources: async () => [] }),
  );
  const provider = createAppStateProvider(handlers);

  let httpServer: http.Server | undefined;
  let httpUrl: string | undefined;
  if (config.mode === 'http' || config.mode === 'all') {
    const app = createApiApp(provider, { allowedOrigins: config.allowedOrigins, apiKey: config.apiKey, logger, version: serverVersion });
    httpServer = createApiHttpServer(app);
    httpServer.keepAliveTimeout = 65_000;
    try {
      const address = await listen(httpServer, config.host, config.port);
      const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      httpUrl = `http://${hostForUrl}:${address.port}`;
      logger.info({ url: httpUrl, dataDir: layout.root }, 'HTTP API listening');
    } catch (error) {
      httpServer = undefined;
      if (config.mode === 'http') throw error;
      // In `all` mode native messaging is what the extension needs; a taken port must not stop it.
      logger.warn({ err: error, host: config.host, port: config.port }, 'HTTP API not started (port unavailable); native messaging continues');
    }
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (httpServer) {
        const server = httpServer;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Ending open connections fires each response's 'close', which aborts its provider call.
        server.closeAllConnections();
        await closed;
      }
      for (const dispose of disposers.reverse()) await dispose();
      logger.info('server stopped');
      logger.flush();
    })();
    return closing;
  };

  return { config, layout, provider, logger, httpUrl, close };
}
