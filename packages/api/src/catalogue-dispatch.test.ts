import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildRouteTable, createCatalogueMatcher } from './route-table.js';
import { routeList } from '@tabagent/values';
import { startTestServer, type TestServer } from './test-support/test-provider.js';

// createApiHttpServer serves the catalogue's routes without Express (its dispatcher, and headers
// written with the status line); plain http.createServer(app) serves them through Express. Both
// must answer every request alike.

describe('the catalogue matcher', () => {
  const match = createCatalogueMatcher(buildRouteTable(routeList.filter((route) => route.dialect === undefined)));

  it('finds literal paths before parameterised ones, decodes parameters, and takes HEAD as GET', () => {
    expect(match('GET', '/v1/models/loaded')).toEqual({ id: 'models.loaded', params: {} });
    expect(match('GET', '/v1/models/a%2Fb%20c')).toEqual({ id: 'models.get', params: { model: 'a/b c' } });
    expect(match('HEAD', '/v1/health')).toEqual({ id: 'health', params: {} });
  });

  it('leaves to Express what it does not serve exactly: other methods, a trailing slash, a bad escape, unknown and Ollama paths', () => {
    expect(match('DELETE', '/v1/health')).toBeUndefined();
    expect(match('GET', '/v1/health/')).toBeUndefined();
    expect(match('GET', '/v1/models/%E0%A4%A')).toBeUndefined();
    expect(match('GET', '/v1/nothing')).toBeUndefined();
    expect(match('POST', '/api/chat')).toBeUndefined();
  });
});

describe('createApiHttpServer and http.createServer(app) answer alike', () => {
  let dispatched: TestServer;
  let express: TestServer;
  beforeAll(async () => {
    dispatched = await startTestServer({ requestIdFactory: () => 'fixed-id' });
    express = await startTestServer({ requestIdFactory: () => 'fixed-id', plainNodeServer: true });
  });
  afterAll(async () => {
    await dispatched.close();
    await express.close();
  });

  const answer = async (server: TestServer, path: string, init: RequestInit = {}) => {
    const response = await fetch(`${server.baseUrl}${path}`, init);
    const headers = [...response.headers.entries()].filter(([name]) => name !== 'date').sort(([a], [b]) => a.localeCompare(b));
    return { status: response.status, headers, body: await response.text() };
  };

  it.each([
    ['/v1/health', {}],
    ['/v1/health', { method: 'HEAD' }],
    ['/v1/health/', {}],
    ['/v1/models/a%2Fb', {}],
    ['/v1/models/missing', {}],
    ['/v1/health', { method: 'DELETE' }],
    ['/v1/health', { headers: { origin: 'https://evil.example' } }],
    ['/v1/health', { headers: { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop' } }],
    ['/v1/health', { method: 'OPTIONS', headers: { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop', 'access-control-request-method': 'GET' } }],
    ['/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' }],
  ] as [string, RequestInit][])('%s %j', async (path, init) => {
    const [viaDispatch, viaExpress] = await Promise.all([answer(dispatched, path, init), answer(express, path, init)]);
    expect(viaDispatch).toEqual(viaExpress);
    expect(viaDispatch.headers.map(([name]) => name)).toEqual(expect.arrayContaining(['x-request-id', 'x-content-type-options', 'x-frame-options']));
  });
});
