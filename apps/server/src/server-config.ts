import { readFileSync } from 'node:fs';
import { checkUpstreamUrl, splitNamed } from '@tabagent/upstream';
import { InvalidRequestError, hfTokenPattern } from '@tabagent/values';
import path from 'node:path';
import { defaultDataDir } from './data-dir.js';

/** Which transports a server process runs. */
/** `mcp`: the Model Context Protocol over stdio (`tabagent mcp`), no HTTP. */
export type ServerMode = 'http' | 'native' | 'all' | 'mcp';

/** Settings of `tabagent serve`; each has a flag and a TABAGENT_* variable. */
export interface ServerConfig {
  mode: ServerMode;
  host: string;
  port: number;
  dataDir: string;
  /** Extension origins allowed by CORS (chrome-extension://<id>, moz-extension://<id>). */
  allowedOrigins: string[];
  /**
   * Host header names accepted besides the defaults (loopback names, `*.localhost`, this machine's
   * name, `host.docker.internal`): exact names or `*.suffix`, e.g. a LAN name.
   */
  allowedHosts: string[];
  /** When set, HTTP requests need `Authorization: Bearer <key>`. */
  apiKey: string | undefined;
  /** A file holding the API key (keeps it out of `ps` and shell history); read at start. */
  apiKeyFile: string | undefined;
  /**
   * Who may call: `none` lets every program of every account on this machine call over loopback;
   * `owner` makes a random key in `<data-dir>/owner.key` (0600) on first start and requires it, or a
   * pairing token, from every caller (see `SECURITY.md`).
   */
  auth: 'none' | 'owner';
  /** Folders besides the models folder that `models.register` may take paths from. */
  modelDirs: string[];
  /** Embedding model of the memory pipeline (default: first registered embedding model). */
  embeddingModel: string | undefined;
  /** Default keep-alive of loaded models, seconds (negative: forever). */
  keepAliveSeconds: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Threads for inference; default: physical cores from the hardware package. */
  threads: number | undefined;
  /** GPU use: auto-detect, or force CPU. */
  gpu: 'auto' | 'off';
  /** Origin of the caller when Chrome started us as a native host (its first argument). */
  nativeCallerOrigin: string | undefined;
  /** After SIGINT/SIGTERM, seconds the orderly shutdown may take before the process exits anyway. */
  shutdownTimeoutSeconds: number;
  /** Base URL of the Hugging Face Hub or a mirror (`HF_ENDPOINT`, the variable Hugging Face's own libraries read). */
  hfEndpoint: string;
  /** Hugging Face token from `HF_TOKEN` or `--hf-token-file`, used when none is stored with POST /v1/hf/token. */
  hfToken: string | undefined;
  /** What the start-up should warn about (secrets given on the command line). */
  warnings: string[];
  /** The WebRTC transport (signalling routes and data channels) in `http` and `all` modes. */
  webrtc: 'on' | 'off';
  /** Prometheus metrics at `GET /metrics` (and the counting behind them). */
  metrics: 'on' | 'off';
  /** Swagger UI at `/swagger-ui/` (off by default: a page that can run every route). */
  swaggerUi: 'on' | 'off';
  /** MCP tools that load, unload, pull and delete models (`tabagent mcp --mcp-admin`, and `POST /mcp`). */
  mcpAdmin: 'on' | 'off';
  /** Share of the time the memory weaver may work while it drains a backlog (0.05–1). */
  memoryDutyCycle: number;
  /** Seconds the weaver waits for interactive work before it takes one batch anyway (its guaranteed share). */
  memoryMaxWaitSeconds: number;
  /**
   * `--upstream NAME=BASE_URL`: OpenAI-compatible engines (vLLM, llama-server, Ollama, another
   * TabAgent) whose models are served as `NAME/MODEL`; the same NAME twice makes a pool.
   * More (limits, keys) in `<data-dir>/upstreams.json`.
   */
  upstreams: string[];
  /** `--upstream-key-file NAME=PATH`: the key sent to NAME's members (`TABAGENT_UPSTREAM_KEY_<NAME>` otherwise). */
  upstreamKeyFiles: string[];
}

interface OptionSpec {
  key: keyof ServerConfig;
  env: string;
  parse: (value: string) => ServerConfig[keyof ServerConfig];
  repeatable?: boolean;
  /** A switch that may be given alone (`--mcp-admin`), meaning `on`. */
  bare?: boolean;
}

const parseInteger =
  (name: string, min: number, max: number) =>
  (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max)
      throw new InvalidRequestError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
    return parsed;
  };
const parseFraction =
  (name: string, min: number, max: number) =>
  (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed) || parsed < min || parsed > max)
      throw new InvalidRequestError(`${name} must be a number from ${min} to ${max}, got "${value}"`);
    return parsed;
  };
const oneOf =
  <T extends string>(name: string, values: readonly T[]) =>
  (value: string): T => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidRequestError(`${name} must be one of ${values.join(', ')}, got "${value}"`);
    return value as T;
  };

const parseUrl =
  (name: string) =>
  (value: string): string => {
    if (!URL.canParse(value) || !/^https?:$/u.test(new URL(value).protocol)) throw new InvalidRequestError(`${name} must be an http(s) URL, got "${value}"`);
    return value.replace(/\/+$/u, '');
  };

/**
 * An allowed origin is exact: `scheme://host[:port]`, as a browser sends it. `null` (every
 * sandboxed iframe and `file://` page sends it) and wildcards are refused, as is anything with a
 * path, a query or credentials: they would let in far more than the one web app meant.
 */
function checkOrigin(origin: string): string {
  const refuse = (why: string): never => {
    throw new InvalidRequestError(
      `--allowed-origin ${JSON.stringify(origin)} is not an origin: ${why}; give one as scheme://host[:port], e.g. http://localhost:5173`,
    );
  };
  if (origin === 'null') refuse('"null" is what sandboxed frames and file:// pages send');
  if (origin.includes('*')) refuse('wildcards are not accepted');
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return refuse('it does not parse as a URL');
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || !/^[a-z][a-z0-9+.-]*:\/\/[^/]+\/?$/iu.test(origin))
    refuse('it has more than a scheme, a host and a port');
  if (url.host === '') refuse('it has no host');
  return origin;
}

/** A Hugging Face token goes into an HTTP header: a newline or control character would fail every pull with a 500. */
function checkHfToken(source: string, token: string): string {
  if (!hfTokenPattern.test(token)) throw new InvalidRequestError(`${source}: a Hugging Face token is printable ASCII without spaces or control characters`);
  return token;
}

/** A comma-separated list of `NAME=VALUE` (`--upstream`, `--upstream-key-file`), each checked as it is read. */
const namedList =
  (flag: string, what: string, check: (name: string, value: string) => string) =>
  (value: string): string[] =>
    value
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean)
      .map((entry) => {
        const named = splitNamed(entry, flag, what);
        return `${named.name}=${check(named.name, named.value)}`;
      });

/** Secrets that every local account can read when given as flags (`ps`, `/proc/<pid>/cmdline`). */
const secretFlags: Record<string, string> = { '--api-key': '--api-key-file', '--hf-token': '--hf-token-file' };

const optionSpecs: Record<string, OptionSpec> = {
  '--mode': { key: 'mode', env: 'TABAGENT_MODE', parse: oneOf('--mode', ['http', 'native', 'all', 'mcp'] as const) },
  '--mcp-admin': { key: 'mcpAdmin', env: 'TABAGENT_MCP_ADMIN', parse: oneOf('--mcp-admin', ['on', 'off'] as const), bare: true },
  '--host': { key: 'host', env: 'TABAGENT_HOST', parse: (value) => value },
  '--port': { key: 'port', env: 'TABAGENT_PORT', parse: parseInteger('--port', 0, 65535) },
  '--data-dir': { key: 'dataDir', env: 'TABAGENT_DATA_DIR', parse: (value) => value },
  '--allowed-origin': {
    key: 'allowedOrigins',
    env: 'TABAGENT_ALLOWED_ORIGINS',
    parse: (value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean)
        .map(checkOrigin),
    repeatable: true,
  },
  '--allowed-host': {
    key: 'allowedHosts',
    env: 'TABAGENT_ALLOWED_HOSTS',
    parse: (value) =>
      value
        .split(',')
        .map((host) => host.trim())
        .filter(Boolean),
    repeatable: true,
  },
  '--api-key': { key: 'apiKey', env: 'TABAGENT_API_KEY', parse: (value) => value },
  '--api-key-file': { key: 'apiKeyFile', env: 'TABAGENT_API_KEY_FILE', parse: (value) => value },
  '--auth': { key: 'auth', env: 'TABAGENT_AUTH', parse: oneOf('--auth', ['none', 'owner'] as const) },
  '--model-dir': {
    key: 'modelDirs',
    env: 'TABAGENT_MODEL_DIRS',
    parse: (value) =>
      value
        .split(path.delimiter)
        .map((dir) => dir.trim())
        .filter(Boolean),
    repeatable: true,
  },
  '--embedding-model': { key: 'embeddingModel', env: 'TABAGENT_EMBEDDING_MODEL', parse: (value) => value },
  '--upstream': {
    key: 'upstreams',
    env: 'TABAGENT_UPSTREAMS',
    parse: namedList('--upstream', 'BASE_URL', (name, url) => checkUpstreamUrl(url, `--upstream ${name}`)),
    repeatable: true,
  },
  '--upstream-key-file': {
    key: 'upstreamKeyFiles',
    env: 'TABAGENT_UPSTREAM_KEY_FILES',
    parse: namedList('--upstream-key-file', 'PATH', (_name, file) => file),
    repeatable: true,
  },
  '--keep-alive': { key: 'keepAliveSeconds', env: 'TABAGENT_KEEP_ALIVE', parse: parseInteger('--keep-alive', -1, 31_536_000) },
  '--log-level': {
    key: 'logLevel',
    env: 'TABAGENT_LOG_LEVEL',
    parse: oneOf('--log-level', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const),
  },
  '--threads': { key: 'threads', env: 'TABAGENT_THREADS', parse: parseInteger('--threads', 1, 1024) },
  '--gpu': { key: 'gpu', env: 'TABAGENT_GPU', parse: oneOf('--gpu', ['auto', 'off'] as const) },
  '--hf-endpoint': { key: 'hfEndpoint', env: 'HF_ENDPOINT', parse: parseUrl('--hf-endpoint') },
  '--hf-token': { key: 'hfToken', env: 'HF_TOKEN', parse: (value) => checkHfToken('--hf-token (HF_TOKEN)', value) },
  '--hf-token-file': {
    key: 'hfToken',
    env: 'HF_TOKEN_PATH',
    parse: (file) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new InvalidRequestError(`--hf-token-file ${file} cannot be read: ${(error as Error).message}`);
      }
      return checkHfToken(`--hf-token-file ${file}`, text.trim());
    },
  },
  '--webrtc': { key: 'webrtc', env: 'TABAGENT_WEBRTC', parse: oneOf('--webrtc', ['on', 'off'] as const) },
  '--metrics': { key: 'metrics', env: 'TABAGENT_METRICS', parse: oneOf('--metrics', ['on', 'off'] as const) },
  '--swagger-ui': { key: 'swaggerUi', env: 'TABAGENT_SWAGGER_UI', parse: oneOf('--swagger-ui', ['on', 'off'] as const) },
  '--memory-max-wait': { key: 'memoryMaxWaitSeconds', env: 'TABAGENT_MEMORY_MAX_WAIT', parse: parseFraction('--memory-max-wait', 0.1, 3600) },
  '--memory-duty-cycle': { key: 'memoryDutyCycle', env: 'TABAGENT_MEMORY_DUTY_CYCLE', parse: parseFraction('--memory-duty-cycle', 0.05, 1) },
  '--shutdown-timeout': { key: 'shutdownTimeoutSeconds', env: 'TABAGENT_SHUTDOWN_TIMEOUT', parse: parseInteger('--shutdown-timeout', 1, 600) },
};

/** Defaults: loopback only, port 8080 (the Rust ApiConfig default), the platform data directory. */
export function defaultServerConfig(): ServerConfig {
  return {
    mode: 'http',
    host: '127.0.0.1',
    port: 8080,
    dataDir: defaultDataDir(),
    allowedOrigins: [],
    allowedHosts: [],
    apiKey: undefined,
    apiKeyFile: undefined,
    auth: 'none',
    modelDirs: [],
    embeddingModel: undefined,
    keepAliveSeconds: 300,
    logLevel: 'info',
    threads: undefined,
    gpu: 'auto',
    nativeCallerOrigin: undefined,
    // Under the 10 s a service manager or a closing browser usually grants before SIGKILL.
    shutdownTimeoutSeconds: 8,
    hfEndpoint: 'https://huggingface.co',
    hfToken: undefined,
    warnings: [],
    webrtc: 'on',
    metrics: 'on',
    swaggerUi: 'off',
    mcpAdmin: 'off',
    // Full speed when idle: the weaver already pauses for every generation and embedding request.
    memoryDutyCycle: 1,
    // Indexing keeps up under steady interactive use: one batch at least every 5 s.
    memoryMaxWaitSeconds: 5,
    upstreams: [],
    upstreamKeyFiles: [],
  };
}

/**
 * Reads `serve` options: flags win over TABAGENT_* variables, which win over defaults.
 * Chrome starts a native host with the caller's origin as first argument (and, on Windows,
 * `--parent-window=<handle>`); both are accepted.
 */
export function parseServeArguments(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const config = defaultServerConfig();
  const assign = (spec: OptionSpec, raw: string): void => {
    const value = spec.parse(raw);
    const target = config as unknown as Record<string, unknown>;
    target[spec.key] = spec.repeatable && Array.isArray(target[spec.key]) ? [...(target[spec.key] as unknown[]), ...(value as unknown[])] : value;
  };
  for (const spec of Object.values(optionSpecs)) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') assign(spec, raw);
  }
  const fromFlags = new Set<string>();
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] as string;
    if (argument.startsWith('chrome-extension://') || argument.startsWith('moz-extension://')) {
      config.nativeCallerOrigin = argument;
      continue;
    }
    if (argument.startsWith('--parent-window=')) continue;
    const [flag, inlineValue] = argument.includes('=')
      ? [argument.slice(0, argument.indexOf('=')), argument.slice(argument.indexOf('=') + 1)]
      : [argument, undefined];
    const spec = optionSpecs[flag];
    if (!spec) {
      // Firefox passes the manifest path and the extension id as arguments.
      if (!argument.startsWith('-') && (argument.endsWith('.json') || argument.includes('@'))) continue;
      throw new InvalidRequestError(`Unknown option: ${argument}`);
    }
    if (spec.bare === true && inlineValue === undefined && (argv[index + 1] === undefined || argv[index + 1]?.startsWith('--') === true)) {
      fromFlags.add(flag);
      assign(spec, 'on');
      continue;
    }
    const value = inlineValue ?? argv[index + 1];
    if (inlineValue === undefined) index += 1;
    if (value === undefined) throw new InvalidRequestError(`${flag} needs a value`);
    // Flags replace environment values rather than add to them.
    if (spec.repeatable && !fromFlags.has(flag)) (config as unknown as Record<string, unknown>)[spec.key] = [];
    fromFlags.add(flag);
    assign(spec, value);
    const safer = secretFlags[flag];
    if (safer !== undefined) {
      config.warnings.push(`${flag} on the command line can be read by every account on this machine (ps, /proc/<pid>/cmdline); use ${safer} FILE instead`);
    }
  }
  return config;
}

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/gu, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/u.test(bare);
}

/**
 * The API key from `--api-key` or the file `--api-key-file` names; and the refusal to serve a
 * non-loopback address without one: the whole API (the user's memory, their HF token) would be
 * open to the network.
 */
export function resolveApiKey(
  config: Pick<ServerConfig, 'apiKey' | 'apiKeyFile' | 'auth' | 'host' | 'mode'>,
  readFile: (file: string) => string,
  ownerKey: () => string = () => {
    throw new InvalidRequestError('--auth owner needs the data directory');
  },
): string | undefined {
  if (config.auth === 'owner') {
    // One key, in one place: two would leave the user unsure which one a client needs.
    if (config.apiKey !== undefined || config.apiKeyFile !== undefined) {
      throw new InvalidRequestError(
        '--auth owner makes and keeps its own key in <data-dir>/owner.key (print it with tabagent key); drop --api-key and --api-key-file',
      );
    }
    return ownerKey();
  }
  let key = config.apiKey;
  if (config.apiKeyFile !== undefined) {
    const fromFile = readFile(config.apiKeyFile).trim();
    if (fromFile.length === 0) throw new InvalidRequestError(`--api-key-file ${config.apiKeyFile} is empty`);
    key = fromFile;
  }
  if ((config.mode === 'http' || config.mode === 'all') && !isLoopbackHost(config.host) && (key === undefined || key.length === 0)) {
    throw new InvalidRequestError(
      `Refusing to serve ${config.host} without an API key: every device on the network could read this server's memory. Set --api-key-file FILE (or TABAGENT_API_KEY_FILE), or bind 127.0.0.1.`,
    );
  }
  return key;
}
