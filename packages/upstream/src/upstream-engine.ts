import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { LoadedModelView, ModelBackend, ModelRegistry, RegisteredModel, TextGenerator } from '@tabagent/model-cache';
import {
  BusyError,
  GenerationRunController,
  InvalidRequestError,
  ModelNotFoundError,
  NotImplementedError,
  PayloadTooLargeError,
  type TabAgentError,
  UpstreamError,
  type GenerationDelta,
  type GenerationRequestBase,
  type GenerationResult,
  type GenerationRun,
  type Logger,
  type RouteResponse,
  type TextEmbedder,
} from '@tabagent/values';
import { OpenAiStreamDecoder, UpstreamStreamError, openAiChatBodyOf, openAiCompletionBodyOf } from './openai-wire.js';
import type { UpstreamMemberConfig, UpstreamsConfig } from './upstream-config.js';
import { UpstreamFailure, errorMessageOf, memberAgent, openUpstream, readUpstreamBody, sseDataOf } from './upstream-http.js';

/** `GET /v1/upstreams`: every upstream, its models and each member's state. */
export type UpstreamsStatus = RouteResponse<'upstreams.list'>;
type MemberStatus = UpstreamsStatus['upstreams'][number]['members'][number];
type ModelTask = RegisteredModel['task'];

/** A model as a member's `GET /models` lists it. */
interface RemoteModel {
  id: string;
  created: number;
  task: ModelTask;
  details: RegisteredModel['details'];
}

const tasks: readonly ModelTask[] = ['text-generation', 'embedding', 'rerank', 'token-classification'];
const noDetails: RegisteredModel['details'] = {
  architecture: null,
  parameters: null,
  context_length: null,
  quantization: null,
  embedding_length: null,
  has_chat_template: null,
};
/** A model list or an error body is small; a member that sends more is broken. */
const smallBodyBytes = 4 * 1024 * 1024;
/** An unknown model name refreshes its upstream's list at most this often. */
const onDemandRefreshMs = 2000;

/** One base URL of an upstream: its connections, what it serves and how it has been doing. */
class Member {
  readonly agent: http.Agent;
  inFlight = 0;
  requests = 0;
  failures = 0;
  /** Null until a model list was read. */
  models: Map<string, RemoteModel> | null = null;
  /** Null until contacted; then whether the last contact worked. */
  healthy: boolean | null = null;
  lastError: string | null = null;
  lastErrorAt: number | null = null;
  lastRefreshAt: number | null = null;
  cooldownUntil = 0;
  refreshing: Promise<void> | undefined;

  constructor(readonly config: UpstreamMemberConfig) {
    this.agent = memberAgent(config);
  }

  state(now: number): MemberStatus['state'] {
    if (this.cooldownUntil > now) return 'cooling';
    return this.healthy === null ? 'unknown' : this.healthy ? 'up' : 'down';
  }

  failed(message: string, coolDown: boolean): void {
    this.failures += 1;
    this.healthy = false;
    this.lastError = message;
    this.lastErrorAt = Date.now();
    if (coolDown) this.cooldownUntil = Date.now() + this.config.cooldownMs;
  }
}

/** The members under one name. */
class Pool {
  readonly members: Member[] = [];
  private turn = 0;
  lastRefreshAt = 0;

  constructor(readonly name: string) {}

  /** The model as its first listing member describes it. */
  model(id: string): RemoteModel | undefined {
    for (const member of this.members) {
      const found = member.models?.get(id);
      if (found) return found;
    }
    return undefined;
  }

  models(): RemoteModel[] {
    const byId = new Map<string, RemoteModel>();
    for (const member of this.members) for (const [id, model] of member.models ?? []) if (!byId.has(id)) byId.set(id, model);
    return [...byId.values()];
  }

  /**
   * The member for the next attempt: among those not tried yet, not cooling down and under their
   * in-flight cap, the ones that list the model (healthy first), then those whose list is unknown;
   * the fewest in flight wins, ties in turn (so sequential requests alternate).
   */
  pick(model: string, tried: ReadonlySet<Member>, lastError: TabAgentError | undefined): Member {
    const now = Date.now();
    const open = this.members.filter((member) => !tried.has(member) && member.cooldownUntil <= now);
    const rank = (member: Member): number => {
      if (member.models === null) return 2;
      if (!member.models.has(model)) return member.healthy === false ? 3 : Number.POSITIVE_INFINITY;
      return member.healthy === false ? 1 : 0;
    };
    const candidates = open.filter((member) => member.inFlight < member.config.maxInFlight && rank(member) !== Number.POSITIVE_INFINITY);
    if (candidates.length === 0) throw this.noMember(model, open, lastError, now);
    const start = this.turn++ % this.members.length;
    const order = (member: Member): number => (this.members.indexOf(member) - start + this.members.length) % this.members.length;
    candidates.sort((a, b) => rank(a) - rank(b) || a.inFlight - b.inFlight || order(a) - order(b));
    return candidates[0] as Member;
  }

  private noMember(model: string, open: Member[], lastError: TabAgentError | undefined, now: number): TabAgentError {
    if (lastError !== undefined) return lastError;
    const details = { upstream: this.name, model };
    if (open.some((member) => member.inFlight >= member.config.maxInFlight)) {
      return new BusyError(`Upstream ${this.name} has as many requests in flight as its members allow; try again shortly`, {
        details: { ...details, retry_after_seconds: 1 },
      });
    }
    const cooling = this.members.filter((member) => member.cooldownUntil > now);
    if (cooling.length > 0) {
      const wait = Math.min(...cooling.map((member) => member.cooldownUntil - now));
      const last = cooling.find((member) => member.lastError !== null)?.lastError ?? 'it failed';
      return new BusyError(`No member of upstream ${this.name} is reachable (${last}); the next is tried again in ${Math.ceil(wait / 1000)} s`, {
        details: { ...details, retry_after_seconds: wait / 1000 },
      });
    }
    return new ModelNotFoundError(
      `Upstream ${this.name} serves no model "${model}"; it serves: ${
        this.models()
          .map((entry) => entry.id)
          .join(', ') || 'nothing'
      }`,
      {
        details,
      },
    );
  }
}

/** What the server composes: a model backend, the registry's view of upstream models, their status. */
export interface UpstreamEngine {
  /** The `upstream` format's backend: generation and embeddings on the members. */
  readonly backend: ModelBackend;
  /** The registry with every upstream model added as `NAME/MODEL` (listed, found by id). */
  withModels(registry: ModelRegistry): ModelRegistry;
  status(): UpstreamsStatus;
  /** Reads every member's model list again (or only those of one upstream). */
  refresh(name?: string): Promise<UpstreamsStatus>;
  /** Reads the model lists now and then every `refreshIntervalMs`. */
  start(): void;
  close(): Promise<void>;
}

/** The format of upstream models in the registry and `models.list`. */
export const upstreamFormat = 'upstream';

function remoteModelsOf(body: string, url: string): Map<string, RemoteModel> {
  const parsed = JSON.parse(body) as { data?: unknown; models?: unknown };
  const entries = Array.isArray(parsed.data) ? parsed.data : Array.isArray(parsed.models) ? parsed.models : undefined;
  if (entries === undefined) throw new UpstreamFailure(`${url}/models is not a model list`, 'body');
  const models = new Map<string, RemoteModel>();
  for (const entry of entries as Array<Record<string, unknown>>) {
    const id = typeof entry['id'] === 'string' ? entry['id'] : typeof entry['name'] === 'string' ? entry['name'] : undefined;
    if (id === undefined || id === '' || id.length > 512) continue;
    const task = tasks.find((known) => known === entry['task']) ?? 'text-generation';
    const details = typeof entry['details'] === 'object' && entry['details'] !== null ? (entry['details'] as Record<string, unknown>) : {};
    const numberOrNull = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);
    models.set(id, {
      id,
      created: numberOrNull(entry['created']) ?? Math.floor(Date.now() / 1000),
      task,
      details: {
        ...noDetails,
        architecture: typeof details['architecture'] === 'string' ? details['architecture'] : null,
        context_length: numberOrNull(details['context_length']) ?? numberOrNull(entry['max_model_len']),
        embedding_length: numberOrNull(details['embedding_length']),
        quantization: typeof details['quantization'] === 'string' ? details['quantization'] : null,
      },
    });
  }
  return models;
}

/** A call id for an upstream that sent a tool call without one. */
const newCallId = (): string => `call_${randomBytes(12).toString('hex')}`;

/** L2-normalised, as the `TextEmbedder` contract promises. */
function normalised(values: readonly number[]): Float32Array {
  const vector = Float32Array.from(values);
  let squares = 0;
  for (const value of vector) squares += value * value;
  const norm = Math.sqrt(squares);
  if (norm > 0) for (let index = 0; index < vector.length; index += 1) vector[index] = (vector[index] as number) / norm;
  return vector;
}

/** The upstream's total token count over the inputs, by length (OpenAI's embeddings usage has no per-input counts). */
function apportion(total: number, texts: readonly string[]): number[] {
  const lengths = texts.map((text) => Math.max(1, text.length));
  const sum = lengths.reduce((a, b) => a + b, 0);
  const counts = lengths.map((length) => Math.floor((total * length) / sum));
  let rest = total - counts.reduce((a, b) => a + b, 0);
  for (let index = 0; rest > 0; index = (index + 1) % counts.length, rest -= 1) counts[index] = (counts[index] as number) + 1;
  return counts;
}

/**
 * vLLM, llama.cpp's `llama-server`, Ollama and other TabAgent servers as engines, over their
 * OpenAI-compatible API. A request for `NAME/MODEL` goes to a member of NAME: the least busy,
 * skipping members cooling down after a failure; a member that fails before anything was passed on
 * is cooled down and the next is tried; after the first token a failure ends the stream with an
 * error and nothing is retried. Every call is bounded (connection, headers, silences, sizes).
 */
export function createUpstreamEngine(config: UpstreamsConfig, options: { logger?: Pick<Logger, 'warn' | 'info'> } = {}): UpstreamEngine {
  const pools = new Map<string, Pool>();
  for (const memberConfig of config.members) {
    let pool = pools.get(memberConfig.name);
    if (pool === undefined) {
      pool = new Pool(memberConfig.name);
      pools.set(memberConfig.name, pool);
    }
    pool.members.push(new Member(memberConfig));
  }
  let timer: NodeJS.Timeout | undefined;
  const dimensionsByModel = new Map<string, Promise<number>>();

  /** The pool and the upstream's own model id of `NAME/MODEL`; undefined when NAME is no upstream. */
  const locate = (id: string): { pool: Pool; model: string } | undefined => {
    const slash = id.indexOf('/');
    if (slash <= 0) return undefined;
    const pool = pools.get(id.slice(0, slash));
    return pool === undefined ? undefined : { pool, model: id.slice(slash + 1) };
  };
  const located = (id: string): { pool: Pool; model: string } => {
    const found = locate(id);
    if (found === undefined) throw new ModelNotFoundError(`No upstream serves "${id}"`);
    return found;
  };

  const refreshMember = (member: Member): Promise<void> => {
    member.refreshing ??= (async () => {
      try {
        const response = await openUpstream(member.config, member.agent, { method: 'GET', path: '/models' });
        const body = await readUpstreamBody(
          response,
          { idleTimeoutMs: member.config.idleTimeoutMs, maxBytes: Math.min(member.config.maxResponseBytes, smallBodyBytes) },
          `${member.config.url}/models`,
        );
        if (response.statusCode !== 200)
          throw new UpstreamFailure(`${member.config.url}/models answered ${response.statusCode}: ${errorMessageOf(body) ?? ''}`, 'status');
        member.models = remoteModelsOf(body, member.config.url);
        member.healthy = true;
        member.lastRefreshAt = Date.now();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        member.failed(message, false);
        options.logger?.warn({ upstream: member.config.name, url: member.config.url, error: message }, 'An upstream could not list its models');
      } finally {
        member.refreshing = undefined;
      }
    })();
    return member.refreshing;
  };
  const refreshPool = async (pool: Pool): Promise<void> => {
    pool.lastRefreshAt = Date.now();
    await Promise.all(pool.members.map(refreshMember));
  };

  const registeredModel = (pool: Pool, model: RemoteModel | undefined, modelId: string): RegisteredModel => ({
    id: `${pool.name}/${modelId}`,
    format: upstreamFormat,
    task: model?.task ?? 'text-generation',
    path: pool.members.map((member) => member.config.url).join(' '),
    sizeBytes: 0,
    created: model?.created ?? Math.floor(Date.now() / 1000),
    details: model?.details ?? noDetails,
    source: 'upstream',
    ownedBy: pool.name,
    settings: {},
  });

  /**
   * The upstream model an id names: listed, or listed after a refresh; when no member could list
   * anything yet, the request goes ahead (and fails with the member's own error, naming it).
   */
  const lookup = async (id: string): Promise<RegisteredModel | undefined> => {
    const found = locate(id);
    if (found === undefined) return undefined;
    const { pool, model } = found;
    let known = pool.model(model);
    if (known === undefined) {
      // A list being read now (the one at start) is awaited rather than read twice.
      await Promise.all(pool.members.flatMap((member) => (member.refreshing === undefined ? [] : [member.refreshing])));
      known = pool.model(model);
    }
    if (known === undefined && Date.now() - pool.lastRefreshAt >= onDemandRefreshMs) {
      await refreshPool(pool);
      known = pool.model(model);
    }
    if (known === undefined && pool.members.some((member) => member.models !== null)) {
      throw new ModelNotFoundError(
        `Upstream ${pool.name} serves no model "${model}"; it serves: ${
          pool
            .models()
            .map((entry) => entry.id)
            .join(', ') || 'nothing'
        }`,
        {
          details: { upstream: pool.name, model },
        },
      );
    }
    return registeredModel(pool, known, model);
  };

  /** What a member's failure means for the client, and whether another member may take the request. */
  const classify = (member: Member, error: unknown): { error: TabAgentError; retry: boolean; coolDown: boolean } => {
    const name = member.config.name;
    const where = `Upstream ${name} (${member.config.url})`;
    const details = { upstream: name };
    if (error instanceof UpstreamStreamError) return { error: new UpstreamError(`${where}: ${error.message}`, { details }), retry: false, coolDown: false };
    if (error instanceof SyntaxError) return { error: new UpstreamError(`${where} sent an event that is not JSON`, { details }), retry: true, coolDown: true };
    if (!(error instanceof UpstreamFailure))
      return { error: new UpstreamError(`${where} failed: ${(error as Error).message}`, { details, cause: error }), retry: true, coolDown: true };
    if (error.phase !== 'status') return { error: new UpstreamError(`${where}: ${error.message}`, { details }), retry: true, coolDown: true };
    const status = error.status ?? 0;
    const said = error.upstreamMessage ?? `status ${status}`;
    if (status === 400 || status === 422) return { error: new InvalidRequestError(`${where}: ${said}`, { details }), retry: false, coolDown: false };
    if (status === 404) return { error: new ModelNotFoundError(`${where}: ${said}`, { details }), retry: false, coolDown: false };
    if (status === 413) return { error: new PayloadTooLargeError(`${where}: ${said}`, { details }), retry: false, coolDown: false };
    // A refused key is this server's configuration, not the client's credentials: 502, never 401.
    if (status === 401 || status === 403)
      return { error: new UpstreamError(`${where} refused this server's key (${status}): ${said}`, { details }), retry: true, coolDown: true };
    if (status === 429 || status >= 500)
      return { error: new UpstreamError(`${where} answered ${status}: ${said}`, { details }), retry: status !== 501, coolDown: status !== 501 };
    return { error: new UpstreamError(`${where} answered ${status}: ${said}`, { details }), retry: false, coolDown: false };
  };

  /**
   * Runs one call on the members of a pool: the picked member, then (when it failed before anything
   * was passed on) the next, until one answers or none is left.
   */
  const dispatch = async <T>(
    pool: Pool,
    model: string,
    signal: AbortSignal | undefined,
    attempt: (member: Member, progress: { forwarded: boolean }) => Promise<T>,
  ): Promise<T> => {
    const tried = new Set<Member>();
    let lastError: TabAgentError | undefined;
    for (;;) {
      const member = pool.pick(model, tried, tried.size > 0 ? lastError : undefined);
      tried.add(member);
      member.inFlight += 1;
      member.requests += 1;
      const progress = { forwarded: false };
      try {
        const value = await attempt(member, progress);
        member.healthy = true;
        return value;
      } catch (error) {
        if (signal?.aborted === true) throw error;
        const failure = classify(member, error);
        if (failure.retry || failure.coolDown) member.failed(failure.error.message, failure.coolDown);
        options.logger?.warn(
          { upstream: pool.name, url: member.config.url, error: failure.error.message, retried: failure.retry && !progress.forwarded },
          'An upstream call failed',
        );
        lastError = failure.error;
        if (!failure.retry || progress.forwarded) throw failure.error;
      } finally {
        member.inFlight -= 1;
      }
    }
  };

  const errorBodyOf = async (member: Member, response: http.IncomingMessage, path: string): Promise<UpstreamFailure> => {
    let body = '';
    try {
      body = await readUpstreamBody(response, { idleTimeoutMs: member.config.idleTimeoutMs, maxBytes: smallBodyBytes }, `${member.config.url}${path}`);
    } catch (error) {
      body = (error as Error).message;
    }
    return new UpstreamFailure(`${member.config.url}${path} answered ${response.statusCode}`, 'status', response.statusCode, errorMessageOf(body));
  };

  /** A streamed chat or completion on the pool, as the contract's run. */
  const stream = (modelId: string, path: '/chat/completions' | '/completions', bodyOf: (model: string) => unknown, request: GenerationRequestBase) =>
    new GenerationRunController<GenerationResult, GenerationDelta>(async (push) => {
      const started = performance.now();
      const { pool, model } = located(modelId);
      const signal = request.signal;
      const body = bodyOf(model);
      return dispatch(pool, model, signal, async (member, progress) => {
        const decoder = new OpenAiStreamDecoder(newCallId);
        let firstTokenAt: number | null = null;
        const resultOf = (cancelled: boolean): GenerationResult => {
          const decoded = decoder.result(cancelled);
          const ended = performance.now();
          const decodeSeconds = firstTokenAt === null ? 0 : (ended - firstTokenAt) / 1000;
          return {
            modelId,
            ...decoded,
            timeToFirstTokenMs: firstTokenAt === null ? null : firstTokenAt - started,
            tokensPerSecond: decoded.completionTokens > 1 && decodeSeconds > 0 ? (decoded.completionTokens - 1) / decodeSeconds : null,
            totalTimeMs: ended - started,
          };
        };
        try {
          const response = await openUpstream(member.config, member.agent, { method: 'POST', path, body, signal, accept: 'text/event-stream' });
          if (response.statusCode !== 200) throw await errorBodyOf(member, response, path);
          const limits = { idleTimeoutMs: member.config.idleTimeoutMs, maxBytes: member.config.maxResponseBytes };
          for await (const data of sseDataOf(response, limits, `${member.config.url}${path}`)) {
            for (const delta of decoder.push(data)) {
              firstTokenAt ??= performance.now();
              progress.forwarded = true;
              push(delta);
            }
            if (decoder.done) break;
          }
          if (!decoder.finished) throw new UpstreamFailure(`the stream of ${member.config.url}${path} ended before its last event`, 'body');
          return resultOf(false);
        } catch (error) {
          // A stop or a client gone: what came so far, as a cancelled generation.
          if (signal?.aborted === true) return resultOf(true);
          throw error;
        }
      });
    });

  const generator: TextGenerator = {
    chat: (modelId, request): GenerationRun<GenerationResult, GenerationDelta> =>
      stream(modelId, '/chat/completions', (model) => openAiChatBodyOf(model, request), request),
    complete: (modelId, request): GenerationRun<GenerationResult, GenerationDelta> =>
      stream(modelId, '/completions', (model) => openAiCompletionBodyOf(model, request), request),
    countChatTokens: async (modelId) => {
      throw new NotImplementedError(`Counting tokens is not available for ${modelId}: it is served by an upstream, which has no token-counting API in common`, {
        details: { capability: 'upstream-token-count', model: modelId },
      });
    },
  };

  /** One `POST /embeddings` on the pool, vectors in input order. */
  const embedOn = async (modelId: string, texts: readonly string[], signal: AbortSignal | undefined): Promise<{ vectors: Float32Array[]; total: number }> => {
    const { pool, model } = located(modelId);
    return dispatch(pool, model, signal, async (member) => {
      const response = await openUpstream(member.config, member.agent, {
        method: 'POST',
        path: '/embeddings',
        body: { model, input: texts, encoding_format: 'float' },
        signal,
      });
      if (response.statusCode !== 200) throw await errorBodyOf(member, response, '/embeddings');
      const text = await readUpstreamBody(
        response,
        { idleTimeoutMs: member.config.idleTimeoutMs, maxBytes: member.config.maxResponseBytes },
        `${member.config.url}/embeddings`,
      );
      const parsed = JSON.parse(text) as { data?: Array<{ index?: number; embedding?: unknown }>; usage?: { prompt_tokens?: number; total_tokens?: number } };
      const data = [...(parsed.data ?? [])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
      if (
        data.length !== texts.length ||
        data.some((entry) => !Array.isArray(entry.embedding) || !(entry.embedding as unknown[]).every((value) => typeof value === 'number'))
      ) {
        throw new UpstreamFailure(`${member.config.url}/embeddings did not answer one vector of numbers per input`, 'body');
      }
      return {
        vectors: data.map((entry) => normalised(entry.embedding as number[])),
        total: parsed.usage?.prompt_tokens ?? parsed.usage?.total_tokens ?? 0,
      };
    });
  };

  const embedderOf = async (model: RegisteredModel): Promise<TextEmbedder> => {
    // The width is the upstream's to know: one probe per model, remembered (a failed probe is not).
    let dimensions = dimensionsByModel.get(model.id);
    if (dimensions === undefined) {
      dimensions = embedOn(model.id, ['dimensions'], undefined).then(({ vectors }) => vectors[0]?.length ?? 0);
      dimensionsByModel.set(model.id, dimensions);
      dimensions.catch(() => dimensionsByModel.delete(model.id));
    }
    return {
      modelId: model.id,
      dimensions: await dimensions,
      maxTokens: model.details.context_length ?? 8192,
      embed: async (texts, embedOptions) => {
        if (texts.length === 0) return { vectors: [], tokenCounts: [] };
        const { vectors, total } = await embedOn(model.id, texts, embedOptions?.signal);
        return { vectors, tokenCounts: apportion(total, texts) };
      },
    };
  };

  const viewOf = (model: RegisteredModel): LoadedModelView => {
    const now = new Date().toISOString();
    return {
      model: model.id,
      format: upstreamFormat,
      task: model.task,
      loaded_at: now,
      last_used_at: now,
      expires_at: null,
      context_size: model.details.context_length,
      gpu_layers: 0,
      total_layers: null,
      device: `upstream:${model.ownedBy ?? ''}`,
      threads: null,
      memory_mb: 0,
    };
  };

  const backend: ModelBackend = {
    format: upstreamFormat,
    // An upstream model is always ready here: loading is the upstream's own business.
    load: async (model) => ({ view: viewOf(model), alreadyLoaded: true, loadTimeMs: 0 }),
    unload: async () => false,
    loadedPath: () => undefined,
    loaded: () => [],
    estimate: async (model) => {
      throw new InvalidRequestError(`${model.id} is served by an upstream; its memory is the upstream machine's`, { details: { model: model.id } });
    },
    generator,
    embedder: embedderOf,
  };

  const status = (): UpstreamsStatus => {
    const now = Date.now();
    const iso = (time: number | null): string | null => (time === null || time === 0 ? null : new Date(time).toISOString());
    return {
      upstreams: [...pools.values()].map((pool) => ({
        name: pool.name,
        models: pool.models().map((model) => `${pool.name}/${model.id}`),
        members: pool.members.map((member) => ({
          url: member.config.url,
          state: member.state(now),
          in_flight: member.inFlight,
          max_in_flight: member.config.maxInFlight,
          requests: member.requests,
          failures: member.failures,
          models: [...(member.models?.keys() ?? [])],
          last_error: member.lastError,
          last_error_at: iso(member.lastErrorAt),
          last_refresh_at: iso(member.lastRefreshAt),
          cooldown_until: member.cooldownUntil > now ? iso(member.cooldownUntil) : null,
        })),
      })),
    };
  };

  return {
    backend,
    withModels(registry) {
      const owned = (id: string): boolean => locate(id) !== undefined;
      return {
        get modelsDir() {
          return registry.modelsDir;
        },
        list: async () => [
          ...(await registry.list()),
          ...[...pools.values()].flatMap((pool) => pool.models().map((model) => registeredModel(pool, model, model.id))),
        ],
        get: async (id) => (await lookup(id)) ?? registry.get(id),
        register: (modelPath, registerOptions) => registry.register(modelPath, registerOptions),
        remove: async (id) => {
          if (owned(id)) throw new InvalidRequestError(`${id} is served by an upstream; remove the upstream from the configuration instead`);
          return registry.remove(id);
        },
        setAlias: (alias, target) => registry.setAlias(alias, target),
        aliasTarget: (id) => registry.aliasTarget(id),
        defaultModel: () => registry.defaultModel(),
        setDefaultModel: (id) => registry.setDefaultModel(id),
        // Load options of an upstream model are the upstream's: nothing to remember here.
        setModelSettings: async (id, settings) => (owned(id) ? undefined : registry.setModelSettings(id, settings)),
        getGenerationParams: () => registry.getGenerationParams(),
        setGenerationParams: (changes) => registry.setGenerationParams(changes),
      };
    },
    status,
    async refresh(name) {
      const chosen = name === undefined ? [...pools.values()] : [pools.get(name)].filter((pool): pool is Pool => pool !== undefined);
      if (name !== undefined && chosen.length === 0) throw new ModelNotFoundError(`No upstream is named ${name}`);
      await Promise.all(chosen.map(refreshPool));
      return status();
    },
    start() {
      if (pools.size === 0 || timer !== undefined) return;
      const refreshAll = (): void => {
        for (const pool of pools.values()) void refreshPool(pool);
      };
      refreshAll();
      timer = setInterval(refreshAll, config.refreshIntervalMs);
      timer.unref();
    },
    async close() {
      clearInterval(timer);
      timer = undefined;
      for (const pool of pools.values()) for (const member of pool.members) member.agent.destroy();
    },
  };
}
