import type { IncomingMessage, ServerResponse } from 'node:http';
import { ForbiddenError, UnauthorizedError, type PairingGrant, type PairingVerifier } from '@tabagent/values';
import { ApiKeyCheck } from './api-key-check.js';
import { deferHeader } from './deferred-headers.js';
import { HostPolicy } from './host-policy.js';
import { OriginPolicy } from './origin-policy.js';
import { isAcceptableClientRequestId } from './request-id.js';

const requestStateKey = Symbol('tabagent.api.requestState');

/** What the guard learned about a request, read later by the route handler. */
export interface RequestState {
  readonly requestId: string;
  readonly origin: string | undefined;
  readonly authenticated: boolean;
  /** The pairing token the request presented, when it presented a valid one. */
  readonly pairing?: PairingGrant;
  /** The connection's remote IP address. */
  readonly address?: string;
}

type TaggedRequest = IncomingMessage & { [requestStateKey]?: RequestState };

/** The state the guard attached to a request (a fresh id if the guard did not run). */
export function requestStateOf(request: IncomingMessage, fallbackId: () => string): RequestState {
  return (request as TaggedRequest)[requestStateKey] ?? { requestId: fallbackId(), origin: undefined, authenticated: false };
}

/** Options of `RequestGuard`. */
export interface RequestGuardOptions {
  allowedOrigins: readonly string[];
  allowedHosts: readonly string[];
  apiKey: string | undefined;
  requestIdFactory: () => string;
  /** Paths that stay open when an API key is configured. */
  isOpenPath: (path: string) => boolean;
  /** Pairing tokens: a browser caller presenting one needs no allowlisted origin (and no API key). */
  pairing?: PairingVerifier;
  /**
   * Accept any Host header: for a server bound to a non-loopback address, which must have an API
   * key (the key is then what keeps others out; DNS rebinding cannot forge it).
   */
  anyHost?: boolean;
}

const preflightHeaders = {
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'Access-Control-Max-Age': '600',
} as const;

/**
 * On every response: no MIME sniffing, no embedding by other sites (CORP for subresources; no
 * framing at all, so no page can lay Swagger UI's "Execute" buttons under a decoy and have them
 * clicked), and caches keyed on the Origin.
 */
const securityHeaders = {
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "frame-ancestors 'none'",
  Vary: 'Origin',
} as const;
const securityHeaderPairs = Object.entries(securityHeaders);

/** Headers any allowed caller may send; the official clients add their own (below). */
const baseAllowedHeaders = 'Authorization, X-Api-Key, Content-Type, X-Request-Id, Accept';

/**
 * The request headers a preflight may ask for, as a header token list: an allowed origin is
 * trusted already, so the ones it asks for are granted (the openai client sends `x-stainless-*`
 * and `OpenAI-Beta`, others their own). Anything that is not a header token list is ignored.
 */
function allowedRequestHeaders(requested: string | string[] | undefined): string {
  const asked = typeof requested === 'string' ? requested : '';
  return /^[\w-]+(\s*,\s*[\w-]+)*$/.test(asked.trim()) ? `${baseAllowedHeaders}, ${asked.trim()}` : baseAllowedHeaders;
}

function isFromAnotherSite(site: string | string[] | undefined): boolean {
  return site === 'cross-site' || site === 'same-site';
}

/**
 * Runs before any route, in one pass because it is on every request's path: assigns the request
 * id, refuses foreign Host headers (DNS rebinding) and foreign Origins (web pages), answers CORS
 * preflights, and checks the API key.
 */
export class RequestGuard {
  private readonly hosts: HostPolicy;
  private readonly origins: OriginPolicy;
  private readonly apiKeyCheck: ApiKeyCheck | undefined;

  constructor(private readonly options: RequestGuardOptions) {
    this.hosts = new HostPolicy(options.allowedHosts);
    this.origins = new OriginPolicy(options.allowedOrigins);
    this.apiKeyCheck = options.apiKey === undefined || options.apiKey.length === 0 ? undefined : new ApiKeyCheck(options.apiKey);
  }

  /**
   * Checks one request; returns the error to answer with, or `'handled'` when it answered a
   * preflight itself, or `undefined` to continue.
   */
  check(request: IncomingMessage, response: ServerResponse, path: string): Error | 'handled' | undefined {
    const incomingId = request.headers['x-request-id'];
    const requestId = typeof incomingId === 'string' && isAcceptableClientRequestId(incomingId) ? incomingId : this.options.requestIdFactory();
    deferHeader(response, 'X-Request-Id', requestId);
    for (const [name, value] of securityHeaderPairs) deferHeader(response, name, value);
    const origin = request.headers.origin;
    // Anthropic's clients send the key as `x-api-key` (ANTHROPIC_API_KEY), others as a bearer token
    // (ANTHROPIC_AUTH_TOKEN, OpenAI's): either carries the API key or a pairing token.
    const apiKeyHeader = request.headers['x-api-key'];
    const keyAsBearer = typeof apiKeyHeader === 'string' && apiKeyHeader.length > 0 ? `Bearer ${apiKeyHeader}` : undefined;
    const authenticated = this.apiKeyCheck !== undefined && (this.apiKeyCheck.accepts(request.headers.authorization) || this.apiKeyCheck.accepts(keyAsBearer));
    const bearer =
      /^Bearer (tap_[A-Za-z0-9_-]{20,100})$/u.exec(request.headers.authorization ?? '')?.[1] ??
      /^Bearer (tap_[A-Za-z0-9_-]{20,100})$/u.exec(keyAsBearer ?? '')?.[1];
    const pairing = bearer === undefined ? null : (this.options.pairing?.verify(bearer) ?? null);
    const address = request.socket.remoteAddress;
    (request as TaggedRequest)[requestStateKey] = {
      requestId,
      origin,
      authenticated,
      ...(pairing ? { pairing } : {}),
      ...(address === undefined ? {} : { address }),
    };

    if (this.options.anyHost !== true && !this.hosts.allows(request.headers.host)) {
      return new ForbiddenError(
        `Host ${JSON.stringify(request.headers.host ?? '')} is not allowed; use localhost or 127.0.0.1, or allow the name with --allowed-host (TABAGENT_ALLOWED_HOSTS)`,
      );
    }
    if (bearer !== undefined && pairing === null && !authenticated)
      return new UnauthorizedError('This pairing token is not valid: it was revoked, it expired, or it never existed');
    // A token minted for one web app does not work from another site's pages. (A program sends no
    // Origin, or any it likes: the binding stops a leaked token being used from a browser.)
    if (pairing !== null && origin !== undefined && pairing.origin !== undefined && pairing.origin !== '*' && pairing.origin !== origin) {
      return new ForbiddenError(`This pairing token was issued for ${pairing.origin}; it does not work from ${JSON.stringify(origin)}`, {
        details: { token_origin: pairing.origin },
      });
    }
    // A preflight cannot carry the token; one that announces an Authorization header is answered,
    // since the request that follows is refused unless its token checks out.
    const pairedPreflight =
      request.method === 'OPTIONS' &&
      this.options.pairing !== undefined &&
      /(^|,)\s*authorization\s*(,|$)/iu.test(request.headers['access-control-request-headers'] ?? '');
    if (origin !== undefined) {
      if (pairing === null && !pairedPreflight && !this.origins.allows(origin, request.headers.host)) {
        return new ForbiddenError(
          `Origin ${JSON.stringify(origin)} is not allowed to call this server: web pages are refused unless their exact origin is allowed with --allowed-origin (the extension is allowed by install-native-host)`,
        );
      }
      deferHeader(response, 'Access-Control-Allow-Origin', origin);
      deferHeader(response, 'Access-Control-Expose-Headers', 'X-Request-Id');
    } else if (pairing === null && isFromAnotherSite(request.headers['sec-fetch-site'])) {
      // A browser request without Origin from another site: an <img>, <script> or link GET. A
      // local program sends no Sec-Fetch-Site, and a typed URL or bookmark says `none`.
      return new ForbiddenError('Requests from other web sites are not allowed (Sec-Fetch-Site without an allowed Origin)');
    }
    if (request.method === 'OPTIONS') {
      const headers: Record<string, string> = {
        ...preflightHeaders,
        'Access-Control-Allow-Headers': allowedRequestHeaders(request.headers['access-control-request-headers']),
        'Content-Length': '0',
      };
      // Chrome's Private Network Access preflight asks before a page-less extension context talks to localhost.
      if (origin !== undefined && request.headers['access-control-request-private-network'] === 'true')
        headers['Access-Control-Allow-Private-Network'] = 'true';
      response.writeHead(204, headers);
      response.end();
      return 'handled';
    }
    if (this.apiKeyCheck !== undefined && !authenticated && pairing === null && !this.options.isOpenPath(path)) {
      return new UnauthorizedError('This server requires an API key: send Authorization: Bearer <key> (or x-api-key: <key>)');
    }
    return undefined;
  }
}
