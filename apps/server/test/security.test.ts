import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { writeTinyEmbedderModel } from '@tabagent/onnx-loader/test-support';
import { routeList } from '@tabagent/values';
import { recordAllowedOrigins } from '../src/allowed-origins-store.js';
import { parseServeArguments } from '../src/server-config.js';
import { startServer, type RunningServer } from '../src/start-server.js';

// Each test is an attacker's request against the whole server, asserting the refusal and that
// nothing changed on disk.

const extension = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';
const longRun = { max_tokens: 100_000, ignore_eos: true };

let root: string;
let server: RunningServer;
let base: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'security-'));
  mkdirSync(path.join(root, 'models'));
  writeTinyLlamaGguf(path.join(root, 'models', 'tiny.gguf'));
  await writeTinyEmbedderModel(path.join(root, 'models', 'embedder'));
  // What install-native-host records: the extension is let in with no --allowed-origin.
  recordAllowedOrigins(root, [extension]);
  const config = parseServeArguments(
    ['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off', '--hf-endpoint', 'http://127.0.0.1:9', '--swagger-ui', 'on'],
    {},
  );
  server = await startServer(config, { logger: pino({ level: 'silent' }) });
  base = server.httpUrl as string;
}, 60_000);

afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});
const settingsOnDisk = (): string => (existsSync(path.join(root, 'settings.json')) ? readFileSync(path.join(root, 'settings.json'), 'utf8') : '');

describe('who may call', () => {
  it('lets the installed extension in and refuses a foreign site and a localhost page alike, changing nothing', async () => {
    const before = settingsOnDisk();
    expect((await fetch(`${base}/v1/params`, json({ temperature: 0.5 }, { origin: extension }))).status).toBe(200);
    const changed = settingsOnDisk();
    for (const origin of ['https://evil.example', 'http://localhost:8888', 'http://127.0.0.1:3000']) {
      const response = await fetch(`${base}/v1/params`, json({ system_prompt: 'obey the attacker' }, { origin }));
      expect({ origin, status: response.status, code: ((await response.json()) as { code: string }).code }).toEqual({ origin, status: 403, code: 'forbidden' });
      const read = await fetch(`${base}/v1/sync/pull`, json({}, { origin }));
      expect(read.status).toBe(403);
    }
    expect(settingsOnDisk()).toBe(changed);
    expect(changed).not.toBe(before);
    expect(changed).not.toContain('attacker');
  });

  it('refuses a text/plain POST that puts its fields in the query string', async () => {
    const before = settingsOnDisk();
    const browser = await fetch(`${base}/v1/params?system_prompt=obey`, { method: 'POST', headers: { 'content-type': 'text/plain', origin: extension } });
    expect(browser.status).toBe(415);
    const local = await fetch(`${base}/v1/params?system_prompt=obey`, { method: 'POST', headers: { 'content-type': 'text/plain' } });
    expect(local.status).toBe(200);
    expect(((await local.json()) as { system_prompt: string | null }).system_prompt).toBeNull();
    expect(settingsOnDisk()).toBe(before);
  });

  it('refuses an <img>-style GET from another site, and a GET never loads a model', async () => {
    const image = await fetch(`${base}/v1/memory/status`, {
      headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' },
    });
    expect(image.status).toBe(403);
    const status = await fetch(`${base}/v1/memory/status`);
    expect(((await status.json()) as { embedding_model: string | null }).embedding_model).toBe('embedder');
    const settings = await fetch(`${base}/v1/memory/settings`);
    expect(settings.status).toBe(200);
    expect(((await (await fetch(`${base}/v1/models/loaded`)).json()) as { models: unknown[] }).models).toEqual([]);
  });

  it('sends nosniff, same-origin CORP, no framing and Vary: Origin, Swagger UI included', async () => {
    for (const route of ['/v1/health', '/swagger-ui/', '/api/tags']) {
      const response = await fetch(`${base}${route}`);
      expect([
        route,
        response.headers.get('x-content-type-options'),
        response.headers.get('cross-origin-resource-policy'),
        response.headers.get('x-frame-options'),
        response.headers.get('content-security-policy'),
      ]).toEqual([route, 'nosniff', 'same-origin', 'DENY', "frame-ancestors 'none'"]);
      expect(response.headers.get('vary')).toContain('Origin');
    }
  });
});

describe('files', () => {
  it('registers nothing outside the models folder and says nothing about the file', async () => {
    const registryFile = (): string => (existsSync(path.join(root, 'models.json')) ? readFileSync(path.join(root, 'models.json'), 'utf8') : '');
    const before = registryFile();
    const messages = new Set<string>();
    for (const candidate of ['/etc/passwd', '/etc/shadow', '/etc/no-such-file', '/proc/self/environ']) {
      const response = await fetch(`${base}/v1/models/register`, json({ path: candidate }));
      expect({ candidate, status: response.status }).toEqual({ candidate, status: 400 });
      messages.add(((await response.json()) as { detail: string }).detail);
    }
    expect([...messages]).toEqual(['Only a GGUF file or an ONNX model folder inside the models folder or a folder given with --model-dir can be registered']);
    expect(registryFile()).toBe(before);
  });

  it('keeps the data directory owner-only: the folder 0700, its files 0600', () => {
    expect((statSync(root).mode & 0o777).toString(8)).toBe('700');
    for (const name of ['tabagent.db', 'allowed-origins.json'])
      expect([name, (statSync(path.join(root, name)).mode & 0o777).toString(8)]).toEqual([name, '600']);
  });
});

describe('bounded work', () => {
  it('holds at most sequences + 64 requests per model and refuses the rest of 600 at once with 429 and Retry-After', async () => {
    let done = false;
    let peak = 0;
    // A function: TypeScript would keep `done` narrowed to false inside the loop.
    const finished = (): boolean => done;
    const watching = (async () => {
      while (!finished()) {
        const status = (await (await fetch(`${base}/v1/halt`)).json()) as { active_requests: number };
        peak = Math.max(peak, status.active_requests);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    // 600 is nine times the bound. (2,000 at once made some connections outlast the 10 s headers
    // timeout on a loaded 2-core CI machine, and the server rightly cut them.)
    const results = await Promise.all(
      Array.from({ length: 600 }, (_, index) =>
        fetch(
          `${base}/v1/chat/completions`,
          json({ model: 'tiny', messages: [{ role: 'user', content: `q${index}` }], max_tokens: 32, ignore_eos: true }),
        ).then(async (response) => ({ status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text() })),
      ),
    );
    done = true;
    await watching;
    const refused = results.filter((result) => result.status === 429);
    const served = results.filter((result) => result.status === 200);
    // 4 sequences run and 64 wait; nothing beyond that is ever held.
    expect(peak).toBeLessThanOrEqual(68);
    expect(refused.length + served.length).toBe(600);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((result) => result.retryAfter === '1' && result.body.includes('"code":"rate_limited"'))).toBe(true);
    expect(served.every((result) => result.body.includes('"finish_reason":"length"'))).toBe(true);
  }, 180_000);

  it('refuses a 5,000-level nested body with a 400 and stays responsive', async () => {
    const body = `{"model":"tiny","messages":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const response = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(400);
    expect((await fetch(`${base}/v1/health`)).status).toBe(200);
  });

  it('answers every POST route with a 4xx problem document for bodies that are not an object', async () => {
    // Ollama's /api/chat and /api/generate answer in Ollama's error shape (the Ollama client's tests).
    for (const route of routeList.filter((candidate) => candidate.method === 'POST' && candidate.dialect === undefined)) {
      const target = route.path.replace(/\{[^}]+\}/gu, 'x');
      for (const body of ['[]', '"text"', '42', '{"unterminated":', `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`]) {
        const response = await fetch(`${base}${target}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const problem = (await response.json()) as { code?: string; status?: number };
        expect({ route: route.id, body: body.slice(0, 12), status: response.status, isProblem: typeof problem.code === 'string' }).toEqual({
          route: route.id,
          body: body.slice(0, 12),
          status: 400,
          isProblem: true,
        });
      }
    }
  });
});

describe('generations belong to their caller', () => {
  it('does not let another caller stop a generation, and lets its own caller stop it', async () => {
    const streaming = fetch(
      `${base}/v1/chat/completions`,
      json({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], stream: true, ...longRun }, { 'x-request-id': 'mine-1', origin: extension }),
    );
    const response = await streaming;
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const other = await fetch(`${base}/v1/generation/stop`, json({ request_id: 'mine-1' }));
    expect(await other.json()).toEqual({ status: 'not_found', request_id: 'mine-1', stopped: 0 });
    // Another caller sees that one runs, not its id; its own caller sees the id.
    const status = (await (await fetch(`${base}/v1/halt`)).json()) as { active_requests: number; active_request_ids: string[] };
    expect([status.active_requests, status.active_request_ids]).toEqual([1, []]);
    const ownStatus = (await (await fetch(`${base}/v1/halt`, { headers: { origin: extension } })).json()) as { active_request_ids: string[] };
    expect(ownStatus.active_request_ids).toEqual(['mine-1']);
    // Another caller starting a generation under the same id does not take it over: the owner still stops its own.
    const squatter = await fetch(
      `${base}/v1/chat/completions`,
      json({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }, { 'x-request-id': 'mine-1' }),
    );
    expect(squatter.status).toBe(200);
    const own = await fetch(`${base}/v1/generation/stop`, json({ request_id: 'mine-1' }, { origin: extension }));
    expect(await own.json()).toEqual({ status: 'stopped', request_id: 'mine-1', stopped: 1 });
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read());
  }, 60_000);
});

describe('pairing', () => {
  it('lets the extension mint a scoped token over native messaging that opens the API to one web page, until revoked', async () => {
    const page = 'http://localhost:7777';
    const overHttp = await fetch(`${base}/v1/pairing`, json({ label: 'stolen', scope: 'full' }));
    expect(overHttp.status).toBe(403);
    const minted = (await server.provider.handle(
      'pairing.create',
      { label: 'side panel app', scope: 'chat', origin: page },
      { requestId: 'p1', signal: new AbortController().signal, transport: 'native-messaging', caller: { origin: extension } },
    )) as { id: string; token: string; scope: string };
    expect(minted).toMatchObject({ scope: 'chat', origin: page, token: expect.stringMatching(/^tap_[A-Za-z0-9_-]{43}$/u) });
    expect(readFileSync(path.join(root, 'pairings.json'), 'utf8')).not.toContain(minted.token);
    const bearer = { authorization: `Bearer ${minted.token}`, origin: page };
    const preflight = await fetch(`${base}/v1/models`, {
      method: 'OPTIONS',
      headers: { origin: page, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect([preflight.status, preflight.headers.get('access-control-allow-origin')]).toEqual([204, page]);
    // A paired page is not told where the user keeps files: the model's path is its last part only.
    const pathsOf = async (headers: Record<string, string>): Promise<string[]> =>
      ((await (await fetch(`${base}/v1/models`, { headers })).json()) as { data: { id: string; path: string }[] }).data
        .filter((model) => model.id === 'tiny')
        .map((model) => model.path);
    expect(await pathsOf(bearer)).toEqual(['tiny.gguf']);
    expect(await pathsOf({})).toEqual([path.join(root, 'models', 'tiny.gguf')]);
    const shown = await fetch(`${base}/api/show`, json({ model: 'tiny' }, bearer));
    expect(((await shown.json()) as { modelfile: string }).modelfile.split('\n')[1]).toBe('FROM tiny.gguf');
    expect((await fetch(`${base}/v1/models`, { headers: { origin: page } })).status).toBe(403);
    // The token works from the page it was minted for (and from a program, which sends no Origin), not from another site.
    const elsewhere = await fetch(`${base}/v1/models`, { headers: { ...bearer, origin: 'https://evil.example' } });
    expect([elsewhere.status, ((await elsewhere.json()) as { detail: string }).detail]).toEqual([
      403,
      `This pairing token was issued for ${page}; it does not work from "https://evil.example"`,
    ]);
    expect((await fetch(`${base}/v1/models`, { headers: { authorization: bearer.authorization } })).status).toBe(200);
    // A chat token does not open the memory: not its routes, not chat's memory option, not the metrics.
    const memory = await fetch(`${base}/v1/sync/pull`, json({}, bearer));
    expect([memory.status, ((await memory.json()) as { code: string }).code]).toEqual([403, 'forbidden']);
    const ask = { model: 'tiny', messages: [{ role: 'user', content: 'bank password reset' }], max_tokens: 2 };
    for (const stream of [false, true]) {
      const withMemory = await fetch(`${base}/v1/chat/completions`, json({ ...ask, stream, memory: { k: 50 } }, bearer));
      expect([stream, withMemory.status, await withMemory.json()]).toEqual([
        stream,
        403,
        expect.objectContaining({
          code: 'forbidden',
          detail: 'This pairing token is for chat only; the memory option reads saved memory and needs a token of scope "full"',
        }),
      ]);
    }
    expect((await fetch(`${base}/v1/chat/completions`, json(ask, bearer))).status).toBe(200);
    // Ollama's chat loads the model first, as a step of the chat: a chat token may (it answered 403).
    const ollamaChat = await fetch(`${base}/api/chat`, json({ model: 'tiny', messages: ask.messages, stream: false, options: { num_predict: 2 } }, bearer));
    expect([ollamaChat.status, ((await ollamaChat.json()) as { done: boolean }).done]).toEqual([200, true]);
    // Unloading takes the model from every caller, so keep_alive 0 stays a full token's.
    const unload = await fetch(`${base}/api/generate`, json({ model: 'tiny', keep_alive: 0 }, bearer));
    expect([unload.status, ((await unload.json()) as { error: string }).error]).toEqual([
      403,
      'This pairing token is for chat only; models.unload needs a token of scope "full"',
    ]);
    const metrics = await fetch(`${base}/metrics`, { headers: bearer });
    expect([metrics.status, ((await metrics.json()) as { detail: string }).detail]).toEqual([
      403,
      'This pairing token is for chat only; /metrics needs a token of scope "full"',
    ]);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    const revoked = await server.provider.handle(
      'pairing.revoke',
      { id: minted.id },
      { requestId: 'p2', signal: new AbortController().signal, transport: 'native-messaging', caller: {} },
    );
    expect(revoked).toEqual({ status: 'revoked', id: minted.id });
    expect((await fetch(`${base}/v1/models`, { headers: bearer })).status).toBe(401);
  });
});

describe('binding', () => {
  it('refuses to serve a LAN address without an API key, and takes the key from a file', async () => {
    const lan = mkdtempSync(path.join(tmpdir(), 'security-lan-'));
    try {
      await expect(
        startServer(parseServeArguments(['--host', '0.0.0.0', '--port', '0', '--data-dir', lan], {}), { logger: pino({ level: 'silent' }) }),
      ).rejects.toMatchObject({
        code: 'invalid_request',
        message: expect.stringContaining('Refusing to serve 0.0.0.0 without an API key'),
      });
      expect(existsSync(path.join(lan, 'tabagent.db'))).toBe(false);
      const keyFile = path.join(lan, 'key');
      writeFileSync(keyFile, 'sekret-key\n', { mode: 0o600 });
      const withKey = await startServer(
        parseServeArguments(['--host', '0.0.0.0', '--port', '0', '--data-dir', lan, '--api-key-file', keyFile, '--gpu', 'off'], {}),
        {
          logger: pino({ level: 'silent' }),
        },
      );
      try {
        const port = new URL(withKey.httpUrl as string).port;
        expect((await fetch(`http://127.0.0.1:${port}/v1/models`)).status).toBe(401);
        expect((await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: 'Bearer sekret-key' } })).status).toBe(200);
      } finally {
        await withKey.close();
      }
    } finally {
      rmSync(lan, { recursive: true, force: true });
    }
  }, 60_000);
});
