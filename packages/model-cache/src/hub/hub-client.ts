import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import {
  ForbiddenError,
  InvalidRequestError,
  ModelNotFoundError,
  NotFoundError,
  RateLimitedError,
  TabAgentError,
  UnauthorizedError,
  UpstreamError,
  safeParseJson,
} from '@tabagent/values';
import type { HubFile } from '../model-types.js';
import { checkListedPath } from './hub-path.js';

/** Options of `createHubClient`. */
export interface HubClientOptions {
  /** Base URL of the Hub: `HF_ENDPOINT` (default `https://huggingface.co`). */
  endpoint?: string;
  /** The stored Hugging Face token, if any; sent to the endpoint's origin only. */
  token?: () => Promise<string | null> | string | null;
  /** Socket idle timeout in milliseconds (default 30 s). */
  timeoutMs?: number;
}

/** A response body being read, with what the server said about it. */
export interface HubDownloadResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** The URL that answered, after redirects. */
  url: string;
}

/** Talks to the Hugging Face Hub (or a mirror): file listings and file downloads. */
export interface HubClient {
  readonly endpoint: string;
  /** Every file of a repository at a revision, with sizes and LFS sha256. */
  listFiles(repo: string, revision: string, options?: { signal?: AbortSignal }): Promise<HubFile[]>;
  /**
   * Starts downloading a file from `start` (a `Range` request when above 0), following
   * redirects. The caller reads `body`; a status other than 200/206 has been turned into an error.
   */
  openFile(repo: string, revision: string, file: string, options?: { start?: number; signal?: AbortSignal }): Promise<HubDownloadResponse>;
}

const maxRedirects = 10;
/** Pages of one listing (`Link: next`); the Hub pages by 1,000 files or more. */
export const maxListingPages = 100;
/** Files of one repository listing. */
export const maxListedFiles = 100_000;
/** Bytes of one listing page. */
const maxListingPageBytes = 32 * 1024 * 1024;

/** True for a host name or address only this machine, or only a private network, can reach. */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/gu, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal')) return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/u.exec(host.replace(/^::ffff:/u, ''));
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127)
    );
  }
  if (host.includes(':')) return host === '::' || host === '::1' || /^f[cd]/u.test(host) || /^fe[89ab]/u.test(host);
  return false;
}

/**
 * Why a redirect from `from` to `to` is refused, or null: never from https down to http, and never
 * into loopback or a private network unless the endpoint itself is there (a mirror on the LAN, a
 * test Hub on 127.0.0.1). Content is hash-checked either way; this keeps a hostile redirect from
 * making the server probe the user's network (blind SSRF) or leak what it pulls over plain http.
 */
export function redirectRefusal(endpoint: URL, from: URL, to: URL): string | null {
  if (to.protocol !== 'https:' && to.protocol !== 'http:') return `an unsupported URL scheme (${to.protocol})`;
  if (from.protocol === 'https:' && to.protocol === 'http:') return `plain http (${to.host}) from https`;
  if (!isPrivateHost(endpoint.hostname) && isPrivateHost(to.hostname)) return `a local or private address (${to.host})`;
  return null;
}

/** Whether the token may go to `url`: the endpoint's own origin, over https or on loopback only (never in clear over a network). */
export function mayAuthorize(endpointOrigin: string, url: URL): boolean {
  if (url.origin !== endpointOrigin) return false;
  const host = url.hostname.replace(/^\[|\]$/gu, '');
  return url.protocol === 'https:' || host === 'localhost' || host === '::1' || /^127\./u.test(host);
}

/** The default Hub URL, honouring `HF_ENDPOINT` as Hugging Face's own libraries do. */
export function defaultHubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env['HF_ENDPOINT'] ?? 'https://huggingface.co').replace(/\/+$/u, '');
}

const encodePath = (value: string): string => value.split('/').map(encodeURIComponent).join('/');

/**
 * Reads a body of at most `limit` bytes. Past it the response is destroyed (nothing more is read):
 * with `refuse`, that is an error; without, the first `limit` bytes are what an error message needs.
 */
async function readSmallBody(response: IncomingMessage, limit = 64 * 1024, refuse?: () => Error): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    length += chunk.length;
    if (length > limit) {
      response.destroy();
      if (refuse) throw refuse();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** Turns a Hub error answer into the error a user can act on. */
function hubError(
  status: number,
  headers: IncomingHttpHeaders,
  body: string,
  context: { endpoint: string; repo: string; file?: string; hasToken: boolean },
): TabAgentError {
  const code = String(headers['x-error-code'] ?? '');
  const parsed = safeParseJson(body);
  const bodyError = parsed.success && typeof parsed.value === 'object' && parsed.value !== null ? (parsed.value as { error?: unknown }).error : undefined;
  const headerMessage = headers['x-error-message'];
  const serverMessage = (typeof headerMessage === 'string' ? headerMessage : typeof bodyError === 'string' ? bodyError : '').slice(0, 300);
  const page = `${context.endpoint}/${context.repo}`;
  const what = context.file === undefined ? context.repo : `${context.repo}/${context.file}`;
  const details = { repo: context.repo, status, ...(context.file === undefined ? {} : { file: context.file }), ...(code ? { hub_error_code: code } : {}) };
  if (code === 'GatedRepo') {
    const message = context.hasToken
      ? `${context.repo} is a gated model: accept its licence at ${page} with the account of your token, then pull again`
      : `${context.repo} is a gated model: accept its licence at ${page}, then set a token of that account (POST /v1/hf/token or HF_TOKEN) and pull again`;
    return status === 401
      ? new UnauthorizedError(message, { details: { ...details, licence_page: page } })
      : new ForbiddenError(message, { details: { ...details, licence_page: page } });
  }
  if (code === 'RepoNotFound' || (status === 404 && context.file === undefined)) {
    return new ModelNotFoundError(
      `No repository ${context.repo} on ${context.endpoint}${context.hasToken ? '' : ' (a private one needs a token: POST /v1/hf/token or HF_TOKEN)'}`,
      { details },
    );
  }
  if (status === 401) {
    return new UnauthorizedError(`${what} needs a Hugging Face token: set one with POST /v1/hf/token or the HF_TOKEN variable`, { details });
  }
  if (status === 403) return new ForbiddenError(`The Hub refused ${what}${serverMessage ? `: ${serverMessage}` : ''}`, { details });
  if (code === 'RevisionNotFound')
    return new NotFoundError(`${context.repo} has no revision named as asked${serverMessage ? `: ${serverMessage}` : ''}`, { details });
  if (status === 404) return new NotFoundError(`${what} does not exist on ${context.endpoint}`, { details });
  if (status === 429) return new RateLimitedError(`The Hub is rate-limiting downloads of ${what}; try again later`, { details });
  if (status === 416) return new InvalidRequestError(`The Hub refused the byte range asked for ${what}`, { details });
  return new UpstreamError(`The Hub answered ${status} for ${what}${serverMessage ? `: ${serverMessage}` : ''}`, { details });
}

interface TreeEntry {
  type?: unknown;
  path?: unknown;
  size?: unknown;
  oid?: unknown;
  lfs?: { oid?: unknown; size?: unknown } | null;
}

function nextLink(headers: IncomingHttpHeaders): string | null {
  const link = headers.link;
  if (typeof link !== 'string') return null;
  const match = /<([^>]+)>\s*;\s*rel="?next"?/u.exec(link);
  return match?.[1] ?? null;
}

/** Creates a Hub client over node:http(s) with redirects handled here, so the token never leaves the Hub's origin. */
export function createHubClient(options: HubClientOptions = {}): HubClient {
  const endpoint = (options.endpoint ?? defaultHubEndpoint()).replace(/\/+$/u, '');
  const endpointUrl = new URL(endpoint);
  const endpointOrigin = endpointUrl.origin;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const tokenOf = async (): Promise<string | null> => (await options.token?.()) ?? null;

  /** One GET; redirects are followed by the caller so each hop decides about the token. */
  const get = (url: URL, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const transport = url.protocol === 'https:' ? https : http;
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        reject(new UpstreamError(`The Hub redirected to an unsupported URL scheme (${url.protocol})`));
        return;
      }
      const request = transport.get(url, { headers, signal, timeout: timeoutMs }, resolve);
      request.on('timeout', () => request.destroy(new UpstreamError(`No data from ${url.host} for ${timeoutMs / 1000} s`)));
      request.on('error', (error: Error & { code?: unknown }) => {
        if (signal?.aborted === true || TabAgentError.isInstance(error)) {
          reject(error);
          return;
        }
        const code = typeof error.code === 'string' ? error.code : undefined;
        reject(
          new UpstreamError(`Cannot reach ${url.host}: ${code ?? error.message}`, {
            cause: error,
            details: { host: url.host, ...(code ? { cause_code: code } : {}) },
          }),
        );
      });
    });

  const fetchFollowing = async (
    start: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<{ response: IncomingMessage; url: string; hasToken: boolean }> => {
    const token = await tokenOf();
    let url = new URL(start);
    for (let hop = 0; hop <= maxRedirects; hop++) {
      // The token goes to the Hub itself and never to a CDN or any other host a redirect names.
      const authorized = token !== null && mayAuthorize(endpointOrigin, url);
      const response = await get(url, { 'user-agent': 'tabagent-server', ...headers, ...(authorized ? { authorization: `Bearer ${token}` } : {}) }, signal);
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status >= 300 && status < 400 && typeof location === 'string') {
        response.resume();
        const target = new URL(location, url);
        const refusal = redirectRefusal(endpointUrl, url, target);
        if (refusal !== null) {
          throw new UpstreamError(`${url.host} redirected to ${refusal}; refused`, { retryable: false, details: { from: url.host, to: target.host } });
        }
        url = target;
        continue;
      }
      return { response, url: url.toString(), hasToken: token !== null };
    }
    throw new UpstreamError(`More than ${maxRedirects} redirects from ${start}`);
  };

  return {
    endpoint,

    async listFiles(repo, revision, callOptions = {}) {
      const files: HubFile[] = [];
      let next: string | null = `${endpoint}/api/models/${encodePath(repo)}/tree/${encodeURIComponent(revision)}?recursive=true`;
      for (let page = 1; next !== null; page++) {
        if (page > maxListingPages) {
          throw new UpstreamError(`The Hub's listing of ${repo} runs past ${maxListingPages} pages; refused`, {
            retryable: false,
            details: { repo, max_pages: maxListingPages },
          });
        }
        const { response, hasToken } = await fetchFollowing(next, { accept: 'application/json' }, callOptions.signal);
        const body = await readSmallBody(
          response,
          maxListingPageBytes,
          () =>
            new UpstreamError(`A page of the Hub's listing of ${repo} is larger than ${maxListingPageBytes} bytes; refused`, {
              retryable: false,
              details: { repo, max_bytes: maxListingPageBytes },
            }),
        );
        const status = response.statusCode ?? 0;
        if (status !== 200) throw hubError(status, response.headers, body, { endpoint, repo, hasToken });
        const parsedBody = safeParseJson(body, { subject: 'listing' });
        const entries = parsedBody.success ? parsedBody.value : undefined;
        if (!Array.isArray(entries)) throw new UpstreamError(`The Hub's file listing of ${repo} is not a JSON array`, { details: { repo } });
        for (const entry of entries as TreeEntry[]) {
          if (entry.type !== 'file' || typeof entry.path !== 'string' || typeof entry.size !== 'number') continue;
          // Every listed name, before any is used: one that cannot be a local path refuses the repository.
          checkListedPath(repo, entry.path);
          const lfs = entry.lfs ?? null;
          // Every file is checked against a hash after download; one the listing gives none for cannot be.
          if (typeof lfs?.oid !== 'string' && typeof entry.oid !== 'string') {
            throw new UpstreamError(
              `The Hub's listing of ${repo} gives no hash for ${JSON.stringify(entry.path.slice(0, 200))}, so its download could not be checked; refused`,
              {
                retryable: false,
                details: { repo, file: entry.path.slice(0, 200) },
              },
            );
          }
          if (files.length >= maxListedFiles) {
            throw new UpstreamError(`The Hub's listing of ${repo} holds more than ${maxListedFiles} files; refused`, {
              retryable: false,
              details: { repo, max_files: maxListedFiles },
            });
          }
          files.push({
            path: entry.path,
            size: typeof lfs?.size === 'number' ? lfs.size : entry.size,
            sha256: typeof lfs?.oid === 'string' ? lfs.oid : null,
            gitOid: lfs === null && typeof entry.oid === 'string' ? entry.oid : null,
          });
        }
        const link = nextLink(response.headers);
        next = link === null ? null : new URL(link, endpoint).toString();
      }
      return files;
    },

    async openFile(repo, revision, file, callOptions = {}) {
      const start = callOptions.start ?? 0;
      const url = `${endpoint}/${encodePath(repo)}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
      const { response, url: finalUrl, hasToken } = await fetchFollowing(url, start > 0 ? { range: `bytes=${start}-` } : {}, callOptions.signal);
      const status = response.statusCode ?? 0;
      if (status !== 200 && status !== 206) {
        const body = await readSmallBody(response);
        throw hubError(status, response.headers, body, { endpoint, repo, file, hasToken });
      }
      return { status, headers: response.headers, body: response, url: finalUrl };
    },
  };
}
