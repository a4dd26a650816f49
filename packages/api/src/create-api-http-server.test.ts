import { connect, type AddressInfo } from 'node:net';
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

  it('closes a connection that trickles its headers once the headers timeout passes', async () => {
    const slow = createApiHttpServer(express(), { headersTimeout: 300, requestTimeout: 600, connectionsCheckingInterval: 100 });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const socket = connect((slow.address() as AddressInfo).port, '127.0.0.1');
      socket.write('GET /v1/health HTTP/1.1\r\nHost: localhost\r\n');
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      expect(Buffer.concat(received).toString('latin1')).toMatch(/^HTTP\/1\.1 408 Request Timeout/u);
    } finally {
      await new Promise((resolve) => slow.close(resolve));
    }
  });

  it('sets headers and request timeouts by default', () => {
    const server = createApiHttpServer(express());
    expect([server.headersTimeout, server.requestTimeout]).toEqual([10_000, 60_000]);
  });
});
