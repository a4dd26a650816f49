import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { pino } from 'pino';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { parseServeArguments } from '../src/server-config.js';
import { startBanner, startServer, type RunningServer } from '../src/start-server.js';

// GET /metrics as Prometheus scrapes it (parsed with a Prometheus text parser, not string
// matching), and the request log: one line per request, never a body or a secret.
const apiKey = 'sk-local-metrics-test-key-0123456789';
const hfToken = 'hf_SecretTokenThatMustNeverBeLogged123';
const prompt = 'my private prompt about the quarterly numbers';
let root: string;
let server: RunningServer;
let base: string;
const logLines: Record<string, unknown>[] = [];
let rawLog = '';

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'metrics-'));
  mkdirSync(path.join(root, 'models'));
  writeTinyLlamaGguf(path.join(root, 'models', 'chat.gguf'), { chatTemplate: chatMlToolsTemplate });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString('utf8');
      rawLog += text;
      for (const line of text.split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = parseServeArguments(['--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off', '--api-key', apiKey], {});
  server = await startServer(config, { logger: pino({ level: 'info' }, sink) });
  base = server.httpUrl as string;
}, 60_000);

afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${apiKey}` };

async function scrape(): Promise<ParsedFamily[]> {
  const response = await fetch(`${base}/metrics`, { headers: auth });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusTextFormat(await response.text());
}

function family(families: ParsedFamily[], name: string): ParsedFamily {
  const found = families.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no metric family ${name}`);
  return found;
}

function valueOf(families: ParsedFamily[], name: string, labels: Record<string, string>): number {
  const metric = family(families, name).metrics.find((candidate) => Object.entries(labels).every(([key, value]) => candidate.labels?.[key] === value));
  return Number(metric?.value ?? Number.NaN);
}

describe('metrics and the request log', () => {
  it('counts requests by route, transport and status, and times generations per model', async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
    const usage: number[] = [];
    for (let n = 0; n < 2; n += 1) {
      const completion = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: prompt }], max_tokens: 4 });
      usage.push(completion.usage?.completion_tokens ?? 0);
    }
    const stream = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: prompt }], max_tokens: 4, stream: true });
    for await (const chunk of stream) expect(chunk.object).toBe('chat.completion.chunk');
    await expect(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404 });
    await server.provider.handle('health', {}, { requestId: 'n1', signal: new AbortController().signal, transport: 'native-messaging', caller: {} });

    const families = await scrape();
    expect(valueOf(families, 'tabagent_requests_total', { route: 'chat.completions', transport: 'http', status: '200' })).toBe(3);
    expect(valueOf(families, 'tabagent_requests_total', { route: 'chat.completions', transport: 'http', status: '404' })).toBe(1);
    expect(valueOf(families, 'tabagent_requests_total', { route: 'health', transport: 'native-messaging', status: '200' })).toBe(1);
    // This parser keeps only the buckets of a labelled histogram (one label set here): `+Inf` is its count.
    expect(family(families, 'tabagent_request_duration_seconds').type).toBe('HISTOGRAM');
    expect(family(families, 'tabagent_time_to_first_token_seconds').metrics).toEqual([
      expect.objectContaining({ buckets: expect.objectContaining({ '+Inf': '3' }) }),
    ]);
    expect(family(families, 'tabagent_decode_tokens_per_second').type).toBe('HISTOGRAM');
    expect(valueOf(families, 'tabagent_completion_tokens_total', { model: 'chat' })).toBeGreaterThanOrEqual(usage[0] ?? 0);
    expect(valueOf(families, 'tabagent_model_loaded', { model: 'chat', format: 'gguf' })).toBe(1);
    expect(valueOf(families, 'tabagent_model_memory_bytes', { model: 'chat' })).toBeGreaterThan(0);
    // Every generation has ended: none running, none waiting for a sequence.
    expect(valueOf(families, 'tabagent_model_queue_depth', { model: 'chat' })).toBe(0);
    expect(valueOf(families, 'tabagent_model_requests_running', { model: 'chat' })).toBe(0);
    expect(valueOf(families, 'tabagent_memory_queue_depth', {})).toBeGreaterThanOrEqual(0);
    expect(family(families, 'nodejs_eventloop_lag_p99_seconds').type).toBe('GAUGE');
    // The delay alone, not the 20 ms period of the timer that measures it: a test server is far from blocked for 20 ms at the median.
    expect(valueOf(families, 'tabagent_event_loop_delay_seconds', { quantile: '0.5' })).toBeLessThan(0.02);
    expect(valueOf(families, 'tabagent_event_loop_delay_seconds', { quantile: '1' })).toBeGreaterThanOrEqual(
      valueOf(families, 'tabagent_event_loop_delay_seconds', { quantile: '0.99' }),
    );
    const utilization = valueOf(families, 'tabagent_event_loop_utilization', {});
    expect(utilization).toBeGreaterThan(0);
    expect(utilization).toBeLessThanOrEqual(1);
    expect(family(families, 'process_resident_memory_bytes').type).toBe('GAUGE');
  });

  it('counts and logs an Ollama chat once, as ollama.chat (no models.load or chat.completions beside it), streamed or not', async () => {
    const count = (families: ParsedFamily[], route: string): number =>
      valueOf(families, 'tabagent_requests_total', { route, transport: 'http', status: '200' }) || 0;
    const before = await scrape();
    const linesBefore = logLines.length;
    for (const stream of [false, true]) {
      const response = await fetch(`${base}/api/chat`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream, options: { num_predict: 2 } }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(stream ? 'application/x-ndjson' : 'application/json; charset=utf-8');
      const lines = (await response.text()).trim().split('\n');
      expect(lines).toHaveLength(stream ? 3 : 1);
      expect(JSON.parse(lines[lines.length - 1] ?? '{}')).toMatchObject({ model: 'chat', done: true, eval_count: 2 });
    }
    const after = await scrape();
    expect(['ollama.chat', 'models.load', 'chat.completions'].map((route) => count(after, route) - count(before, route))).toEqual([2, 0, 0]);
    const requestLines = logLines.slice(linesBefore).filter((line) => line['msg'] === 'request');
    expect(requestLines.map((line) => [line['route'], line['status']])).toEqual([
      ['ollama.chat', 200],
      ['ollama.chat', 200],
    ]);
  });

  it("serves the extension's legacy generate as one operation with its setting names and stats", async () => {
    const count = (families: ParsedFamily[], route: string): number =>
      valueOf(families, 'tabagent_requests_total', { route, transport: 'http', status: '200' }) || 0;
    const before = await scrape();
    const response = await fetch(`${base}/v1/legacy/generate`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], settings: { max_new_tokens: 3, do_sample: true } }),
    });
    expect(response.status).toBe(200);
    const reply = (await response.json()) as { text: unknown; stats: Record<string, number>; usage: { completion_tokens: number }; model: string };
    expect(typeof reply.text).toBe('string');
    expect(reply.model).toBe('chat');
    expect(reply.stats['output_tokens']).toBe(reply.usage.completion_tokens);
    expect(reply.stats['total_time']).toBeGreaterThan(0);
    const after = await scrape();
    expect(['legacy.generate', 'chat.completions', 'stats.get'].map((route) => count(after, route) - count(before, route))).toEqual([1, 0, 0]);
  });

  it('keeps /metrics behind the same guard as every route', async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { ...auth, origin: 'https://evil.example' } })).status).toBe(403);
  });

  it('counts requests refused before any handler: malformed JSON, wrong types, no key, unknown paths, Ollama bodies', async () => {
    const refused = (families: ParsedFamily[], route: string, status: string): number =>
      valueOf(families, 'tabagent_requests_total', { route, transport: 'http', status }) || 0;
    const before = await scrape();
    const post = (url: string, body: string, headers: Record<string, string> = auth): Promise<Response> =>
      fetch(`${base}${url}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
    expect((await post('/v1/chat/completions', '{"model": "chat", "messages": [')).status).toBe(400);
    expect((await post('/v1/chat/completions', JSON.stringify({ model: 'chat', messages: 'not a list' }))).status).toBe(400);
    expect((await post('/v1/chat/completions', JSON.stringify({ model: 'chat', messages: [] }), {})).status).toBe(401);
    expect((await fetch(`${base}/v1/no-such-route`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${base}/v1/no-such-route`)).status).toBe(401);
    expect((await fetch(`${base}/v1/conversations/c-1`, { headers: { origin: 'https://evil.example', ...auth } })).status).toBe(403);
    expect((await post('/api/chat', '{"model": ')).status).toBe(400);
    const after = await scrape();
    expect(refused(after, 'chat.completions', '400') - refused(before, 'chat.completions', '400')).toBe(2);
    // The guard's refusals of a catalogue route are counted by its id; of an unknown path, as unmatched.
    expect(refused(after, 'chat.completions', '401') - refused(before, 'chat.completions', '401')).toBe(1);
    expect(refused(after, 'conversations.get', '403') - refused(before, 'conversations.get', '403')).toBe(1);
    expect(refused(after, 'unmatched', '401') - refused(before, 'unmatched', '401')).toBe(1);
    expect(refused(after, 'unmatched', '404') - refused(before, 'unmatched', '404')).toBe(1);
    expect(refused(after, 'ollama /api/chat', '400') - refused(before, 'ollama /api/chat', '400')).toBe(1);
    // A request the provider answered is counted once, by the provider, not again as a refusal.
    expect(refused(after, 'chat.completions', '404') - refused(before, 'chat.completions', '404')).toBe(0);
    expect(logLines.filter((line) => line.msg === 'request refused' && line.route === 'chat.completions').map((line) => line.status)).toEqual([400, 400, 401]);
  });

  it('logs one line per request with route, transport, status, duration and id, and never a body or secret', async () => {
    const set = await fetch(`${base}/v1/hf/token`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ token: hfToken }),
    });
    expect(set.status).toBe(200);
    const requestLines = logLines.filter((line) => line.msg === 'request');
    expect(requestLines.find((line) => line.route === 'hf.token.set')).toEqual(
      expect.objectContaining({
        level: 30,
        route: 'hf.token.set',
        transport: 'http',
        status: 200,
        duration_ms: expect.any(Number),
        request_id: expect.any(String),
      }),
    );
    expect(requestLines.filter((line) => line.route === 'chat.completions').map((line) => line.status)).toEqual([200, 200, 200, 404]);
    for (const secret of [apiKey, hfToken, prompt]) expect(rawLog).not.toContain(secret);
  });
});

describe('Ollama options this server does not use', () => {
  it('names at most 64 short ones in the log, once each, and counts the rest', async () => {
    const chat = (options: Record<string, number>) =>
      fetch(`${base}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 1, ...options } }),
      });
    const longName = 'x'.repeat(10_000);
    const warnings = () => logLines.filter((line) => line['msg'] === 'Ollama options not used by this server were ignored');
    const before = warnings().length;
    // 100 short names at once, one 10,000-character name, then the same again.
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, index) => [`unknown_${index}`, 1]));
    for (const options of [
      { ...many, [longName]: 1 },
      { ...many, [longName]: 1 },
    ])
      expect((await chat(options)).status).toBe(200);
    const logged = warnings()
      .slice(before)
      .map((line) => [line['options'], line['unnamed']]);
    // The first request names the first 64 (each once for the process) and counts 36 short ones and the long one.
    expect(logged).toEqual([
      [Object.keys(many).slice(0, 64), 37],
      [[], 37],
    ]);
    expect(rawLog).not.toContain(longName);
  });
});

describe('the start banner', () => {
  it('says what runs where and what to do next', () => {
    const http = {
      version: '1.2.3',
      url: 'http://127.0.0.1:8080',
      dataDir: '/home/u/.tabagent',
      models: 0,
      nativeHostOrigins: 0,
      metrics: true,
      swaggerUi: true,
    };
    expect(startBanner({ ...http, access: { kind: 'open' } })).toBe(
      [
        'TabAgent Server 1.2.3',
        '  API       http://127.0.0.1:8080/v1   (OpenAI and Ollama clients: http://127.0.0.1:8080)',
        '  Docs      http://127.0.0.1:8080/swagger-ui/',
        '  Metrics   http://127.0.0.1:8080/metrics',
        '  Data      /home/u/.tabagent',
        '  Access    open to every program of every account on this machine (no key); --auth owner requires a key only you can read',
        '  Models    none yet: tabagent pull hf.co/<owner>/<repo>, or drop a .gguf into the models folder',
        '  Extension native host not installed: tabagent install-native-host --extension-id <id>',
        '',
      ].join('\n'),
    );
    const accessOf = (access: Parameters<typeof startBanner>[0]['access']): string | undefined =>
      startBanner({ ...http, access })
        .split('\n')
        .find((line) => line.startsWith('  Access'));
    expect(accessOf({ kind: 'owner', keyFile: '/home/u/.tabagent/owner.key' })).toBe(
      '  Access    owner only: send Authorization: Bearer <key in /home/u/.tabagent/owner.key> (tabagent key prints it); the extension pairs over native messaging',
    );
    expect(accessOf({ kind: 'key' })).toBe('  Access    API key required: send Authorization: Bearer <key>');
    expect(
      startBanner({ ...http, swaggerUi: false, access: { kind: 'open' } })
        .split('\n')
        .find((line) => line.startsWith('  Docs')),
    ).toBe('  Docs      http://127.0.0.1:8080/api-doc/openapi.json   (Swagger UI: --swagger-ui on)');
    expect(
      startBanner({
        version: '1.2.3',
        url: undefined,
        dataDir: '/d',
        models: 2,
        nativeHostOrigins: 1,
        metrics: false,
        swaggerUi: false,
        access: { kind: 'open' },
      }),
    ).toBe(
      [
        'TabAgent Server 1.2.3',
        '  HTTP      not listening (native messaging only)',
        '  Data      /d',
        '  Models    2 found',
        '  Extension native host installed for 1 extension(s)',
        '',
      ].join('\n'),
    );
  });
});
