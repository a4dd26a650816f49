import { InvalidRequestError } from '@tabagent/values';
import { z } from 'zod';

/**
 * One member of an upstream: an OpenAI-compatible base URL (`http://gpu-box:8000/v1`) under a
 * name. Several members under one name make a pool that shares the name's models.
 */
export interface UpstreamMemberConfig {
  /** The upstream's name: its models are served as `NAME/MODEL`. */
  name: string;
  /** The base URL, http(s), without credentials, query or trailing slash. */
  url: string;
  /** Sent as `Authorization: Bearer` to this member only; from a file or the environment, never logged. */
  key: string | undefined;
  /** Requests this member may have in flight; more are sent to another member or refused (503). */
  maxInFlight: number;
  /** Time to open the TCP (and TLS) connection. */
  connectTimeoutMs: number;
  /** Time from sending a request to the response's headers. */
  firstByteTimeoutMs: number;
  /** Longest silence inside a response body (a stream's chunks, a JSON answer). */
  idleTimeoutMs: number;
  /** How long a member that failed before its first byte is skipped. */
  cooldownMs: number;
  /** Largest body of a response that is not streamed (embeddings, the model list), and of one streamed event. */
  maxResponseBytes: number;
}

/** The upstreams of a server: every member, and how often their model lists are read again. */
export interface UpstreamsConfig {
  members: UpstreamMemberConfig[];
  refreshIntervalMs: number;
}

/** Defaults of every member: generous enough for a CPU engine's prefill, bounded all the same. */
export const upstreamDefaults = {
  maxInFlight: 32,
  connectTimeoutMs: 10_000,
  firstByteTimeoutMs: 300_000,
  idleTimeoutMs: 300_000,
  cooldownMs: 30_000,
  maxResponseBytes: 64 * 1024 * 1024,
  refreshIntervalMs: 60_000,
} as const;

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/u;

/** An upstream name: letters, digits, `.`, `_` and `-`, as a model-id prefix needs (no `/`). */
export function checkUpstreamName(name: string, source: string): string {
  if (!namePattern.test(name)) {
    throw new InvalidRequestError(
      `${source}: an upstream name is 1 to 63 letters, digits, ".", "_" or "-" starting with a letter or digit, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/**
 * An upstream base URL: http or https only (no file:, no other scheme a URL parser accepts),
 * without credentials (a key belongs in a key file, where it is not logged), query or fragment.
 */
export function checkUpstreamUrl(url: string, source: string): string {
  const refuse = (why: string): never => {
    throw new InvalidRequestError(
      `${source}: ${JSON.stringify(url)} is not an upstream base URL: ${why}; give one as http(s)://host[:port]/path, e.g. http://gpu-box:8000/v1`,
    );
  };
  if (!URL.canParse(url)) return refuse('it does not parse as a URL');
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') refuse('only http and https are allowed');
  if (parsed.username !== '' || parsed.password !== '') refuse('credentials in a URL would be logged; use --upstream-key-file');
  if (parsed.search !== '' || parsed.hash !== '') refuse('it has a query or a fragment');
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/u, '')}`;
}

/** Splits `NAME=VALUE` (a flag's argument). */
export function splitNamed(argument: string, flag: string, what: string): { name: string; value: string } {
  const at = argument.indexOf('=');
  if (at <= 0 || at === argument.length - 1) throw new InvalidRequestError(`${flag} takes NAME=${what}, got ${JSON.stringify(argument)}`);
  return { name: checkUpstreamName(argument.slice(0, at), flag), value: argument.slice(at + 1) };
}

/** A key goes into an HTTP header: printable ASCII without spaces. */
function checkKey(key: string, source: string): string {
  if (!/^[\x21-\x7e]+$/u.test(key)) throw new InvalidRequestError(`${source}: an upstream key is printable ASCII without spaces or control characters`);
  return key;
}

const positive = (max: number) => z.number().int().min(1).max(max);

/** `<data-dir>/upstreams.json`: the same upstreams as the flags, with their limits. */
export const UpstreamsFile = z
  .object({
    upstreams: z
      .array(
        z
          .object({
            name: z.string(),
            url: z.string(),
            /** A file holding the key (read at start). */
            key_file: z.string().optional(),
            /** An environment variable holding the key. */
            key_env: z.string().optional(),
            max_in_flight: positive(10_000).optional(),
            connect_timeout_ms: positive(3_600_000).optional(),
            first_byte_timeout_ms: positive(3_600_000).optional(),
            idle_timeout_ms: positive(3_600_000).optional(),
            cooldown_ms: positive(3_600_000).optional(),
            max_response_bytes: positive(1024 * 1024 * 1024).optional(),
          })
          .strict(),
      )
      .default([]),
    refresh_interval_ms: positive(86_400_000).optional(),
  })
  .strict();
export type UpstreamsFile = z.infer<typeof UpstreamsFile>;

/** What `resolveUpstreams` reads: the flags, the file's content, the environment and a file reader. */
export interface UpstreamSources {
  /** `--upstream NAME=URL`, in order. */
  flags: readonly string[];
  /** `--upstream-key-file NAME=PATH`. */
  keyFiles: readonly string[];
  /** `upstreams.json`'s text, when the file exists. */
  file: string | undefined;
  env: NodeJS.ProcessEnv;
  readFile: (path: string) => string;
}

/** The variable that holds NAME's key when no file names one: `TABAGENT_UPSTREAM_KEY_<NAME>` (upper case, other characters as `_`). */
export function upstreamKeyVariable(name: string): string {
  return `TABAGENT_UPSTREAM_KEY_${name.toUpperCase().replace(/[^A-Z0-9]/gu, '_')}`;
}

/**
 * The upstreams of the flags and of `upstreams.json`, checked: names, URLs (http(s) only), keys
 * (from a file named by `--upstream-key-file` or the file's `key_file`, a variable named by
 * `key_env`, or `TABAGENT_UPSTREAM_KEY_<NAME>`; never from a flag or the URL), limits. A key file
 * that is missing or empty stops the start with its name, so a typo is not a silent 401.
 */
export function resolveUpstreams(sources: UpstreamSources): UpstreamsConfig {
  const keyFiles = new Map<string, string>();
  for (const argument of sources.keyFiles) {
    const { name, value } = splitNamed(argument, '--upstream-key-file', 'PATH');
    keyFiles.set(name, value);
  }
  const readKeyFile = (path: string, source: string): string => {
    let text: string;
    try {
      text = sources.readFile(path);
    } catch (error) {
      throw new InvalidRequestError(`${source}: the key file ${path} cannot be read (${(error as Error).message})`);
    }
    const key = text.trim();
    if (key === '') throw new InvalidRequestError(`${source}: the key file ${path} is empty`);
    return checkKey(key, source);
  };
  const keyOf = (name: string, entry?: { key_file?: string | undefined; key_env?: string | undefined }): string | undefined => {
    const flagFile = keyFiles.get(name);
    if (flagFile !== undefined) return readKeyFile(flagFile, `--upstream-key-file ${name}`);
    if (entry?.key_file !== undefined) return readKeyFile(entry.key_file, `upstreams.json (${name})`);
    const variable = entry?.key_env ?? upstreamKeyVariable(name);
    const fromEnv = sources.env[variable];
    if (entry?.key_env !== undefined && (fromEnv === undefined || fromEnv === ''))
      throw new InvalidRequestError(`upstreams.json (${name}): the variable ${variable} named by key_env is not set`);
    return fromEnv === undefined || fromEnv === '' ? undefined : checkKey(fromEnv, variable);
  };
  const members: UpstreamMemberConfig[] = [];
  /** A member with the defaults for every limit its entry does not set. */
  const memberOf = (name: string, url: string, source: string, entry: UpstreamsFile['upstreams'][number] | undefined): UpstreamMemberConfig => ({
    name,
    url: checkUpstreamUrl(url, source),
    key: keyOf(name, entry),
    maxInFlight: entry?.max_in_flight ?? upstreamDefaults.maxInFlight,
    connectTimeoutMs: entry?.connect_timeout_ms ?? upstreamDefaults.connectTimeoutMs,
    firstByteTimeoutMs: entry?.first_byte_timeout_ms ?? upstreamDefaults.firstByteTimeoutMs,
    idleTimeoutMs: entry?.idle_timeout_ms ?? upstreamDefaults.idleTimeoutMs,
    cooldownMs: entry?.cooldown_ms ?? upstreamDefaults.cooldownMs,
    maxResponseBytes: entry?.max_response_bytes ?? upstreamDefaults.maxResponseBytes,
  });
  let refreshIntervalMs: number = upstreamDefaults.refreshIntervalMs;
  if (sources.file !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(sources.file);
    } catch (error) {
      throw new InvalidRequestError(`upstreams.json is not JSON: ${(error as Error).message}`);
    }
    const parsed = UpstreamsFile.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidRequestError(`upstreams.json: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'is invalid'}`);
    }
    refreshIntervalMs = parsed.data.refresh_interval_ms ?? refreshIntervalMs;
    for (const entry of parsed.data.upstreams) {
      const name = checkUpstreamName(entry.name, 'upstreams.json');
      members.push(memberOf(name, entry.url, `upstreams.json (${name})`, entry));
    }
  }
  for (const argument of sources.flags) {
    const { name, value } = splitNamed(argument, '--upstream', 'BASE_URL');
    members.push(memberOf(name, value, `--upstream ${name}`, undefined));
  }
  for (const name of keyFiles.keys()) {
    if (!members.some((member) => member.name === name)) throw new InvalidRequestError(`--upstream-key-file ${name}: no upstream is named ${name}`);
  }
  const seen = new Set<string>();
  for (const member of members) {
    const key = `${member.name} ${member.url}`;
    if (seen.has(key)) throw new InvalidRequestError(`Upstream ${member.name} lists ${member.url} twice`);
    seen.add(key);
  }
  return { members, refreshIntervalMs };
}
