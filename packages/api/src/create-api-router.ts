import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import {
  assertPairingScope,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  isChunkStream,
  largeBodyBytes,
  parseRouteRequest,
  routeBodyLimit,
  routeCatalogue,
  routeList,
  type AnyRouteDefinition,
  type AppStateProvider,
  type RouteId,
  type RouteMethod,
} from '@tabagent/values';
import type { ApiRouterOptions, McpHttpHandler } from './api-router-options.js';
import { silentLogger, type Logger } from '@tabagent/values';
import { callerOfRequestState, createHttpCallContext } from './http-call-context.js';
import { MethodNotAllowedError } from './method-not-allowed-error.js';
import { buildOpenApiDocument, type OpenApiDocument } from './openapi-document.js';
import { readJsonBody } from './request-body-reader.js';
import { markReachedProvider, reachedProvider, reportRefusal } from './refusal-tracking.js';
import { RequestGuard, requestStateOf } from './request-guard.js';
import { createCounterRequestIdFactory } from './request-id.js';
import { OllamaRoutes, ollamaOpenPaths } from './ollama/ollama-routes.js';
import { buildRouteTable, createCatalogueMatcher, createRouteMatcher } from './route-table.js';
import { sendChunkStream } from './sse-response.js';
import { sendDialectError, streamFramingOf } from './dialect-framing.js';

/** Path of the generated OpenAPI document. */
export const openApiDocumentPath = '/api-doc/openapi.json';
/** Where the Model Context Protocol is served, when `mcp` is given. */
export const mcpPath = '/mcp';
/** Where Prometheus scrapes, when `metrics` is given. */
export const metricsPath = '/metrics';
/** Mount path of Swagger UI. */
export const swaggerUiPath = '/swagger-ui';

const jsonContentType = 'application/json; charset=utf-8';

function pathOf(request: IncomingMessage): string {
  // Express sets originalUrl; a bare node:http request (mounted elsewhere) has only url.
  const url = (request as Partial<Request>).originalUrl ?? request.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function queryOf(request: IncomingMessage): Record<string, unknown> | undefined {
  const url = request.url ?? '';
  const query = url.indexOf('?');
  if (query === -1 || query === url.length - 1) return undefined;
  return parseQueryString(url.slice(query + 1));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Path parameters win over query parameters, which win over body fields. */
/**
 * The request a handler gets: GETs from their query string, POST/PUT/DELETE from their JSON body
 * only (a query string cannot fill a write: `POST /v1/params?system_prompt=...` from a page's
 * form would otherwise need no body at all); path parameters win.
 */
function mergeRequest(method: string, body: unknown, query: Record<string, unknown> | undefined, params: Record<string, string>): Record<string, unknown> {
  if (body !== undefined && body !== null && !isPlainObject(body)) throw new InvalidRequestError('The JSON request body must be an object');
  const merged: Record<string, unknown> = body === undefined || body === null ? {} : { ...body };
  if (query !== undefined && (method === 'GET' || method === 'HEAD')) {
    for (const key of Object.keys(query)) if (key !== '__proto__') merged[key] = query[key];
  }
  for (const key of Object.keys(params)) merged[key] = params[key];
  return merged;
}

function isGone(response: ServerResponse): boolean {
  return response.destroyed || response.writableEnded;
}

function sendJson(response: ServerResponse, value: unknown): void {
  // JSON.stringify(undefined) is undefined, not text (its lib type says string).
  const body = JSON.stringify(value ?? null);
  response.writeHead(200, { 'Content-Type': jsonContentType, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

class ApiRouterBuilder {
  private readonly logger: Logger;
  /** A cap on every route's own body limit, when the options set one. */
  private readonly bodyLimitBytes: number | undefined;
  private readonly requestIdFactory: () => string;
  private readonly guard: RequestGuard;
  private readonly openPaths: ReadonlySet<string>;
  private openApiJson: string | undefined;
  /** The route id at a method and path (set by build()), for refusals before Express routes a request. */
  private routeAt: (method: string, path: string) => RouteId | undefined = () => undefined;
  /** The route and path parameters of a request `dispatch` serves (set by build()). */
  private catalogueMatch: (method: string, path: string) => { id: RouteId; params: Record<string, string> } | undefined = () => undefined;
  private swaggerRouter: Router | undefined;

  constructor(
    private readonly provider: AppStateProvider,
    private readonly options: ApiRouterOptions,
    private readonly routes: readonly AnyRouteDefinition[],
  ) {
    this.logger = options.logger ?? silentLogger;
    this.bodyLimitBytes = options.bodyLimitBytes;
    if (this.bodyLimitBytes !== undefined && (!Number.isSafeInteger(this.bodyLimitBytes) || this.bodyLimitBytes < 0))
      throw new RangeError('bodyLimitBytes must be a non-negative integer');
    this.requestIdFactory = options.requestIdFactory ?? createCounterRequestIdFactory();
    const health = routes.find((route) => route.id === 'health');
    const healthPaths = health === undefined ? [] : [health.path, ...(health.aliases ?? [])];
    this.openPaths = new Set(healthPaths);
    this.guard = new RequestGuard({
      allowedOrigins: options.allowedOrigins,
      allowedHosts: options.allowedHosts ?? [],
      anyHost: options.anyHost === true,
      ...(options.pairing ? { pairing: options.pairing } : {}),
      apiKey: options.apiKey,
      requestIdFactory: this.requestIdFactory,
      isOpenPath: (path) =>
        this.openPaths.has(path) ||
        ((this.options.ollama ?? true) && ollamaOpenPaths.includes(path)) ||
        path === openApiDocumentPath ||
        (this.options.swaggerUi === true && (path === swaggerUiPath || path.startsWith(`${swaggerUiPath}/`))),
    });
  }

  /**
   * Serves a catalogue route straight from node:http, without walking Express's layers: the same
   * guard, the same `serve`, the same problem documents. Returns false for anything else (Ollama's
   * API, `/metrics`, the OpenAPI document, Swagger UI, a wrong method, a path Express would match
   * only loosely such as one with a trailing `/`), which Express then serves as before.
   */
  dispatch(request: IncomingMessage, response: ServerResponse): boolean {
    const path = pathOf(request);
    const { mcp } = this.options;
    if (mcp !== undefined && path === mcpPath && request.method === 'POST') {
      const outcome = this.guard.check(request, response, path);
      if (outcome === 'handled') return true;
      if (outcome !== undefined) this.fail(request, response, outcome, 'mcp');
      else this.serveMcp(mcp, request, response).catch((error: unknown) => this.fail(request, response, error, 'mcp'));
      return true;
    }
    const match = this.catalogueMatch(request.method ?? 'GET', path);
    if (match === undefined) return false;
    const outcome = this.guard.check(request, response, path);
    if (outcome === 'handled') return true;
    if (outcome !== undefined) {
      this.fail(request, response, outcome, match.id);
      return true;
    }
    this.serve(match.id, request, response, match.params).catch((error: unknown) => this.fail(request, response, error, match.id));
    return true;
  }

  build(): Router {
    const router = express.Router({ caseSensitive: true });
    router.use((request: Request, response: Response, next: NextFunction) => {
      const path = pathOf(request);
      const outcome = this.guard.check(request, response, path);
      if (outcome === undefined) next();
      else if (outcome !== 'handled') this.fail(request, response, outcome, this.routeAt(request.method, path) ?? 'unmatched');
    });
    if (this.options.ollama ?? true) {
      new OllamaRoutes({
        provider: this.provider,
        logger: this.logger,
        ...(this.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: this.bodyLimitBytes }),
        requestIdFactory: this.requestIdFactory,
        shutdownSignal: this.options.shutdownSignal,
        version: this.options.version ?? '0.0.0',
        ...(this.options.onRefused === undefined ? {} : { onRefused: this.options.onRefused }),
      }).mount(router);
    }
    const { metrics } = this.options;
    if (metrics !== undefined) {
      router.get(metricsPath, (request: Request, response: Response) => {
        // Not a catalogue route, so the scope check is here: the metrics name every route and model in use.
        if (requestStateOf(request, this.requestIdFactory).pairing?.scope === 'chat') {
          this.fail(
            request,
            response,
            new ForbiddenError('This pairing token is for chat only; /metrics needs a token of scope "full"', { details: { scope: 'chat' } }),
          );
          return;
        }
        metrics()
          .then(({ contentType, body }) => {
            response.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
            response.end(body);
          })
          .catch((error: unknown) => this.fail(request, response, error));
      });
    }
    // Ollama's routes are mounted by its own router (NDJSON); Anthropic's and the Responses API's
    // share this table's SSE transport, framed by their dialect.
    const table = buildRouteTable(this.routes.filter((route) => route.dialect !== 'ollama'));
    this.routeAt = createRouteMatcher(table);
    this.catalogueMatch = createCatalogueMatcher(table);
    for (const entry of table) {
      const route = router.route(entry.expressPath);
      for (const [method, id] of entry.methods) {
        const handler = (request: Request, response: Response): Promise<void> =>
          this.serve(id, request, response, request.params as Record<string, string>).catch((error: unknown) => this.fail(request, response, error, id));
        if (method === 'GET') route.get(handler);
        else if (method === 'POST') route.post(handler);
        else if (method === 'PUT') route.put(handler);
        else route.delete(handler);
      }
      const allow = [...entry.methods.keys()].flatMap((method: RouteMethod) => (method === 'GET' ? ['GET', 'HEAD'] : [method]));
      route.all((request: Request, response: Response) => this.fail(request, response, new MethodNotAllowedError(request.method, pathOf(request), allow)));
    }
    const { mcp } = this.options;
    if (mcp !== undefined) {
      router.post(mcpPath, (request: Request, response: Response) => {
        this.serveMcp(mcp, request, response).catch((error: unknown) => this.fail(request, response, error, 'mcp'));
      });
      router.all(mcpPath, (request: Request, response: Response) => this.fail(request, response, new MethodNotAllowedError(request.method, mcpPath, ['POST'])));
    }
    router.get(openApiDocumentPath, (_request: Request, response: Response) => {
      const body = this.openApiDocumentJson();
      response.writeHead(200, { 'Content-Type': jsonContentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
      response.end(body);
    });
    if (this.options.swaggerUi === true) {
      router.use(swaggerUiPath, (request: Request, response: Response, next: NextFunction) => this.swaggerUi()(request, response, next));
    }
    router.use((request: Request, response: Response) =>
      this.fail(request, response, new NotFoundError(`No route for ${request.method} ${pathOf(request)}; see ${openApiDocumentPath}`)),
    );
    // Errors raised by Express itself or by Swagger UI's middleware.
    router.use((error: unknown, request: Request, response: Response, _next: NextFunction) => this.fail(request, response, error));
    return router;
  }

  /**
   * Answers with the problem document of `error`. Handlers call this directly rather than
   * `next(error)`: Express would walk every remaining route layer looking for an error handler.
   */
  private fail(request: IncomingMessage, response: ServerResponse, error: unknown, route = 'unmatched'): void {
    if (!reachedProvider(request)) reportRefusal(this.options.onRefused, route, error);
    const dialect = route in routeCatalogue ? routeCatalogue[route as RouteId].dialect : undefined;
    sendDialectError(dialect, response, error, pathOf(request), requestStateOf(request, this.requestIdFactory).requestId, this.logger);
  }

  /** The OpenAPI document as JSON text, generated on first use. */
  openApiDocumentJson(): string {
    this.openApiJson ??= JSON.stringify(this.openApiDocument());
    return this.openApiJson;
  }

  private openApiDocument(): OpenApiDocument {
    return buildOpenApiDocument(this.routes, { version: this.options.version ?? '0.0.0', apiKeyRequired: (this.options.apiKey ?? '').length > 0 });
  }

  private swaggerUi(): Router {
    if (this.swaggerRouter === undefined) {
      const document = JSON.parse(this.openApiDocumentJson()) as Record<string, unknown>;
      const swaggerRouter = express.Router();
      swaggerRouter.use(swaggerUi.serveFiles(document), swaggerUi.setup(document, { customSiteTitle: 'TabAgent Server API' }));
      this.swaggerRouter = swaggerRouter;
    }
    return this.swaggerRouter;
  }

  /** An MCP request the guard admitted: its JSON body read within the chat routes' limit, then the MCP handler as this caller. */
  private async serveMcp(mcp: McpHttpHandler, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const state = requestStateOf(request, this.requestIdFactory);
    const body = await readJsonBody(request, Math.min(largeBodyBytes, this.bodyLimitBytes ?? Number.POSITIVE_INFINITY), {
      requireJsonContentType: state.origin !== undefined,
    });
    markReachedProvider(request);
    await mcp(request, response, body, callerOfRequestState(state), state.requestId);
  }

  private async serve(id: RouteId, request: IncomingMessage, response: ServerResponse, params: Record<string, string>): Promise<void> {
    const state = requestStateOf(request, this.requestIdFactory);
    assertPairingScope(state.pairing, id);
    const method = request.method;
    const body =
      method === 'GET' || method === 'HEAD'
        ? undefined
        : await readJsonBody(request, Math.min(routeBodyLimit(routeCatalogue[id]), this.bodyLimitBytes ?? Number.POSITIVE_INFINITY), {
            requireJsonContentType: state.origin !== undefined,
          });
    const validated = parseRouteRequest(id, mergeRequest(method ?? 'GET', body, queryOf(request), params));
    const caller = callerOfRequestState(state);
    const context = createHttpCallContext(state.requestId, caller, request, response, this.options.shutdownSignal);
    markReachedProvider(request);
    const result: unknown = await this.provider.handle(id, validated, context);
    if (isGone(response)) return;
    if (isChunkStream(result)) {
      await sendChunkStream(result, {
        response,
        requestId: state.requestId,
        instance: pathOf(request),
        logger: this.logger,
        framing: streamFramingOf(routeCatalogue[id].dialect),
      });
      return;
    }
    // Written in the event loop's check phase, once every request read in this turn has been
    // handled: the answers to many connections then go out together rather than each between two
    // reads, which under load costs a quarter less CPU per request (bench/http/compare-builds.mjs)
    // and delays an answer by at most the rest of this turn.
    setImmediate(() => {
      if (isGone(response)) return;
      try {
        sendJson(response, result);
      } catch (error) {
        this.fail(request, response, error, id);
      }
    });
  }
}

/**
 * Mounts every route of the catalogue on an Express 5 router: `/v1/...` paths and their aliases;
 * request validation; SSE streams; RFC 7807 problem documents
 * for every error; Host/Origin/API-key checks; the OpenAPI document at `/api-doc/openapi.json`
 * and Swagger UI at `/swagger-ui/`. Unknown paths end here with a 404 problem, so mount other
 * routers before this one.
 */
export function createApiRouter(provider: AppStateProvider, options: ApiRouterOptions): Router {
  return createApiRouting(provider, options).router;
}

/**
 * The Express router of `createApiRouter`, and `dispatch`, which serves the catalogue's routes
 * directly from node:http (what `createApiApp` and `createApiHttpServer` use on the hot path).
 */
export function createApiRouting(
  provider: AppStateProvider,
  options: ApiRouterOptions,
): { router: Router; dispatch: (request: IncomingMessage, response: ServerResponse) => boolean } {
  const builder = new ApiRouterBuilder(provider, options, routeList);
  const router = builder.build();
  return { router, dispatch: (request, response) => builder.dispatch(request, response) };
}
