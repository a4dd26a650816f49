import express, { type Express } from 'express';
import type { AppStateProvider } from '@tabagent/values';
import type { ApiRouterOptions } from './api-router-options.js';
import { createApiRouter } from './create-api-router.js';

/**
 * An Express app serving `createApiRouter` with lean settings: no ETag hashing of bodies, no
 * `X-Powered-By`, node's own query-string parser.
 */
export function createApiApp(provider: AppStateProvider, options: ApiRouterOptions): Express {
  const app = express();
  app.set('etag', false);
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(createApiRouter(provider, options));
  return app;
}
