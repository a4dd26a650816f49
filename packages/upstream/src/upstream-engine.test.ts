import type { RegisteredModel } from '@tabagent/model-cache';
import type { ChatGenerationRequest, GenerationDelta, GenerationResult, GenerationRun } from '@tabagent/values';
import { TabAgentError } from '@tabagent/values';
import { resolveUpstreams, upstreamDefaults, type UpstreamMemberConfig } from './upstream-config.js';
import { createUpstreamEngine, type UpstreamEngine } from './upstream-engine.js';
import { startFakeUpstream, type FakeUpstream } from './test-support/fake-upstream.js';

const fakes: FakeUpstream[] = [];
const engines: UpstreamEngine[] = [];

afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function fake(...args: Parameters<typeof startFakeUpstream>): Promise<FakeUpstream> {
  const started = await startFakeUpstream(...args);
  fakes.push(started);
  return started;
}

function member(name: string, url: string, overrides: Partial<UpstreamMemberConfig> = {}): UpstreamMemberConfig {
  return {
    name,
    url,
    key: undefined,
    maxInFlight: upstreamDefaults.maxInFlight,
    connectTimeoutMs: 2000,
    firstByteTimeoutMs: 5000,
    idleTimeoutMs: 5000,
    cooldownMs: 60_000,
    maxResponseBytes: upstreamDefaults.maxResponseBytes,
    ...overrides,
  };
}

async function engineOf(...members: UpstreamMemberConfig[]): Promise<UpstreamEngine> {
  const engine = createUpstreamEngine({ members, refreshIntervalMs: 3_600_000 });
  engines.push(engine);
  await engine.refresh();
  return engine;
}

const ask = (text: string, extra: Partial<ChatGenerationRequest> = {}): ChatGenerationRequest => ({ messages: [{ role: 'user', content: text }], ...extra });

async function collect(run: GenerationRun<GenerationResult, GenerationDelta>): Promise<{ deltas: GenerationDelta[]; result: GenerationResult }> {
  const deltas: GenerationDelta[] = [];
  for await (const delta of run) deltas.push(delta);
  return { deltas, result: await run.result };
}

/** The error a promise rejects with (a test that expected a rejection fails when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<TabAgentError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!TabAgentError.isInstance(outcome)) throw new Error(`expected a TabAgentError, got ${String(outcome)}`);
  return outcome;
}

describe('upstream models in the registry', () => {
  it('lists each upstream model as NAME/MODEL, owned by NAME, and finds it by id', async () => {
    const one = await fake({ models: ['echo', 'big'] });
    const engine = await engineOf(member('gpu', one.url));
    const registry = engine.withModels({
      modelsDir: '/nowhere',
      list: async () => [],
      get: async (id: string) => {
        throw new Error(`local lookup of ${id}`);
      },
    } as unknown as Parameters<UpstreamEngine['withModels']>[0]);
    const listed = await registry.list();
    expect(listed.map((model) => [model.id, model.format, model.ownedBy, model.source, model.task])).toEqual([
      ['gpu/echo', 'upstream', 'gpu', 'upstream', 'text-generation'],
      ['gpu/big', 'upstream', 'gpu', 'upstream', 'text-generation'],
    ]);
    expect((await registry.get('gpu/big')).path).toBe(one.url);
    // A name of an upstream that the upstream does not serve: a clear 404 with what it serves, not a guess.
    const missing = await rejection(registry.get('gpu/nope'));
    expect([missing.code, missing.message]).toEqual(['model_not_found', 'Upstream gpu serves no model "nope"; it serves: echo, big']);
    // Anything else is the local registry's.
    await expect(registry.get('tiny')).rejects.toThrow('local lookup of tiny');
  });

  it('reads the list again on demand when a model appears later', async () => {
    const one = await fake({ models: ['echo'] });
    const engine = await engineOf(member('gpu', one.url));
    one.models = ['echo', 'new'];
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const registry = engine.withModels({ list: async () => [], get: async () => undefined } as unknown as Parameters<UpstreamEngine['withModels']>[0]);
    expect((await registry.get('gpu/new')).id).toBe('gpu/new');
  });
});

describe('generation on an upstream', () => {
  it('streams each chunk as it arrives and sends only the configured key', async () => {
    const one = await fake({ behaviour: { kind: 'gate' } });
    const engine = await engineOf(member('gpu', one.url, { key: 'sk-upstream-1' }));
    const generator = engine.backend.generator;
    if (generator === undefined) throw new Error('no generator');
    const run = generator.chat('gpu/echo', ask('alpha beta gamma', { maxTokens: 9, temperature: 0.5, stop: ['zz'] }));
    const iterator = run[Symbol.asyncIterator]();
    // The first word arrives while the upstream still holds the rest back.
    expect((await iterator.next()).value).toEqual({ kind: 'content', text: 'alpha' });
    expect(one.requests.at(-1)?.body).toMatchObject({
      model: 'echo',
      max_tokens: 9,
      temperature: 0.5,
      stop: ['zz'],
      stream: true,
      stream_options: { include_usage: true },
    });
    one.release();
    const rest: GenerationDelta[] = [];
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) rest.push(next.value);
    expect(rest).toEqual([
      { kind: 'content', text: ' beta' },
      { kind: 'content', text: ' gamma' },
    ]);
    const result = await run.result;
    expect(result).toMatchObject({ modelId: 'gpu/echo', text: 'alpha beta gamma', finishReason: 'stop', promptTokens: 7, completionTokens: 3 });
    const headers = one.requests.at(-1)?.headers ?? {};
    expect(headers['authorization']).toBe('Bearer sk-upstream-1');
    expect(headers['cookie']).toBeUndefined();
  });

  it('streams a tool call as its start and argument fragments', async () => {
    const one = await fake({ behaviour: { kind: 'tool-call' } });
    const engine = await engineOf(member('gpu', one.url));
    const { deltas, result } = await collect(
      engine.backend.generator?.chat(
        'gpu/echo',
        ask('find', { tools: [{ name: 'lookup', parameters: { type: 'object' } }], toolChoice: 'required' }),
      ) as GenerationRun<GenerationResult, GenerationDelta>,
    );
    expect(deltas).toEqual([
      { kind: 'tool-call-start', index: 0, id: 'call_fake', name: 'lookup' },
      { kind: 'tool-call-arguments', index: 0, text: '{"q":' },
      { kind: 'tool-call-arguments', index: 0, text: '"tab' },
      { kind: 'tool-call-arguments', index: 0, text: 'agent"}' },
    ]);
    expect([result.finishReason, result.toolCalls]).toEqual(['tool_calls', [{ id: 'call_fake', name: 'lookup', arguments: '{"q":"tabagent"}' }]]);
    expect(one.requests.at(-1)?.body).toMatchObject({ tools: [{ type: 'function', function: { name: 'lookup' } }], tool_choice: 'required' });
  });

  it('aborts the upstream request at once when the run is stopped', async () => {
    const one = await fake({ behaviour: { kind: 'gate' } });
    const engine = await engineOf(member('gpu', one.url));
    const controller = new AbortController();
    const run = engine.backend.generator?.chat('gpu/echo', ask('one two three', { signal: controller.signal })) as GenerationRun<
      GenerationResult,
      GenerationDelta
    >;
    const iterator = run[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const result = await run.result;
    expect([result.finishReason, result.text]).toEqual(['cancelled', 'one']);
    for (let waited = 0; one.abandoned === 0 && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(one.abandoned).toBe(1);
  });

  it('passes an upstream 400 on as the client error it is, with the upstream named', async () => {
    const one = await fake({ behaviour: { kind: 'status', status: 400, body: { error: { message: 'max_tokens is too large' } } } });
    const engine = await engineOf(member('gpu', one.url));
    const error = await rejection((engine.backend.generator?.chat('gpu/echo', ask('x')) as GenerationRun<GenerationResult, GenerationDelta>).result);
    expect([error.code, error.message]).toEqual(['invalid_request', `Upstream gpu (${one.url}): max_tokens is too large`]);
  });
});

describe('pools', () => {
  it('splits sequential requests between the members of a pool', async () => {
    const [a, b] = [await fake(), await fake()];
    const engine = await engineOf(member('pool', a.url), member('pool', b.url));
    for (let index = 0; index < 20; index += 1)
      await collect(engine.backend.generator?.chat('pool/echo', ask('hi')) as GenerationRun<GenerationResult, GenerationDelta>);
    const chats = (fake: FakeUpstream): number => fake.requests.filter((request) => request.path === '/chat/completions').length;
    expect([chats(a), chats(b)]).toEqual([10, 10]);
  });

  it('sends a request to the member with the fewest in flight', async () => {
    const [a, b] = [await fake({ behaviour: { kind: 'gate' } }), await fake({ behaviour: { kind: 'gate' } })];
    const engine = await engineOf(member('pool', a.url), member('pool', b.url));
    const runs = [0, 1, 2, 3].map(() => engine.backend.generator?.chat('pool/echo', ask('hold on')) as GenerationRun<GenerationResult, GenerationDelta>);
    for (let waited = 0; a.requests.length + b.requests.length < 6 && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    const inFlight = engine.status().upstreams[0]?.members.map((entry) => entry.in_flight);
    expect(inFlight).toEqual([2, 2]);
    a.release();
    b.release();
    await Promise.all(runs.map((run) => run.result));
  });

  it('retries a member that fails before the first byte on another, and cools it down', async () => {
    const [bad, good] = [await fake({ behaviour: { kind: 'status', status: 503 } }), await fake()];
    const engine = await engineOf(member('pool', bad.url), member('pool', good.url));
    for (let index = 0; index < 4; index += 1) {
      const { result } = await collect(engine.backend.generator?.chat('pool/echo', ask('still fine')) as GenerationRun<GenerationResult, GenerationDelta>);
      expect(result.text).toBe('still fine');
    }
    // The failing member was tried once, then skipped while it cools down.
    expect(bad.requests.filter((request) => request.path === '/chat/completions')).toHaveLength(1);
    const [badStatus] = engine.status().upstreams[0]?.members ?? [];
    expect(badStatus).toMatchObject({ state: 'cooling', failures: 1, last_error: `Upstream pool (${bad.url}) answered 503: fake failure 503` });
  });

  it('ends the stream with an error after the first byte, and does not retry', async () => {
    const [cut, good] = [await fake({ behaviour: { kind: 'cut', chunks: 1 } }), await fake()];
    const engine = await engineOf(member('pool', cut.url), member('pool', good.url));
    // Make the cutting member the first pick.
    const run = engine.backend.generator?.chat('pool/echo', ask('one two three')) as GenerationRun<GenerationResult, GenerationDelta>;
    const deltas: GenerationDelta[] = [];
    const failure = await (async () => {
      try {
        for await (const delta of run) deltas.push(delta);
        return undefined;
      } catch (error) {
        return error as TabAgentError;
      }
    })();
    expect(deltas).toEqual([{ kind: 'content', text: 'one' }]);
    expect([failure?.code, failure?.message]).toEqual(['upstream_error', `Upstream pool (${cut.url}): ${cut.url}/chat/completions was cut off (ECONNRESET)`]);
    expect(good.requests.filter((request) => request.path === '/chat/completions')).toHaveLength(0);
  });

  it('times out a slow first byte and a hung connection, trying the next member', async () => {
    const [slow, hung, good] = [await fake({ behaviour: { kind: 'slow', delayMs: 3000 } }), await fake({ behaviour: { kind: 'hang' } }), await fake()];
    const engine = await engineOf(...[slow, hung, good].map((one) => member('pool', one.url, { firstByteTimeoutMs: 300 })));
    const started = performance.now();
    const { result } = await collect(engine.backend.generator?.chat('pool/echo', ask('made it')) as GenerationRun<GenerationResult, GenerationDelta>);
    expect(result.text).toBe('made it');
    const elapsed = performance.now() - started;
    // Two timeouts of 300 ms, not the slow member's 3 s.
    expect(elapsed).toBeGreaterThanOrEqual(550);
    expect(elapsed).toBeLessThan(2500);
    expect(engine.status().upstreams[0]?.members.map((entry) => entry.state)).toEqual(['cooling', 'cooling', 'up']);
  });

  it('answers 502 naming the upstream when no member is reachable, then 503 while they cool down', async () => {
    const gone = await fake();
    const url = gone.url;
    await gone.close();
    fakes.splice(fakes.indexOf(gone), 1);
    const engine = createUpstreamEngine({ members: [member('far', url)], refreshIntervalMs: 3_600_000 });
    engines.push(engine);
    const first = await rejection((engine.backend.generator?.chat('far/echo', ask('x')) as GenerationRun<GenerationResult, GenerationDelta>).result);
    expect([first.code, first.message]).toEqual(['upstream_error', `Upstream far (${url}): ${url}: ECONNREFUSED`]);
    const second = await rejection((engine.backend.generator?.chat('far/echo', ask('x')) as GenerationRun<GenerationResult, GenerationDelta>).result);
    expect(second.code).toBe('busy');
    expect(second.message).toMatch(/^No member of upstream far is reachable \(Upstream far .*ECONNREFUSED\); the next is tried again in 60 s$/u);
  });

  it('refuses past the in-flight cap of every member (503)', async () => {
    const one = await fake({ behaviour: { kind: 'gate' } });
    const engine = await engineOf(member('gpu', one.url, { maxInFlight: 1 }));
    const first = engine.backend.generator?.chat('gpu/echo', ask('a b')) as GenerationRun<GenerationResult, GenerationDelta>;
    for (let waited = 0; one.requests.length < 2 && waited < 2000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    const refused = await rejection((engine.backend.generator?.chat('gpu/echo', ask('c')) as GenerationRun<GenerationResult, GenerationDelta>).result);
    expect([refused.code, refused.details?.['retry_after_seconds']]).toEqual(['busy', 1]);
    one.release();
    expect((await first.result).text).toBe('a b');
  });
});

describe('embeddings on an upstream', () => {
  it('gives normalised vectors in input order, with the width probed once', async () => {
    const one = await fake();
    const engine = await engineOf(member('gpu', one.url));
    const model = (await engine.withModels({ list: async () => [] } as unknown as Parameters<UpstreamEngine['withModels']>[0]).list())[0] as RegisteredModel;
    const embedder = await engine.backend.embedder?.(model);
    expect(embedder?.dimensions).toBe(3);
    const { vectors, tokenCounts } = (await embedder?.embed(['abc', 'abcdefgh'])) ?? { vectors: [], tokenCounts: [] };
    expect(vectors.map((vector) => [...vector].map((value) => Number(value.toFixed(4))))).toEqual([
      [0.9487, 0.3162, 0],
      [0.9923, 0.124, 0],
    ]);
    expect(tokenCounts.reduce((a, b) => a + b, 0)).toBe(4);
    await engine.backend.embedder?.(model);
    expect(one.requests.filter((request) => request.path === '/embeddings')).toHaveLength(2);
  });

  it('refuses an answer larger than the response cap', async () => {
    const one = await fake();
    const engine = await engineOf(member('gpu', one.url, { maxResponseBytes: 100 }));
    const model = (await engine.withModels({ list: async () => [] } as unknown as Parameters<UpstreamEngine['withModels']>[0]).list())[0] as RegisteredModel;
    const error = await rejection(engine.backend.embedder?.(model) as Promise<unknown>);
    expect(error.message).toBe(`Upstream gpu (${one.url}): ${one.url}/embeddings is larger than 100 bytes`);
  });
});

describe('upstream configuration', () => {
  const read = (files: Record<string, string>) => (file: string) => {
    const text = files[file];
    if (text === undefined) throw new Error('ENOENT');
    return text;
  };

  it('takes flags, upstreams.json and keys from files or the environment', () => {
    const config = resolveUpstreams({
      flags: ['gpu=http://gpu-box:8000/v1/', 'gpu=http://gpu-2:8000/v1'],
      keyFiles: ['gpu=/keys/gpu'],
      file: JSON.stringify({
        upstreams: [{ name: 'team', url: 'https://team.example/v1', key_env: 'TEAM_KEY', max_in_flight: 4, cooldown_ms: 5000 }],
        refresh_interval_ms: 30_000,
      }),
      env: { TEAM_KEY: 'team-secret', TABAGENT_UPSTREAM_KEY_OTHER: 'unused' },
      readFile: read({ '/keys/gpu': 'gpu-secret\n' }),
    });
    expect(config.refreshIntervalMs).toBe(30_000);
    expect(config.members.map((entry) => [entry.name, entry.url, entry.key, entry.maxInFlight, entry.cooldownMs])).toEqual([
      ['team', 'https://team.example/v1', 'team-secret', 4, 5000],
      ['gpu', 'http://gpu-box:8000/v1', 'gpu-secret', 32, 30_000],
      ['gpu', 'http://gpu-2:8000/v1', 'gpu-secret', 32, 30_000],
    ]);
    expect(
      resolveUpstreams({ flags: ['my-box=http://a/v1'], keyFiles: [], file: undefined, env: { TABAGENT_UPSTREAM_KEY_MY_BOX: 'k' }, readFile: read({}) })
        .members[0]?.key,
    ).toBe('k');
  });

  it.each([
    [['x=file:///etc/passwd'], 'only http and https are allowed'],
    [['x=http://user:pw@host/v1'], 'credentials in a URL would be logged'],
    [['x=http://host/v1?a=1'], 'it has a query or a fragment'],
    [['bad/name=http://host/v1'], 'an upstream name is 1 to 63 letters'],
    [['nourl'], '--upstream takes NAME=BASE_URL'],
  ])('refuses %j', (flags, message) => {
    expect(() => resolveUpstreams({ flags, keyFiles: [], file: undefined, env: {}, readFile: read({}) })).toThrow(message);
  });

  it('stops on a missing or empty key file, naming it', () => {
    const sources = { flags: ['gpu=http://h/v1'], file: undefined, env: {} };
    expect(() => resolveUpstreams({ ...sources, keyFiles: ['gpu=/missing'], readFile: read({}) })).toThrow(
      '--upstream-key-file gpu: the key file /missing cannot be read',
    );
    expect(() => resolveUpstreams({ ...sources, keyFiles: ['gpu=/empty'], readFile: read({ '/empty': '\n' }) })).toThrow('the key file /empty is empty');
    expect(() => resolveUpstreams({ ...sources, keyFiles: ['other=/k'], readFile: read({ '/k': 'k' }) })).toThrow('no upstream is named other');
  });
});
