import type { ModelResolver } from '@tabagent/model-cache';
import type { StoredResponse } from '@tabagent/storage';
import {
  assertPairingScope,
  InvalidRequestError,
  NotFoundError,
  safeParseJson,
  type GenerationChatMessage,
  callerKeyOf,
  generationEvents,
  type CallContext,
  type GenerationDelta,
  type GenerationResult,
  type GenerationRun,
  type Logger,
  type RouteRequest,
  type RouteResponse,
} from '@tabagent/values';
import { anthropicMessagesRequestOf, anthropicPromptOf } from '../codecs/anthropic/convert-anthropic-request.js';
import { anthropicErrorOf, anthropicEventsOf, anthropicMessageId, anthropicMessageOf } from '../codecs/anthropic/convert-to-anthropic-response.js';
import { legacyGenerateAnswerOf, legacyGenerateOf } from '../codecs/legacy/convert-legacy-generate.js';
import { responsesMessagesOf, responsesPromptOf, responsesRequestOf } from '../codecs/responses/convert-responses-request.js';
import {
  assistantTurnOf,
  responsesEventsOf,
  responsesId,
  responsesResponseOf,
  type ResponsesMeta,
  type ResponsesObject,
} from '../codecs/responses/convert-to-responses-output.js';
import { ollamaChatOf, ollamaGenerateOf, type OllamaGenerationParts } from '../codecs/ollama/convert-ollama-request.js';
import {
  ollamaChatAnswerOf,
  ollamaChatLinesOf,
  ollamaGenerateAnswerOf,
  ollamaGenerateLinesOf,
  type OllamaTiming,
} from '../codecs/ollama/convert-to-ollama-response.js';
import {
  openAiChatChunksOf,
  openAiChatResponseOf,
  openAiCompletionChunksOf,
  openAiCompletionResponseOf,
} from '../codecs/openai/convert-from-generation-result.js';
import { chatGenerationRequestOf, completionGenerationRequestOf } from '../codecs/openai/convert-to-generation-request.js';
import type { RunningHandle, RunningRequests } from '../running-requests.js';
import type { HandlerGroup } from './handler-group.js';

/** What the generation handlers need. */
export interface GenerationHandlerDeps {
  /** The registry and the format backends (shared with the model handlers). */
  models: ModelResolver;
  logger?: Logger;
  /** Counts generations running or waiting, so background work (the weaver) can yield to them. */
  activity?: { begin(): () => void };
  /** The running-request registry, shared with the pulls so that `generation.stop` stops either by id. */
  running: RunningRequests;
  /** Generations kept per model for `stats.get` (default 20). */
  statsHistory?: number;
  /** Told of every finished generation (metrics). */
  onGeneration?: (stats: GenerationStats) => void;
  /** Unix time source for `created` (tests). */
  now?: () => number;
  /**
   * Where the Responses API keeps `store: true` responses (for `previous_response_id` and `GET
   * /v1/responses/{id}`): the server's SQLite storage. Without one nothing is stored.
   */
  responseStore?: ResponseStore;
  /** How many responses the store keeps (default 1,000) and for how long (default 30 days, as OpenAI). */
  responseStoreLimits?: { maxRows: number; ttlMs: number };
  /**
   * How long a stream of the Anthropic or Responses API stays silent before a keep-alive event
   * (`ping`, `keepalive`) is sent (default 10 s): an agent's prompt can take minutes to evaluate.
   */
  keepAliveIntervalMs?: number;
}

/** The storage calls of the Responses store (`@tabagent/storage`'s `Storage` has them). */
export interface ResponseStore {
  putResponse(entry: StoredResponse, limits: { maxRows: number }): void;
  getResponse(id: string): StoredResponse | undefined;
  deleteResponse(id: string): boolean;
}

type GenerationRouteId =
  | 'chat.completions'
  | 'completions'
  | 'ollama.chat'
  | 'ollama.generate'
  | 'legacy.generate'
  | 'anthropic.messages'
  | 'anthropic.count_tokens'
  | 'responses.create'
  | 'responses.input_tokens'
  | 'responses.get'
  | 'responses.delete'
  | 'responses.input_items'
  | 'generation.stop'
  | 'generation.halt'
  | 'generation.halt_status'
  | 'params.get'
  | 'params.set'
  | 'stats.get';

/** One finished generation, as `stats.get` reports it. */
export type GenerationStats = NonNullable<RouteResponse<'stats.get'>['last']>;
type Run = GenerationRun<GenerationResult, GenerationDelta>;

/** Ignored Ollama option names remembered (and logged by name, once each), and the longest name kept. */
const maxRememberedOptions = 64;
const maxOptionNameLength = 64;

/** Chat, completions, stop/halt, default parameters and statistics on the text-generation backends. */
export function createGenerationHandlers(deps: GenerationHandlerDeps): HandlerGroup<GenerationRouteId> {
  const { models } = deps;
  const { registry } = models;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const statsHistory = deps.statsHistory ?? 20;
  // Running generations by caller and request id: only that caller (or halt) stops one.
  const { running } = deps;
  const statsByModel = new Map<string, GenerationStats[]>();
  const generationCount = new Map<string, number>();
  let lastStats: GenerationStats | null = null;
  let lastHaltTime: string | null = null;

  const record = (requestId: string, result: GenerationResult): void => {
    const stats: GenerationStats = {
      model: result.modelId,
      request_id: requestId,
      time_to_first_token_ms: result.timeToFirstTokenMs,
      tokens_per_second: result.tokensPerSecond,
      prompt_tokens: result.promptTokens,
      completion_tokens: result.completionTokens,
      total_time_ms: result.totalTimeMs,
      finish_reason: result.finishReason,
      finished_at: new Date().toISOString(),
    };
    lastStats = stats;
    const recent = statsByModel.get(result.modelId) ?? [];
    recent.push(stats);
    if (recent.length > statsHistory) recent.shift();
    statsByModel.set(result.modelId, recent);
    generationCount.set(result.modelId, (generationCount.get(result.modelId) ?? 0) + 1);
    deps.onGeneration?.(stats);
  };

  /**
   * Starts a generation registered under the request id: stop, halt and client disconnect abort
   * it. Stats are recorded and the id released when it ends, whether or not anyone reads it.
   */
  const launch = (context: CallContext, start: (signal: AbortSignal) => Run): { run: Run; handle: RunningHandle } => {
    const handle = running.register(context, 'generation');
    const endActivity = deps.activity?.begin();
    const release = (): void => {
      endActivity?.();
      handle.release();
    };
    let run: Run;
    try {
      run = start(handle.signal);
    } catch (error) {
      release();
      throw error;
    }
    run.result.then(
      (result) => {
        release();
        record(context.requestId, result);
      },
      (error: unknown) => {
        release();
        deps.logger?.warn({ err: error, requestId: context.requestId }, 'Generation failed');
      },
    );
    return { run, handle };
  };

  /**
   * The run as the one event stream, for a dialect's stream codec: a consumer that leaves early
   * (client disconnect) stops the generation, and its end is awaited.
   */
  async function* eventsOf(modelId: string, run: Run, handle: RunningHandle) {
    let finished = false;
    try {
      for await (const event of generationEvents(modelId, run)) {
        if (event.type === 'end' || event.type === 'error') finished = true;
        yield event;
      }
    } finally {
      if (!finished) {
        handle.abort();
        await run.result.catch(() => undefined);
      }
    }
  }

  /** Resolves the model and loads it on demand; everything that can fail before generating fails here. */
  const prepare = async (requested: string | undefined, load: { keepAlive: number | string | undefined; contextSize?: number; threads?: number }) => {
    const resolved = await models.resolveTextModel(requested);
    const loaded = await models.ensureLoaded(resolved.model, load);
    return { ...resolved, loaded };
  };

  /** Logs each Ollama option name this server does not use, once; at most 64 names of at most 64 characters, the rest as a count. */
  const ignoredOptions = new Set<string>();
  const noteIgnored = (keys: readonly string[]): void => {
    const fresh = keys.filter((key) => !ignoredOptions.has(key));
    if (fresh.length === 0) return;
    const named = fresh.filter((key) => key.length <= maxOptionNameLength).slice(0, Math.max(0, maxRememberedOptions - ignoredOptions.size));
    for (const key of named) ignoredOptions.add(key);
    deps.logger?.warn({ options: named, unnamed: fresh.length - named.length }, 'Ollama options not used by this server were ignored');
  };

  /**
   * The start of every Ollama generation: an empty request loads the model, or with keep_alive 0
   * unloads it (taking it from every other caller: a `full` token's to do); otherwise the model
   * is resolved and loaded with `num_ctx` / `num_thread` (remembered, as `models.load` does), and
   * the time a load took is Ollama's `load_duration`.
   */
  const ollamaStart = async (parts: OllamaGenerationParts, empty: boolean, context: CallContext) => {
    noteIgnored(parts.ignoredOptions);
    if (empty && (parts.keepAlive === 0 || parts.keepAlive === '0' || parts.keepAlive === '0s')) {
      assertPairingScope(context.caller.pairing, 'models.unload');
      await models.unload(parts.modelId);
      return { outcome: 'unload' as const };
    }
    const prepared = await prepare(parts.modelId, { keepAlive: parts.keepAlive, ...parts.load });
    const remembered = Object.entries({ context_size: parts.load.contextSize, threads: parts.load.threads }).filter(([, value]) => value !== undefined);
    if (remembered.length > 0) await registry.setModelSettings(prepared.model.id, Object.fromEntries(remembered));
    const loadNs = prepared.loaded.alreadyLoaded ? 0 : Math.round(prepared.loaded.loadTimeMs * 1_000_000);
    return { outcome: empty ? ('load' as const) : ('generate' as const), prepared, loadNs };
  };

  const nowIso = (): string => new Date().toISOString();
  const keepAliveMs = deps.keepAliveIntervalMs ?? 10_000;
  const storeLimits = deps.responseStoreLimits ?? { maxRows: 1000, ttlMs: 30 * 24 * 3600 * 1000 };

  /**
   * A stored response of this caller (its conversation names who stored it), or the 404 OpenAI
   * answers for an unknown (or expired, or deleted) one: another caller's is answered alike, its id
   * is not this caller's to know.
   */
  const storedResponse = (id: string, context: CallContext): { stored: StoredResponse; messages: GenerationChatMessage[] } => {
    const stored = deps.responseStore?.getResponse(id);
    const parsed = stored === undefined ? undefined : safeParseJson(stored.conversation);
    const conversation = parsed?.success === true ? (parsed.value as { caller?: unknown; messages?: unknown }) : undefined;
    if (stored === undefined || conversation?.caller !== callerKeyOf(context) || !Array.isArray(conversation.messages)) {
      throw new NotFoundError(`Response with id '${id}' not found.`);
    }
    return { stored, messages: conversation.messages as GenerationChatMessage[] };
  };

  /** The conversation a `previous_response_id` continues; an unknown id is a 400 naming the field, as OpenAI's. */
  const previousConversation = (id: string | null | undefined, context: CallContext): GenerationChatMessage[] => {
    if (id === undefined || id === null) return [];
    try {
      return storedResponse(id, context).messages;
    } catch {
      throw new InvalidRequestError(`Previous response with id '${id}' not found.`, { issues: [{ path: 'previous_response_id', message: 'not found' }] });
    }
  };

  /** The input items as `input_items` lists them: each with an id. */
  const inputItemsOf = (input: RouteRequest<'responses.create'>['input']): Record<string, unknown>[] => {
    if (input === undefined) return [];
    if (typeof input === 'string') return [{ type: 'message', id: responsesId('msg'), role: 'user', content: [{ type: 'input_text', text: input }] }];
    return input.map((item) => ({ ...item, type: item.type ?? 'message', id: typeof item.id === 'string' ? item.id : responsesId('msg') }));
  };

  /**
   * Keeps a finished response (unless the request said `store: false`): the response as returned,
   * its input items, and the conversation with its output for a later `previous_response_id`.
   * Storing is secondary to answering: a failure is logged, the answer still goes out.
   */
  const remember = (request: RouteRequest<'responses.create'>, previous: GenerationChatMessage[], response: ResponsesObject, context: CallContext): void => {
    if (request.store === false || deps.responseStore === undefined) return;
    try {
      const createdAt = Date.now();
      deps.responseStore.putResponse(
        {
          id: response.id,
          createdAt,
          expiresAt: createdAt + storeLimits.ttlMs,
          response: JSON.stringify(response),
          inputItems: JSON.stringify(inputItemsOf(request.input)),
          conversation: JSON.stringify({
            caller: callerKeyOf(context),
            messages: [...previous, ...responsesMessagesOf(request.input), assistantTurnOf(response.output)],
          }),
        },
        { maxRows: storeLimits.maxRows },
      );
    } catch (error) {
      deps.logger?.warn({ err: error, responseId: response.id }, 'A response could not be stored');
    }
  };

  return {
    'chat.completions': async (request, context) => {
      const chatRequest = chatGenerationRequestOf(request, await registry.getGenerationParams());
      const { model, generator } = await prepare(request.model, { keepAlive: request.keep_alive });
      const { run, handle } = launch(context, (signal) => generator.chat(model.id, { ...chatRequest, signal }));
      const meta = { id: `chatcmpl-${context.requestId}`, created: now(), model: model.id, requestId: context.requestId };
      if (!request.stream) return openAiChatResponseOf(await run.result, meta);
      return openAiChatChunksOf(eventsOf(model.id, run, handle), meta);
    },

    completions: async (request, context) => {
      const { request: completion, echo } = completionGenerationRequestOf(request, await registry.getGenerationParams());
      const { model, generator } = await prepare(request.model, { keepAlive: request.keep_alive });
      const { run, handle } = launch(context, (signal) => generator.complete(model.id, { ...completion, signal }));
      const meta = { id: `cmpl-${context.requestId}`, created: now(), model: model.id, requestId: context.requestId };
      if (!request.stream) return openAiCompletionResponseOf(await run.result, meta, echo);
      return openAiCompletionChunksOf(eventsOf(model.id, run, handle), meta, echo);
    },

    // One operation per Ollama chat: one log line, one count; a stream only when asked for.
    'ollama.chat': async (request, context) => {
      const started = performance.now();
      const parts = ollamaChatOf(request, await registry.getGenerationParams());
      const start = await ollamaStart(parts, parts.request === null, context);
      if (start.outcome !== 'generate' || parts.request === null) {
        return { model: parts.name, created_at: nowIso(), message: { role: 'assistant', content: '' }, done: true, done_reason: start.outcome };
      }
      const { model, generator } = start.prepared;
      const chat = parts.request;
      const { run, handle } = launch(context, (signal) => generator.chat(model.id, { ...chat, signal }));
      const timing: OllamaTiming = { started, generationStarted: performance.now(), loadNs: start.loadNs };
      if (!parts.stream) return ollamaChatAnswerOf(await run.result, parts.name, timing);
      return ollamaChatLinesOf(eventsOf(model.id, run, handle), parts.name, timing);
    },

    'ollama.generate': async (request, context) => {
      const started = performance.now();
      const parts = ollamaGenerateOf(request, await registry.getGenerationParams());
      const start = await ollamaStart(parts, parts.request === null, context);
      if (start.outcome !== 'generate' || parts.request === null) {
        return { model: parts.name, created_at: nowIso(), response: '', done: true, done_reason: start.outcome };
      }
      const { model, generator } = start.prepared;
      const generation = parts.request;
      const { run, handle } = launch(context, (signal) =>
        generation.kind === 'completion'
          ? generator.complete(model.id, { ...generation.completion, signal })
          : generator.chat(model.id, { ...generation.chat, signal }),
      );
      const timing: OllamaTiming = { started, generationStarted: performance.now(), loadNs: start.loadNs };
      if (!parts.stream) return ollamaGenerateAnswerOf(await run.result, parts.name, timing);
      return ollamaGenerateLinesOf(eventsOf(model.id, run, handle), parts.name, timing, generation.kind === 'completion');
    },

    // The extension's legacy generate action: one answer, with its stats.
    'legacy.generate': async (request, context) => {
      const legacy = legacyGenerateOf(request, await registry.getGenerationParams());
      const { model, generator } = await prepare(legacy.model, { keepAlive: undefined });
      const { run } = launch(context, (signal) => generator.chat(model.id, { ...legacy.request, signal }));
      return legacyGenerateAnswerOf(await run.result, context.requestId);
    },

    // Anthropic's Messages API: one codec each way, the same generation as every other dialect.
    'anthropic.messages': async (request, context) => {
      const chat = anthropicMessagesRequestOf(request, await registry.getGenerationParams());
      const { model, generator } = await prepare(request.model, { keepAlive: undefined });
      const { run, handle } = launch(context, (signal) => generator.chat(model.id, { ...chat, signal }));
      const id = anthropicMessageId();
      if (request.stream) return anthropicEventsOf(eventsOf(model.id, run, handle), id, model.id, keepAliveMs);
      try {
        return anthropicMessageOf(await run.result, id, model.id);
      } catch (error) {
        throw anthropicErrorOf(error);
      }
    },

    // Exact: the rendered prompt's tokens, as the same request's usage.input_tokens.
    'anthropic.count_tokens': async (request) => {
      const prompt = anthropicPromptOf(request, await registry.getGenerationParams());
      const { model, generator } = await prepare(request.model, { keepAlive: undefined });
      try {
        return { input_tokens: await generator.countChatTokens(model.id, prompt) };
      } catch (error) {
        throw anthropicErrorOf(error);
      }
    },

    // OpenAI's Responses API: stateless unless `store` (default true) keeps the response for later turns.
    'responses.create': async (request, context) => {
      const previous = previousConversation(request.previous_response_id, context);
      const chat = responsesRequestOf(request, previous, await registry.getGenerationParams());
      const { model, generator } = await prepare(request.model, { keepAlive: undefined });
      const { run, handle } = launch(context, (signal) => generator.chat(model.id, { ...chat, signal }));
      const meta: ResponsesMeta = { id: responsesId('resp'), createdAt: now(), model: model.id, request };
      if (request.stream)
        return responsesEventsOf(eventsOf(model.id, run, handle), meta, keepAliveMs, (response) => remember(request, previous, response, context));
      const response = responsesResponseOf(await run.result, meta);
      remember(request, previous, response, context);
      return response;
    },

    'responses.input_tokens': async (request, context) => {
      const prompt = responsesPromptOf(request, previousConversation(request.previous_response_id, context), await registry.getGenerationParams());
      const { model, generator } = await prepare(request.model, { keepAlive: undefined });
      return { object: 'response.input_tokens', input_tokens: await generator.countChatTokens(model.id, prompt) };
    },

    'responses.get': async (request, context) => JSON.parse(storedResponse(request.response_id, context).stored.response) as ResponsesObject,

    'responses.delete': async (request, context) => {
      storedResponse(request.response_id, context);
      if (deps.responseStore?.deleteResponse(request.response_id) !== true) throw new NotFoundError(`Response with id '${request.response_id}' not found.`);
      return { id: request.response_id, object: 'response', deleted: true };
    },

    // Newest first unless `order: "asc"`; `after` is the id the previous page ended with.
    'responses.input_items': async (request, context) => {
      const items = JSON.parse(storedResponse(request.response_id, context).stored.inputItems) as Record<string, unknown>[];
      const ordered = request.order === 'asc' ? items : [...items].reverse();
      const from = request.after === undefined ? 0 : ordered.findIndex((item) => item['id'] === request.after) + 1;
      const page = ordered.slice(from, from + request.limit);
      return {
        object: 'list',
        data: page,
        first_id: (page[0]?.['id'] as string | undefined) ?? null,
        last_id: (page[page.length - 1]?.['id'] as string | undefined) ?? null,
        has_more: from + request.limit < ordered.length,
      };
    },

    // A generation or a pull of this caller; another caller's is answered as not found (its id is not this caller's to know).
    'generation.stop': async (request, context) =>
      running.cancel(request.request_id, callerKeyOf(context))
        ? { status: 'stopped', request_id: request.request_id, stopped: 1 }
        : { status: 'not_found', request_id: request.request_id, stopped: 0 },

    'generation.halt': async () => {
      const ids = running.abortAll('generation');
      lastHaltTime = new Date().toISOString();
      deps.logger?.info({ stopped: ids.length }, 'Halted all generations');
      return { status: 'halted', was_generating: ids.length > 0, stopped: ids.length, stopped_request_ids: ids };
    },

    // How many run is everyone's to know; which ids, only the caller's own.
    'generation.halt_status': async (_request, context) => {
      const generations = running.list('generation');
      const caller = callerKeyOf(context);
      return {
        generating: generations.length > 0,
        active_requests: generations.length,
        active_request_ids: generations.filter((entry) => entry.caller === caller).map((entry) => entry.requestId),
        last_halt_time: lastHaltTime,
      };
    },

    'params.get': async () => registry.getGenerationParams(),

    'params.set': async (request) => registry.setGenerationParams(request),

    'stats.get': async () => ({
      last: lastStats,
      models: [...statsByModel.entries()].map(([model, recent]) => {
        const ttfts = recent.flatMap((stats) => (stats.time_to_first_token_ms === null ? [] : [stats.time_to_first_token_ms]));
        const speeds = recent.flatMap((stats) => (stats.tokens_per_second === null ? [] : [stats.tokens_per_second]));
        const mean = (values: number[]): number | null => (values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length);
        return {
          model,
          generations: generationCount.get(model) ?? recent.length,
          mean_time_to_first_token_ms: mean(ttfts),
          mean_tokens_per_second: mean(speeds),
          recent: [...recent],
        };
      }),
    }),
  };
}
