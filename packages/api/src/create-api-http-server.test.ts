import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express, { type Express } from 'express';
import type { Server } from 'node:http';
import { createApiHttpServer } from './create-api-http-server.js';
import { createApiRouter } from './create-api-router.js';
import { createTestProvider } from './test-support/test-provider.js';

describe('createApiHttpServer', () => {
  let app: Express;
  let server: Server;
  let baseUrl: string;
  const seen: { requestPrototypeIsApps: boolean; responsePrototypeIsApps: boolean } = { requestPrototypeIsApps: false, responsePrototypeIsApps: false };

  beforeAll(async () => {
    app = express();
    // An ordinary Express route using Express's own request/response helpers.
    app.get('/custom', (request, response) => {
      seen.requestPrototypeIsApps = Object.getPrototypeOf(request) === app.request;
      seen.responsePrototypeIsApps = Object.getPrototypeOf(response) === app.response;
      response.status(201).json({ header: request.get('x-test'), query: request.query['q'] });
    });
    app.use(createApiRouter(createTestProvider().provider, { allowedOrigins: [] }));
    server = createApiHttpServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('creates requests and responses with the app prototypes, so Express helpers work unchanged', async () => {
    const response = await fetch(`${baseUrl}/custom?q=1`, { headers: { 'x-test': 'yes' } });
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ header: 'yes', query: '1' });
    expect(seen).toEqual({ requestPrototypeIsApps: true, responsePrototypeIsApps: true });
  });

  it('serves the API router mounted on the same app', async () => {
    const response = await fetch(`${baseUrl}/v1/health`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { status: string }).status).toBe('ok');
    const missing = await fetch(`${baseUrl}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/problem+json');
  });
});
