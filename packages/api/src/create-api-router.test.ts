import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { rawRequest } from './test-support/raw-request.js';
import { startTestServer, type TestServer } from './test-support/test-provider.js';

const chatBody = (model: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

async function problemOf(response: Response): Promise<Record<string, unknown>> {
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  return (await response.json()) as Record<string, unknown>;
}

describe('createApiRouter over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ bodyLimitBytes: 1024 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('serves GET /v1/health as JSON with an X-Request-Id header', async () => {
    const response = await fetch(`${server.baseUrl}/v1/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(response.headers.get('etag')).toBeNull();
    expect(response.headers.get('x-powered-by')).toBeNull();
    expect(await response.json()).toEqual({
      status: 'ok',
      service: 'tabagent-server',
      version: '9.9.9',
      uptime_seconds: 1,
      timestamp: '2026-01-01T00:00:00.000Z',
    });
  });

  it('gives each request its own id and passes it to the handler context', async () => {
    const first = await fetch(`${server.baseUrl}/v1/health`);
    const second = await fetch(`${server.baseUrl}/v1/health`);
    const firstId = first.headers.get('x-request-id');
    expect(firstId).not.toBe(second.headers.get('x-request-id'));
    expect(server.probe.contexts.some((context) => context.requestId === firstId && context.transport === 'http')).toBe(true);
  });

  it('reuses a well-formed client X-Request-Id and ignores a malformed one', async () => {
    const reused = await fetch(`${server.baseUrl}/v1/health`, { headers: { 'X-Request-Id': 'client-id-42' } });
    expect(reused.headers.get('x-request-id')).toBe('client-id-42');
    const replaced = await fetch(`${server.baseUrl}/v1/health`, { headers: { 'X-Request-Id': 'bad id with spaces' } });
    expect(replaced.headers.get('x-request-id')).not.toBe('bad id with spaces');
  });

  it("serves route aliases, and not the Python server's /api/v1 prefix (LM Studio's paths)", async () => {
    for (const path of ['/health']) {
      const response = await fetch(`${server.baseUrl}${path}`);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { service: string }).service).toBe('tabagent-server');
    }
    for (const path of ['/v1/chat']) {
      const response = await fetch(`${server.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('test-model'),
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { object: string }).object).toBe('chat.completion');
    }
    for (const path of ['/api/v1/health', '/api/v1/chat/completions', '/api/v1/models']) {
      const response = await fetch(`${server.baseUrl}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
    }
  });

  it('passes path parameters to the handler and prefers them over query and body fields', async () => {
    const response = await fetch(`${server.baseUrl}/v1/models/qwen-0.5b?model=other`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { id: string; path: string }).id).toBe('qwen-0.5b');
    const encoded = await fetch(`${server.baseUrl}/v1/models/a%20b`);
    expect(((await encoded.json()) as { id: string }).id).toBe('a b');
  });

  it('does not take a literal path for a path parameter (/v1/models/loaded is not models.get)', async () => {
    const response = await fetch(`${server.baseUrl}/v1/models/loaded`);
    const problem = await problemOf(response);
    expect(response.status).toBe(501);
    expect(problem.capability).toBe('models.loaded');
  });

  it('answers a validation failure with 400 listing every bad field', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'robot', content: 'x' }], temperature: 7 }),
    });
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect(problem.code).toBe('invalid_request');
    expect(problem.instance).toBe('/v1/chat/completions');
    const paths = (problem.issues as Array<{ path: string }>).map((issue) => issue.path).sort();
    expect(paths).toEqual(['messages.0.role', 'temperature']);
  });

  it('validates query parameters of GET routes and lists the bad one', async () => {
    const response = await fetch(`${server.baseUrl}/v1/logs?lines=abc`);
    expect(response.status).toBe(400);
    expect(((await problemOf(response)).issues as Array<{ path: string }>).map((issue) => issue.path)).toEqual(['lines']);
    const valid = await fetch(`${server.baseUrl}/v1/logs?lines=5&__proto__=x&__proto__=y`);
    expect(valid.status).toBe(501);
  });

  it('answers HEAD on a GET route with headers and no body', async () => {
    const response = await fetch(`${server.baseUrl}/v1/health`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(Number(response.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await response.text()).toBe('');
  });

  it('answers malformed JSON with 400', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": ',
    });
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect(problem.code).toBe('invalid_request');
    expect(String(problem.detail)).toMatch(/^Malformed JSON/);
  });

  it('answers a JSON body that is not an object with 400', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' });
    expect(response.status).toBe(400);
    expect((await problemOf(response)).detail).toBe('The JSON request body must be an object');
  });

  it('treats an empty body as {} and validates it', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, { method: 'POST' });
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect((problem.issues as Array<{ path: string }>).map((issue) => issue.path)).toEqual(['messages']);
  });

  it('accepts application/*+json and charset parameters', async () => {
    for (const type of ['application/json; charset=utf-8', 'application/vnd.api+json']) {
      const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': type },
        body: chatBody('test-model'),
      });
      expect(response.status).toBe(200);
    }
  });

  it('answers a browser request (with Origin) whose body is not labelled JSON with 415', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop' },
      body: chatBody('test-model'),
    });
    expect(response.status).toBe(415);
    expect((await problemOf(response)).code).toBe('unsupported_media_type');
  });

  it('refuses a browser POST with no body that is not labelled JSON, and never fills a POST from its query string', async () => {
    // The attack: a page's form or fetch sends text/plain with the fields in the URL.
    const browser = await fetch(`${server.baseUrl}/v1/generation/stop?request_id=abc`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop' },
    });
    expect(browser.status).toBe(415);
    const local = await fetch(`${server.baseUrl}/v1/generation/stop?request_id=abc`, { method: 'POST', headers: { 'content-type': 'text/plain' } });
    expect(local.status).toBe(400);
    expect(await problemOf(local)).toMatchObject({ code: 'invalid_request', issues: [expect.objectContaining({ path: 'request_id' })] });
  });

  it('refuses bodies nested deeper than 64 levels or with huge arrays with a 400', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const roomy = await startTestServer();
    const nested = await fetch(`${roomy.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"model":"x","messages":${deep}}`,
    });
    expect(nested.status).toBe(400);
    expect((await problemOf(nested)).detail).toBe('The JSON body nests deeper than 64 levels');
    const huge = await fetch(`${roomy.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'x', messages: new Array(100_001).fill(0) }),
    });
    expect(huge.status).toBe(400);
    expect((await problemOf(huge)).detail).toBe('A JSON array in the body has 100001 items; the limit is 100000');
    expect((await fetch(`${roomy.baseUrl}/v1/health`)).status).toBe(200);
    await roomy.close();
  });

  it('parses a body over 256 KiB in slices with the same answers: taken whole, cut short 400, nested too deep 400', async () => {
    const roomy = await startTestServer();
    const post = (body: string) => fetch(`${roomy.baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const content = 'a "quoted" line \\ with é and 🙂\n'.repeat(60_000);
    const whole = JSON.stringify({
      model: 'sliced-model',
      messages: [
        { role: 'user', content },
        { role: 'assistant', content: 'ok' },
      ],
    });
    expect(whole.length).toBeGreaterThan(2 * 1024 * 1024);
    const taken = await post(whole);
    expect([taken.status, ((await taken.json()) as { model: string }).model]).toEqual([200, 'sliced-model']);
    const cut = await post(whole.slice(0, -3));
    expect([cut.status, (await problemOf(cut)).detail]).toEqual([400, expect.stringMatching(/^Malformed JSON: /u)]);
    const deep = await post(`{"model":"x","messages":[{"role":"user","content":${JSON.stringify(content)}}],"extra":${'['.repeat(70)}${']'.repeat(70)}}`);
    expect([deep.status, (await problemOf(deep)).detail]).toEqual([400, 'The JSON body nests deeper than 64 levels']);
    await roomy.close();
  });

  it('parses the JSON body of a non-browser client whatever its Content-Type says (curl -d, requests data=)', async () => {
    for (const contentType of ['application/x-www-form-urlencoded', 'text/plain', undefined]) {
      const response = await rawRequest({
        port: server.port,
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { host: 'localhost', ...(contentType === undefined ? {} : { 'content-type': contentType }) },
        body: chatBody('test-model'),
      });
      expect({ contentType, status: response.status }).toEqual({ contentType, status: 200 });
    }
    const notJson = await rawRequest({
      port: server.port,
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { host: 'localhost', 'content-type': 'text/plain' },
      body: 'model=x',
    });
    expect(notJson.status).toBe(400);
  });

  it('answers a body over the limit with 413, by Content-Length and while reading a chunked body', async () => {
    const big = JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'a'.repeat(2000) }] });
    const declared = await fetch(`${server.baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(declared.status).toBe(413);
    const problem = await problemOf(declared);
    expect(problem.code).toBe('payload_too_large');
    expect(problem.limit_bytes).toBe(1024);

    const chunked = await rawRequest({
      port: server.port,
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: [big.slice(0, 600), big.slice(600)],
    });
    expect(chunked.status).toBe(413);
    expect(chunked.headers['content-type']).toBe('application/problem+json');
    expect((JSON.parse(chunked.body) as { code: string }).code).toBe('payload_too_large');
  });

  it('answers an unknown path with a 404 problem', async () => {
    const response = await fetch(`${server.baseUrl}/v1/does-not-exist`);
    expect(response.status).toBe(404);
    const problem = await problemOf(response);
    expect(problem).toMatchObject({ status: 404, code: 'not_found', instance: '/v1/does-not-exist', type: 'https://tabagent.dev/errors/not-found' });
    expect(problem.request_id).toBe(response.headers.get('x-request-id'));
  });

  it('answers a known path with the wrong method with 405 and Allow', async () => {
    const response = await fetch(`${server.baseUrl}/v1/health`, { method: 'DELETE' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    const problem = await problemOf(response);
    expect(problem).toMatchObject({ status: 405, title: 'Method not allowed' });
    const chat = await fetch(`${server.baseUrl}/v1/chat/completions`);
    expect(chat.status).toBe(405);
    expect(chat.headers.get('allow')).toBe('POST');
  });

  it('maps a TabAgentError to its status (ModelNotFoundError -> 404)', async () => {
    const response = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody('no-such-model'),
    });
    expect(response.status).toBe(404);
    const problem = await problemOf(response);
    expect(problem).toMatchObject({ code: 'model_not_found', title: 'Model not found', detail: 'Model no-such-model is not registered' });
  });

  it("carries OpenAI's error object in every problem document: message, type, code, param", async () => {
    const unknown = await problemOf(
      await fetch(`${server.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('no-such-model'),
      }),
    );
    expect(unknown['error']).toEqual({
      message: 'Model no-such-model is not registered',
      type: 'invalid_request_error',
      code: 'model_not_found',
      param: 'model',
    });
    const invalid = await problemOf(
      await fetch(`${server.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: 'hi' }),
      }),
    );
    expect(invalid['error']).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request', param: 'messages' });
    expect((invalid['error'] as { message: string }).message).toBe(invalid.detail);
    const notBuilt = await problemOf(
      await fetch(`${server.baseUrl}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}' }),
    );
    expect(notBuilt['error']).toMatchObject({ type: 'server_error', code: 'not_implemented', param: null });
  });

  it('answers routes without a backend with 501 naming the capability', async () => {
    const response = await fetch(`${server.baseUrl}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'x' }),
    });
    expect(response.status).toBe(501);
    expect((await problemOf(response)).capability).toBe('embeddings');
  });

  it('answers an unexpected exception with 500 and leaks nothing', async () => {
    const logged: unknown[] = [];
    const logging = await startTestServer({
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (entry) => logged.push(entry) },
    });
    try {
      const response = await fetch(`${logging.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('boom'),
      });
      expect(response.status).toBe(500);
      const text = await response.text();
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(text).not.toContain('secret');
      expect(text).not.toContain('.tabagent');
      expect(text).not.toMatch(/at .*\.(js|ts)/);
      expect(JSON.parse(text)).toMatchObject({ status: 500, code: 'internal_error', detail: 'An unexpected error occurred; see the server log.' });
      expect(logged).toHaveLength(1);
      expect((logged[0] as { err: Error }).err.message).toBe('secret internal detail at /home/user/.tabagent');
    } finally {
      await logging.close();
    }
  });

  it('hands out an already aborted signal when the client left before the handler asked for it', async () => {
    const local = await startTestServer();
    try {
      const controller = new AbortController();
      const pending = fetch(`${local.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('late-signal'),
        signal: controller.signal,
      }).catch((error: unknown) => error);
      while (local.probe.contexts.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort();
      expect(((await pending) as { name: string }).name).toBe('AbortError');
      await expect(local.probe.aborted).resolves.toBe('chat.completions');
      expect(local.probe.contexts[0]?.signal.aborted).toBe(true);
    } finally {
      await local.close();
    }
  });

  it('aborts the handler signal when the client disconnects from a non-stream request', async () => {
    const local = await startTestServer();
    try {
      const controller = new AbortController();
      const pending = fetch(`${local.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chatBody('hang'),
        signal: controller.signal,
      }).catch((error: unknown) => error);
      while (local.probe.contexts.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort();
      await expect(local.probe.aborted).resolves.toBe('chat.completions');
      expect(local.probe.contexts[0]?.signal.aborted).toBe(true);
      expect(((await pending) as { name: string }).name).toBe('AbortError');
    } finally {
      await local.close();
    }
  });
});

describe('per-route body limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  /** Status, and the limit a 413 names, for a JSON body of `bytes` bytes. */
  const limitOf = async (method: string, path: string, bytes: number): Promise<[number | 'taken', unknown]> => {
    const filler = 'a'.repeat(bytes - JSON.stringify({ model: 'x', messages: [{ role: 'user', content: '' }] }).length);
    const response = await fetch(`${server.baseUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: filler }] }),
    });
    // A problem document names the limit; Ollama's error, its message.
    const body = (await response.json()) as { limit_bytes?: number; error?: unknown };
    return [response.status === 413 ? 413 : 'taken', body.limit_bytes ?? (response.status === 413 ? body.error : undefined)];
  };
  const mebibyte = 1024 * 1024;

  it('takes 1 MiB on most routes, 16 MiB where images and batches travel, and says which limit a refusal met', async () => {
    expect({
      paramsJustUnder: await limitOf('POST', '/v1/params', mebibyte),
      params: await limitOf('POST', '/v1/params', mebibyte + 1),
      ollamaShow: await limitOf('POST', '/api/show', mebibyte + 1),
      chat: await limitOf('POST', '/v1/chat/completions', 2 * mebibyte),
      ollamaChat: await limitOf('POST', '/api/chat', 2 * mebibyte),
      embeddings: await limitOf('POST', '/v1/embeddings', 2 * mebibyte),
      chatTooLarge: await limitOf('POST', '/v1/chat/completions', 16 * mebibyte + 1),
      ollamaGenerateTooLarge: await limitOf('POST', '/api/generate', 16 * mebibyte + 1),
      ingest: await limitOf('POST', '/v1/documents', 16 * mebibyte + 1),
      ingestTooLarge: await limitOf('POST', '/v1/documents', 32 * mebibyte + 1),
    }).toEqual({
      paramsJustUnder: ['taken', undefined],
      params: [413, mebibyte],
      ollamaShow: [413, 'The request body exceeds the limit of 1048576 bytes'],
      chat: ['taken', undefined],
      ollamaChat: ['taken', undefined],
      embeddings: ['taken', undefined],
      chatTooLarge: [413, 16 * mebibyte],
      ollamaGenerateTooLarge: [413, 'The request body exceeds the limit of 16777216 bytes'],
      ingest: ['taken', undefined],
      ingestTooLarge: [413, 32 * mebibyte],
    });
  }, 30_000);
});
