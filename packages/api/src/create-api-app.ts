import express, { type Express } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppStateProvider } from '@tabagent/values';
import type { ApiRouterOptions } from './api-router-options.js';
import { createApiRouting } from './create-api-router.js';

/** Where `createApiApp` leaves its catalogue dispatcher for `createApiHttpServer`. */
export const catalogueDispatchKey = Symbol('tabagent.api.catalogueDispatch');

/** An app made by `createApiApp`: Express, plus the catalogue dispatcher that serves its routes without Express. */
export type ApiApp = Express & { [catalogueDispatchKey]?: (request: IncomingMessage, response: ServerResponse) => boolean };

/**
 * An Express app serving `createApiRouter` with lean settings: no ETag hashing of bodies, no
 * `X-Powered-By`, node's own query-string parser. `createApiHttpServer(app)` serves the
 * catalogue's routes through its dispatcher first; `app.listen()` serves them through Express,
 * with the same guard, handlers and answers.
 */
export function createApiApp(provider: AppStateProvider, options: ApiRouterOptions): ApiApp {
  const app: ApiApp = express();
  app.set('etag', false);
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const { router, dispatch } = createApiRouting(provider, options);
  app.use(router);
  app[catalogueDispatchKey] = dispatch;
  return app;
}
