import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApiApp, createApiHttpServer, metricsPath, openApiDocumentPath, swaggerUiPath } from '@tabagent/api';
import { createGgufModelBackend, createGgufModelManager } from '@tabagent/gguf-loader';
import { createHardwareProbe } from '@tabagent/hardware';
import { createNativeMessagingHost, type NativeHostExitReason } from '@tabagent/native-messaging';
import { createModelResolver } from '@tabagent/model-cache';
import { createOnnxModelBackend, createOnnxModelPool } from '@tabagent/onnx-loader';
import { createUpstreamEngine, resolveUpstreams } from '@tabagent/upstream';
import { createWebRtcTransport } from '@tabagent/webrtc';
import { createMcpHttpHandler, serveMcpOverStdio } from '@tabagent/mcp';
import type { Readable, Writable } from 'node:stream';
import { createHfTokenStore, createModelLayer, createPairingStore, openServices, providerWhenReady, type Services } from '@tabagent/services';
import type { AppStateProvider } from '@tabagent/values';
import { prepareDataDir, restrictDataFiles, type DataDirLayout } from './data-dir.js';
import { ensureOwnerKey, ownerKeyPath } from './owner-key.js';
import { createServerLogger } from './logger.js';
import { isLoopbackHost, resolveApiKey, type ServerConfig } from './server-config.js';
import { readAllowedOrigins } from './allowed-origins-store.js';
import { serverVersion } from './version.js';
import { acquireWriterLock } from './writer-lock.js';

/** A running server: its provider, its HTTP listener (when serving HTTP) and a shutdown. */
export interface RunningServer {
  readonly config: ServerConfig;
  readonly layout: DataDirLayout;
  readonly provider: AppStateProvider;
  readonly logger: Logger;
  /** `http://host:port` once HTTP listens; undefined in native mode or when the port was taken in `all` mode. */
  readonly httpUrl: string | undefined;
  /** In native and all modes: resolves when the browser ends the native-messaging session. */
  readonly nativeSessionEnded: Promise<NativeHostExitReason> | undefined;
  /** In mcp mode: resolves when the MCP client ends the stdio session (stdin closes). */
  readonly mcpSessionEnded: Promise<void> | undefined;
  /** Stops accepting, aborts streams, closes stores; idempotent. */
  close(): Promise<void>;
}

/** Options for embedding the server (tests, other programs). */
export interface StartServerOptions {
  /** Use this logger instead of the stderr + log-file one. */
  logger?: Logger;
  /** Native-messaging (or, in mcp mode, MCP) streams (default: this process's stdin and stdout). */
  nativeInput?: Readable;
  nativeOutput?: Writable;
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

/** How long responses cancelled by a shutdown may take to finish before their connections are cut. */
const responseGraceMs = 1000;

/** The banner's line on who may call the HTTP API. */
function accessLine(access: Parameters<typeof startBanner>[0]['access']): string {
  switch (access.kind) {
    case 'open':
      return '  Access    open to every program of every account on this machine (no key); --auth owner requires a key only you can read';
    case 'owner':
      return `  Access    owner only: send Authorization: Bearer <key in ${access.keyFile}> (tabagent key prints it); the extension pairs over native messaging`;
    case 'key':
      return '  Access    API key required: send Authorization: Bearer <key>';
  }
}

/** The start banner: what is running where, and what to do next. */
export function startBanner(info: {
  version: string;
  url: string | undefined;
  dataDir: string;
  models: number;
  nativeHostOrigins: number;
  metrics: boolean;
  /** Swagger UI is served (`--swagger-ui on`); otherwise the banner names the OpenAPI document. */
  swaggerUi: boolean;
  /** Who may call: anyone on this machine, the owner's key (`--auth owner`), or a given API key. */
  access: { kind: 'open' } | { kind: 'owner'; keyFile: string } | { kind: 'key' };
}): string {
  const lines = [
    `TabAgent Server ${info.version}`,
    info.url === undefined ? '  HTTP      not listening (native messaging only)' : `  API       ${info.url}/v1   (OpenAI and Ollama clients: ${info.url})`,
    ...(info.url === undefined
      ? []
      : [
          info.swaggerUi ? `  Docs      ${info.url}${swaggerUiPath}/` : `  Docs      ${info.url}${openApiDocumentPath}   (Swagger UI: --swagger-ui on)`,
          ...(info.metrics ? [`  Metrics   ${info.url}${metricsPath}`] : []),
        ]),
    `  Data      ${info.dataDir}`,
    ...(info.url === undefined ? [] : [accessLine(info.access)]),
    `  Models    ${info.models === 0 ? 'none yet: tabagent pull hf.co/<owner>/<repo>, or drop a .gguf into the models folder' : `${info.models} found`}`,
    `  Extension ${info.nativeHostOrigins === 0 ? 'native host not installed: tabagent install-native-host --extension-id <id>' : `native host installed for ${info.nativeHostOrigins} extension(s)`}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Composes every package into one provider and starts the transports the mode asks for. */
export async function startServer(given: ServerConfig, options: StartServerOptions = {}): Promise<RunningServer> {
  // Refused before anything is opened: a LAN bind without a key, an empty key file.
  const config: ServerConfig = {
    ...given,
    apiKey: resolveApiKey(
      given,
      (file) => readFileSync(file, 'utf8'),
      () => ensureOwnerKey(prepareDataDir(given.dataDir).root),
    ),
  };
  const layout = prepareDataDir(config.dataDir);
  const logger = options.logger ?? createServerLogger({ level: config.logLevel, logFile: layout.logFile });
  for (const warning of config.warnings) logger.warn(warning);
  // Chrome's extension sends `handshake` at once and gives up after 30 s; the native host starts
  // before the models and stores are opened, and calls wait for the provider below.
  let resolveProvider: (provider: AppStateProvider) => void = () => undefined;
  let rejectProvider: (error: unknown) => void = () => undefined;
  const providerReady = new Promise<AppStateProvider>((resolve, reject) => {
    resolveProvider = resolve;
    rejectProvider = reject;
  });
  providerReady.catch(() => undefined);
  let nativeSessionEnded: Promise<NativeHostExitReason> | undefined;
  let nativeHost: ReturnType<typeof createNativeMessagingHost> | undefined;
  if (config.mode === 'native' || config.mode === 'all') {
    nativeHost = createNativeMessagingHost({
      input: options.nativeInput ?? process.stdin,
      output: options.nativeOutput ?? process.stdout,
      provider: { handle: async (id, request, context) => (await providerReady).handle(id, request, context) },
      logger,
      ...(config.nativeCallerOrigin === undefined ? {} : { callerOrigin: config.nativeCallerOrigin }),
      version: serverVersion,
    });
    nativeSessionEnded = nativeHost.done;
  }
  try {
    return await composeServer(config, options, layout, logger, nativeHost, nativeSessionEnded, resolveProvider);
  } catch (error) {
    rejectProvider(error);
    nativeHost?.close();
    throw error;
  }
}

/** What `composeServer` has started so far: a start-up that fails part way releases it. */
interface StartedParts {
  /** Closers of what was opened (model engines, the memory store, WebRTC), in the order opened. */
  disposers: (() => Promise<void> | void)[];
  /** The HTTP server, once it listens. */
  httpServer: http.Server | undefined;
}

type ComposeArguments = [
  config: ServerConfig,
  options: StartServerOptions,
  layout: DataDirLayout,
  logger: Logger,
  nativeHost: ReturnType<typeof createNativeMessagingHost> | undefined,
  nativeSessionEnded: Promise<NativeHostExitReason> | undefined,
  resolveProvider: (provider: AppStateProvider) => void,
];

/**
 * Composes the server; when that fails (a memory store that cannot open, a port in use), closes
 * what it had opened (the listening socket, the llama.cpp backend, the ONNX pool, the store and
 * its weaver), newest first, before the error goes up, so a caller that retries or goes on (a
 * test, an embedding process) is not left with a bound port and open files.
 */
async function composeServer(...args: ComposeArguments): Promise<RunningServer> {
  const started: StartedParts = { disposers: [], httpServer: undefined };
  try {
    return await composeStarted(started, ...args);
  } catch (error) {
    const logger = args[3];
    const server = started.httpServer;
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    for (const dispose of started.disposers.reverse()) {
      try {
        await dispose();
      } catch (releaseError) {
        logger.warn({ err: releaseError }, 'releasing a part of a server that failed to start failed too');
      }
    }
    throw error;
  }
}

async function composeStarted(started: StartedParts, ...args: ComposeArguments): Promise<RunningServer> {
  const [config, options, layout, logger, nativeHost, nativeSessionEnded, resolveProvider] = args;
  const hardware = createHardwareProbe();
  const hfTokens = createHfTokenStore(layout.root);
  const { disposers } = started;

  const hardwareInfo = await hardware.getInfo();
  const threads = config.threads ?? hardwareInfo.advice.recommended_threads;

  const { registry, downloader, downloadStats, puller, fits } = createModelLayer({
    layout,
    hardware,
    hfTokens,
    hfEndpoint: config.hfEndpoint,
    hfToken: config.hfToken,
    modelDirs: config.modelDirs,
    logger,
  });
  const pairings = createPairingStore(layout.root);
  const manager = createGgufModelManager({
    gpu: config.gpu === 'off' ? false : 'auto',
    defaultThreads: threads,
    defaultKeepAlive: config.keepAliveSeconds,
    availableMemory: () => hardware.availableMemory(),
    logger,
  });
  disposers.push(() => manager.dispose());
  const onnxPool = createOnnxModelPool({
    executionProviders: config.gpu === 'off' ? ['cpu'] : hardwareInfo.advice.execution_providers,
    threads,
    logger,
  });
  disposers.push(() => onnxPool.dispose());
  // Upstream engines from the flags and <data-dir>/upstreams.json; their models join the registry as NAME/MODEL.
  const upstreamsFile = path.join(layout.root, 'upstreams.json');
  const upstreamConfig = resolveUpstreams({
    flags: config.upstreams,
    keyFiles: config.upstreamKeyFiles,
    file: existsSync(upstreamsFile) ? readFileSync(upstreamsFile, 'utf8') : undefined,
    env: process.env,
    readFile: (file) => readFileSync(file, 'utf8'),
  });
  const upstreams = upstreamConfig.members.length > 0 ? createUpstreamEngine(upstreamConfig, { logger }) : undefined;
  if (upstreams !== undefined) disposers.push(() => upstreams.close());
  let services: Services | undefined;
  // ONNX first: when a request names no embedding model, purpose-built encoders beat a GGUF's pooled hidden states.
  const models = createModelResolver({
    registry: upstreams === undefined ? registry : upstreams.withModels(registry),
    backends: [createOnnxModelBackend(onnxPool), createGgufModelBackend(manager), ...(upstreams === undefined ? [] : [upstreams.backend])],
    // The memory store is opened below; until then only the flag can name the model.
    preferredEmbeddingModel: async () => services?.memory.storage.getMemorySettings().embedding_model ?? config.embeddingModel,
  });
  const opened = await openServices({
    models,
    modelLayer: { puller, downloader, downloadStats, fits },
    hardware,
    ...(upstreams === undefined ? {} : { upstreams }),
    hfTokens,
    pairings,
    dataDir: layout.root,
    logFile: options.logger ? undefined : layout.logFile,
    version: serverVersion,
    ...(config.embeddingModel === undefined ? {} : { embeddingModel: config.embeddingModel }),
    memoryDutyCycle: config.memoryDutyCycle,
    memoryMaxWaitMs: config.memoryMaxWaitSeconds * 1000,
    metrics: config.metrics === 'on',
    logger,
  });
  services = opened;
  disposers.push(() => opened.close());
  upstreams?.start();
  const { metrics } = opened;
  // WebRTC is signalled over HTTP, so it runs where HTTP does (the seed's single port), unless turned off.
  let provider: AppStateProvider | undefined;
  const webrtc =
    config.webrtc === 'on' && (config.mode === 'http' || config.mode === 'all')
      ? createWebRtcTransport({
          // Calls over a channel reach the same provider as every transport (built just below).
          provider: providerWhenReady(() => provider),
          network: isLoopbackHost(config.host) ? 'loopback' : 'all',
          // A session opened with a pairing token lives only as long as the token, within its scope.
          authorize: (caller, id) => opened.authorizeChannelCall(caller, id),
          logger,
        })
      : undefined;
  if (webrtc) disposers.push(() => webrtc.close());
  const ready = opened.provider(webrtc?.handlers ?? {});
  provider = ready;
  // One process per data directory runs the background indexer (see writer-lock.ts).
  const writer = acquireWriterLock(layout.root);
  if (writer === null) {
    logger.info({ dataDir: layout.root }, 'another TabAgent process indexes this data directory; this one saves and searches, and leaves indexing to it');
  } else {
    disposers.push(() => writer.release());
    opened.start();
  }
  restrictDataFiles(layout);
  resolveProvider(ready);
  const mcpOptions = { provider: ready, version: serverVersion, admin: config.mcpAdmin === 'on' };
  let mcpSessionEnded: Promise<void> | undefined;
  if (config.mode === 'mcp') {
    const session = await serveMcpOverStdio({ ...mcpOptions, input: options.nativeInput ?? process.stdin, output: options.nativeOutput ?? process.stdout });
    disposers.push(() => session.close());
    mcpSessionEnded = session.closed;
  }

  let httpServer: http.Server | undefined;
  let httpUrl: string | undefined;
  const shuttingDown = new AbortController();
  if (config.mode === 'http' || config.mode === 'all') {
    const app = createApiApp(ready, {
      // The extensions install-native-host recorded, the one Chrome started us for, and --allowed-origin.
      allowedOrigins: [
        ...new Set([...config.allowedOrigins, ...readAllowedOrigins(layout.root), ...(config.nativeCallerOrigin ? [config.nativeCallerOrigin] : [])]),
      ],
      allowedHosts: config.allowedHosts,
      // Off loopback the key is required (checked at start) and is what keeps others out.
      anyHost: !isLoopbackHost(config.host),
      pairing: pairings,
      apiKey: config.apiKey,
      logger,
      version: serverVersion,
      shutdownSignal: shuttingDown.signal,
      swaggerUi: config.swaggerUi === 'on',
      // The Model Context Protocol at POST /mcp, behind the same guard.
      mcp: createMcpHttpHandler(mcpOptions),
      ...(metrics === undefined ? {} : { metrics: () => metrics.render() }),
      // Refused before any handler: counted and logged like every other request.
      onRefused: (refusal) => {
        metrics?.recordRefusal(refusal);
        logger.info({ route: refusal.route, transport: 'http', status: refusal.status, code: refusal.code }, 'request refused');
      },
    });
    httpServer = createApiHttpServer(app);
    httpServer.keepAliveTimeout = 65_000;
    try {
      const address = await listen(httpServer, config.host, config.port);
      const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      httpUrl = `http://${hostForUrl}:${address.port}`;
      started.httpServer = httpServer;
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
      nativeHost?.close();
      if (httpServer) {
        const server = httpServer;
        // Stop accepting, cancel every call in progress (streams then send their last chunk and
        // [DONE]), give the responses a moment to finish, then cut whatever is left.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        shuttingDown.abort();
        const grace = setTimeout(() => server.closeAllConnections(), responseGraceMs);
        await closed;
        clearTimeout(grace);
      }
      for (const dispose of disposers.reverse()) await dispose();
      logger.info('server stopped');
      logger.flush();
    })();
    return closing;
  };

  const modelsFound = (await registry.list()).length;
  const nativeHostOrigins = readAllowedOrigins(layout.root).length;
  logger.info(
    {
      mode: config.mode,
      dataDir: layout.root,
      ...(httpUrl === undefined ? {} : { url: httpUrl }),
      models: modelsFound,
      native_host_installed: nativeHostOrigins > 0,
    },
    'server ready',
  );
  // A person at a terminal gets a short banner; native mode never (stdout is the browser's, and Chrome started us).
  if (options.logger === undefined && (config.mode === 'http' || config.mode === 'all') && process.stderr.isTTY) {
    process.stderr.write(
      startBanner({
        version: serverVersion,
        url: httpUrl,
        dataDir: layout.root,
        models: modelsFound,
        nativeHostOrigins,
        metrics: metrics !== undefined,
        swaggerUi: config.swaggerUi === 'on',
        access:
          config.auth === 'owner' ? { kind: 'owner', keyFile: ownerKeyPath(layout.root) } : config.apiKey === undefined ? { kind: 'open' } : { kind: 'key' },
      }),
    );
  }
  return { config, layout, provider: ready, logger, httpUrl, nativeSessionEnded, mcpSessionEnded, close };
}
