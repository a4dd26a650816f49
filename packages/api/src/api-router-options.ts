import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallerIdentity, Logger, PairingVerifier } from '@tabagent/values';
import type { RequestRefusal } from './refusal-tracking.js';
/** Options of `createApiRouter` and `createApiApp`. */
export interface ApiRouterOptions {
  /**
   * Browser origins allowed to call the server with CORS, exactly: `chrome-extension://<id>`,
   * `moz-extension://<id>`, or a local web app such as `http://localhost:5173` (a trailing `/` is
   * ignored; no wildcards). The server's own origin (its Swagger UI) is allowed. A request
   * carrying any other `Origin`, or a cross-site `Sec-Fetch-Site` without one, is refused with 403.
   */
  allowedOrigins: readonly string[];
  /** Accept any `Host` (a server bound to a LAN address, which then requires `apiKey`). */
  anyHost?: boolean;
  /** Checks pairing tokens: a caller presenting a valid one needs no allowed origin and no API key. */
  pairing?: PairingVerifier;
  /**
   * Extra `Host` header names (without port) accepted besides `localhost`, `127.0.0.1` and
   * `[::1]`, e.g. a LAN name when the server is deliberately bound to another interface.
   * Any other Host is refused with 403 (DNS-rebinding defence).
   */
  allowedHosts?: readonly string[];
  /**
   * When set, every route except `GET /v1/health` (and the API documentation) requires
   * `Authorization: Bearer <apiKey>`; compared in constant time.
   */
  apiKey?: string;
  /**
   * When set, the largest request body any route accepts, in bytes (larger bodies get 413). Each
   * route has its own limit in the catalogue (`maxBodyBytes`: 1 MiB by default, 16 MiB for chat
   * and embedding batches, 32 MiB for bulk imports); this only lowers it.
   */
  bodyLimitBytes?: number;
  /** Where errors (500s with their cause) and request problems are logged. Default: silent. */
  logger?: Logger;
  /**
   * Makes the id of each request (sent back in `X-Request-Id`, passed to handlers). Default: a
   * random per-process prefix plus a counter. A client-sent `X-Request-Id` of up to 128
   * characters `[A-Za-z0-9._:-]` is used as is.
   */
  requestIdFactory?: () => string;
  /**
   * Serve Swagger UI at `/swagger-ui/`. Default false: its "Try it out" runs any route from a page
   * of the server's own origin, which the origin check admits (a clickjacking target if framing
   * protection ever failed). The document is always served at `/api-doc/openapi.json`.
   */
  swaggerUi?: boolean;
  /** Version written into the OpenAPI document's `info.version`. Default `0.0.0`. */
  version?: string;
  /**
   * Serve Ollama's API (`GET /`, `/api/*`) over the same provider, for the `ollama` client, Open
   * WebUI and other Ollama clients. Default true.
   */
  ollama?: boolean;
  /**
   * Aborting it cancels every call in progress, as a client disconnect would: streams end with
   * their last chunk and `[DONE]` instead of a cut connection. For a graceful shutdown.
   */
  shutdownSignal?: AbortSignal;
  /**
   * Serves `GET /metrics` (Prometheus text exposition) with what this returns; the same guard as
   * every route applies (Host, origin allowlist, API key). Absent: no `/metrics`.
   */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /**
   * Called for each request refused before the provider saw it (malformed JSON, a wrong type, an
   * oversized body, 401, 403, an unknown path or method), so metrics count what the provider's
   * counters never see.
   */
  onRefused?: (refusal: RequestRefusal) => void;
  /**
   * Serves the Model Context Protocol at `POST /mcp` (Streamable HTTP, stateless: `GET` and
   * `DELETE /mcp` answer 405) with this handler (`@tabagent/mcp`'s `createMcpHttpHandler`), after
   * the same guard as every route (Host, Origin, API key, pairing token) and the body read as every
   * JSON route reads it. Absent: no `/mcp`.
   */
  mcp?: McpHttpHandler;
}

/** What serves an MCP request the guard admitted: the request, its parsed body, the caller and the request id. */
export type McpHttpHandler = (request: IncomingMessage, response: ServerResponse, body: unknown, caller: CallerIdentity, requestId: string) => Promise<void>;
