import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { rawRequest } from './test-support/raw-request.js';
import { startTestServer, type TestServer } from './test-support/test-provider.js';

const extensionOrigin = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';

describe('Host and Origin checks', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ allowedHosts: ['tabagent.lan', '*.home.arpa'], plainNodeServer: true, swaggerUi: true });
  });
  afterAll(async () => {
    await server.close();
  });

  it('accepts loopback Host names with any port and configured extra hosts', async () => {
    for (const host of [
      'localhost',
      `localhost:${server.port}`,
      '127.0.0.1:1',
      '[::1]:8080',
      'LOCALHOST',
      'tabagent.lan:80',
      'box.home.arpa',
      'nas.home.arpa:8080',
    ]) {
      const response = await rawRequest({ port: server.port, method: 'GET', path: '/v1/health', headers: { host } });
      expect({ host, status: response.status }).toEqual({ host, status: 200 });
    }
  });

  it('accepts *.localhost and host.docker.internal (a container calling the host)', async () => {
    for (const host of ['app.localhost:5173', 'host.docker.internal:8080']) {
      const response = await rawRequest({ port: server.port, method: 'GET', path: '/v1/health', headers: { host } });
      expect({ host, status: response.status }).toEqual({ host, status: 200 });
    }
  });

  it("refuses this machine's name and <name>.local unless configured: the LAN can answer mDNS for them and rebind", async () => {
    for (const host of [hostname(), `${hostname()}.local`, `${hostname()}.local:8080`]) {
      const response = await rawRequest({ port: server.port, method: 'GET', path: '/v1/health', headers: { host } });
      expect({ host, status: response.status }).toEqual({ host, status: 403 });
    }
  });

  it('refuses a foreign Host header with a 403 problem (DNS rebinding)', async () => {
    for (const host of [
      'evil.example',
      'evil.example:8080',
      'localhost.evil.example',
      '127.0.0.2',
      'home.arpa',
      'evilhome.arpa',
      'localhost.',
      'docker.internal',
    ]) {
      const response = await rawRequest({ port: server.port, method: 'GET', path: '/v1/health', headers: { host } });
      expect({ host, status: response.status }).toEqual({ host, status: 403 });
      expect(response.headers['content-type']).toBe('application/problem+json');
      expect((JSON.parse(response.body) as { code: string }).code).toBe('forbidden');
      expect(response.headers['x-request-id']).toBeDefined();
    }
  });

  it('reflects an allowed extension origin with Vary and exposes X-Request-Id', async () => {
    const response = await fetch(`${server.baseUrl}/v1/health`, { headers: { origin: extensionOrigin } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe(extensionOrigin);
    expect(response.headers.get('vary')).toBe('Origin');
    expect(response.headers.get('access-control-expose-headers')).toBe('X-Request-Id');
  });

  it('refuses localhost web pages unless their exact origin is allowed, and allows its own Swagger UI origin', async () => {
    // A dev server, Jupyter or a page opened from ~/Downloads is a web page like any other.
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:5173', 'http://[::1]:8080', 'http://localhost']) {
      const response = await fetch(`${server.baseUrl}/v1/health`, { headers: { origin } });
      expect({ origin, status: response.status }).toEqual({ origin, status: 403 });
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    }
    const own = `http://127.0.0.1:${server.port}`;
    const response = await fetch(`${server.baseUrl}/v1/health`, { headers: { origin: own } });
    expect(response.status).toBe(200);
    const opted = await startTestServer({ allowedOrigins: ['http://localhost:5173'] });
    try {
      expect((await fetch(`${opted.baseUrl}/v1/health`, { headers: { origin: 'http://localhost:5173' } })).status).toBe(200);
      expect((await fetch(`${opted.baseUrl}/v1/health`, { headers: { origin: 'http://localhost:5174' } })).status).toBe(403);
    } finally {
      await opted.close();
    }
  });

  it('refuses an <img>-style GET from another site (Sec-Fetch-Site without Origin), and allows a typed URL', async () => {
    for (const site of ['cross-site', 'same-site']) {
      const response = await fetch(`${server.baseUrl}/v1/models/loaded`, {
        headers: { 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' },
      });
      expect({ site, status: response.status }).toEqual({ site, status: 403 });
    }
    expect((await fetch(`${server.baseUrl}/v1/health`, { headers: { 'sec-fetch-site': 'none' } })).status).toBe(200);
    expect((await fetch(`${server.baseUrl}/v1/health`, { headers: { 'sec-fetch-site': 'same-origin' } })).status).toBe(200);
  });

  it('sends nosniff, same-origin CORP, no framing and Vary: Origin on every response, errors and Swagger UI included', async () => {
    for (const route of ['/v1/health', '/v1/no-such-route', '/swagger-ui/', '/api-doc/openapi.json']) {
      const response = await fetch(`${server.baseUrl}${route}`);
      expect({
        route,
        nosniff: response.headers.get('x-content-type-options'),
        corp: response.headers.get('cross-origin-resource-policy'),
        frameOptions: response.headers.get('x-frame-options'),
        csp: response.headers.get('content-security-policy'),
        vary: response.headers.get('vary'),
      }).toEqual({
        route,
        nosniff: 'nosniff',
        corp: 'same-origin',
        frameOptions: 'DENY',
        csp: "frame-ancestors 'none'",
        vary: expect.stringContaining('Origin'),
      });
    }
  });

  it('accepts any Host when told to (a LAN bind, which must have an API key)', async () => {
    const lan = await startTestServer({ anyHost: true, apiKey: 'k', plainNodeServer: true });
    try {
      const response = await rawRequest({ port: lan.port, method: 'GET', path: '/v1/health', headers: { host: 'tabagent.example.lan' } });
      expect(response.status).toBe(200);
      const refused = await rawRequest({ port: lan.port, method: 'GET', path: '/v1/models', headers: { host: 'tabagent.example.lan' } });
      expect(refused.status).toBe(401);
    } finally {
      await lan.close();
    }
  });

  it('refuses a request carrying a disallowed Origin with a 403 problem', async () => {
    for (const origin of ['https://evil.example', 'chrome-extension://otherextensionid', 'null', 'http://localhost.evil.example']) {
      const response = await fetch(`${server.baseUrl}/v1/health`, { headers: { origin } });
      expect({ origin, status: response.status }).toEqual({ origin, status: 403 });
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expect(((await response.json()) as { code: string }).code).toBe('forbidden');
    }
  });

  it('accepts requests without an Origin header (native clients)', async () => {
    const response = await rawRequest({ port: server.port, method: 'GET', path: '/v1/health', headers: { host: 'localhost' } });
    expect(response.status).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers a CORS preflight from an allowed origin with 204', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: extensionOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(extensionOrigin);
    expect(response.headers.get('access-control-allow-methods')).toBe('GET, POST, PUT, DELETE, OPTIONS');
    expect(response.headers.get('access-control-allow-headers')).toBe(
      'Authorization, X-Api-Key, Content-Type, X-Request-Id, Accept, content-type, authorization',
    );
  });

  it('grants an allowed origin the headers the openai client sends from a browser, and nothing that is not a header list', async () => {
    const asked = 'authorization, content-type, x-stainless-os, x-stainless-lang, x-stainless-retry-count, openai-beta';
    const preflight = (headers: string) =>
      fetch(`${server.baseUrl}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: { origin: extensionOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers },
      });
    expect((await preflight(asked)).headers.get('access-control-allow-headers')).toBe(`Authorization, X-Api-Key, Content-Type, X-Request-Id, Accept, ${asked}`);
    expect((await preflight('x-a, x-b;x-injected: 1')).headers.get('access-control-allow-headers')).toBe(
      'Authorization, X-Api-Key, Content-Type, X-Request-Id, Accept',
    );
  });

  it('refuses a CORS preflight from a disallowed origin', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('API key', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ apiKey: 's3cret-key' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('requires the bearer key on routes other than health', async () => {
    for (const authorization of [undefined, 'Bearer wrong', 'Basic s3cret-key', 'Bearer s3cret-ke']) {
      const response = await fetch(`${server.baseUrl}/v1/models/x`, { headers: authorization === undefined ? {} : { authorization } });
      expect({ authorization, status: response.status }).toEqual({ authorization, status: 401 });
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await response.json()) as { code: string }).code).toBe('unauthorized');
    }
  });

  it('accepts the right key and tells the handler the caller authenticated', async () => {
    const response = await fetch(`${server.baseUrl}/v1/models/x`, { headers: { authorization: 'Bearer s3cret-key' } });
    expect(response.status).toBe(200);
    const context = server.probe.contexts.find((entry) => entry.requestId === response.headers.get('x-request-id'));
    expect(context?.caller).toEqual({ apiKey: true, address: '127.0.0.1' });
  });

  it('keeps health open without a key, on every health path', async () => {
    for (const path of ['/v1/health', '/health']) {
      const response = await fetch(`${server.baseUrl}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
    }
  });

  it('lets a CORS preflight through without the key (browsers never send it there)', async () => {
    const response = await fetch(`${server.baseUrl}/v1/models/x`, {
      method: 'OPTIONS',
      headers: { origin: extensionOrigin, 'access-control-request-method': 'GET' },
    });
    expect(response.status).toBe(204);
  });
});
