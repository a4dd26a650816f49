import type { ModelResolver } from '@tabagent/model-cache';
import type {
  ChatGenerationRequest,
  GenerationChatMessage,
  GenerationDelta,
  GenerationResponseFormat,
  GenerationResult,
  GenerationRun,
  GenerationToolChoice,
  ReasoningSetting,
} from '@tabagent/values';
import { InvalidRequestError, callerKeyOf, type CallContext, type Logger, type RouteChunk, type RouteRequest, type RouteResponse } from '@tabagent/values';
import type { GenerationParams } from '@tabagent/model-cache';
import type { HandlerGroup } from './handler-group.js';
import type { RunningHandle, RunningRequests } from '../running-requests.js';

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
}

type GenerationRouteId =
  'chat.completions' | 'completions' | 'generation.stop' | 'generation.halt' | 'generation.halt_status' | 'params.get' | 'params.set' | 'stats.get';

/** One finished generation, as `stats.get` reports it. */
export type GenerationStats = NonNullable<RouteResponse<'stats.get'>['last']>;
type Usage = RouteResponse<'chat.completions'>['usage'];
type ChatRequest = RouteRequest<'chat.completions'>;
type CompletionRequest = RouteRequest<'completions'>;
type SamplingRequest = Pick<
  ChatRequest,
  | 'temperature'
  | 'top_p'
  | 'top_k'
  | 'min_p'
  | 'repeat_penalty'
  | 'frequency_penalty'
  | 'presence_penalty'
  | 'seed'
  | 'max_tokens'
  | 'stop'
  | 'ignore_eos'
  | 'cache_prompt'
  | 'logit_bias'
>;

function usageOf(result: GenerationResult): Usage {
  return {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
    prompt_tokens_details: { cached_tokens: result.cachedPromptTokens },
    completion_tokens_details: { reasoning_tokens: result.reasoningTokens },
  };
}

/** A budget of -1 (LM Studio's examples) or none means "until the model stops or the context is full". */
function tokenBudgetOf(...budgets: (number | null | undefined)[]): number | undefined {
  const budget = budgets.find((value) => value !== undefined);
  return budget === null || budget === undefined || budget === -1 ? undefined : budget;
}

/** OpenAI's reasoning_effort or Ollama's think, as the loader's reasoning setting (reasoning_effort first). */
function reasoningOf(request: ChatRequest): ReasoningSetting | undefined {
  if (request.reasoning_effort !== undefined) {
    if (request.reasoning_effort === 'none') return 'off';
    return request.reasoning_effort === 'minimal' ? 'low' : request.reasoning_effort;
  }
  if (request.think === undefined || request.think === true) return undefined;
  return request.think === false ? 'off' : request.think;
}

/** OpenAI's finish reason of a result: a stopped generation is `stop`, with `tabagent.cancelled`. */
function finishOf(result: GenerationResult): { finish_reason: 'stop' | 'length' | 'tool_calls'; cancelled: boolean } {
  return result.finishReason === 'cancelled' ? { finish_reason: 'stop', cancelled: true } : { finish_reason: result.finishReason, cancelled: false };
}

const cancelledInfo = { tabagent: { cancelled: true } } as const;

/** What a stream chunk says about the end: on the last one (with the result) its finish reason, usage and the cancelled flag; null on the others. */
function chunkEnd(result: GenerationResult | null): {
  finish_reason: 'stop' | 'length' | 'tool_calls' | null;
  tail: { usage?: Usage; tabagent?: { cancelled: true } };
} {
  if (result === null) return { finish_reason: null, tail: {} };
  const finish = finishOf(result);
  return { finish_reason: finish.finish_reason, tail: { usage: usageOf(result), ...(finish.cancelled ? cancelledInfo : {}) } };
}

/** Refuses what cannot be given, with a clear 400, rather than ignoring it silently. */
function refuseUnavailable(request: {
  n?: number | undefined;
  best_of?: number | undefined;
  logprobs?: boolean | number | undefined;
  top_logprobs?: number | undefined;
}): void {
  const refuse = (path: string, message: string): never => {
    throw new InvalidRequestError(message, { issues: [{ path, message }] });
  };
  if (request.n !== undefined && request.n > 1) refuse('n', 'n must be 1: one choice is generated per request (send the request again for another)');
  if (request.best_of !== undefined && request.best_of > 1) refuse('best_of', 'best_of must be 1: one choice is generated per request');
  if (request.logprobs === true || (typeof request.logprobs === 'number' && request.logprobs > 0) || (request.top_logprobs ?? 0) > 0) {
    refuse(
      request.top_logprobs !== undefined && request.top_logprobs > 0 ? 'top_logprobs' : 'logprobs',
      // node-llama-cpp reports probabilities only from a context sequence's own evaluation loop;
      // LlamaChat and LlamaCompletion, which apply the templates, tools, grammars and stops, do not.
      'logprobs are not supported yet: generation runs through node-llama-cpp LlamaChat/LlamaCompletion, which do not report token probabilities',
    );
  }
}

/** OpenAI's logit_bias (string token ids) as the loader's map. */
function logitBiasOf(bias: Record<string, number> | undefined): ReadonlyMap<number, number> | undefined {
  return bias === undefined ? undefined : new Map(Object.entries(bias).map(([id, value]) => [Number(id), value]));
}

/** Request fields over the stored defaults. */
function samplingOf(request: SamplingRequest, defaults: GenerationParams, newerMaxTokens: number | undefined) {
  const stop = request.stop === undefined ? defaults.stop : typeof request.stop === 'string' ? [request.stop] : request.stop;
  const seed = request.seed ?? defaults.seed;
  return {
    temperature: request.temperature ?? defaults.temperature,
    topP: request.top_p ?? defaults.top_p,
    topK: request.top_k ?? defaults.top_k,
    minP: request.min_p ?? defaults.min_p,
    repeatPenalty: request.repeat_penalty ?? defaults.repeat_penalty,
    frequencyPenalty: request.frequency_penalty ?? defaults.frequency_penalty,
    presencePenalty: request.presence_penalty ?? defaults.presence_penalty,
    seed: seed === null ? undefined : seed,
    maxTokens: tokenBudgetOf(newerMaxTokens, request.max_tokens, defaults.max_tokens),
    stop,
    ignoreEos: request.ignore_eos,
    cachePrompt: request.cache_prompt,
    logitBias: logitBiasOf(request.logit_bias),
  };
}

function responseFormatOf(format: ChatRequest['response_format']): GenerationResponseFormat | undefined {
  if (format === undefined) return undefined;
  if (format.type === 'json_schema') return { type: 'json_schema', schema: format.json_schema.schema };
  return format;
}

function messagesOf(request: ChatRequest, defaults: GenerationParams): GenerationChatMessage[] {
  // Parts stay parts: the engine decides what it can take (GGUF text models refuse images with a 400).
  const messages = request.messages.map((message): GenerationChatMessage => {
    const content = Array.isArray(message.content)
      ? message.content.map((part) => (part.type === 'text' ? { type: 'text' as const, text: part.text } : { type: 'image' as const, url: part.image_url.url }))
      : message.content;
    return {
      role: message.role,
      content,
      name: message.name,
      toolCallId: message.tool_call_id,
      toolCalls: message.tool_calls?.map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments })),
    };
  });
  if (defaults.system_prompt !== null && !messages.some((message) => message.role === 'system' || message.role === 'developer')) {
    messages.unshift({ role: 'system', content: defaults.system_prompt });
  }
  return messages;
}

/** The one prompt of a completions request: text, or token ids. */
function promptOf(prompt: CompletionRequest['prompt']): string | readonly number[] {
  if (typeof prompt === 'string') return prompt;
  const first: unknown = prompt[0];
  if (typeof first === 'string') return first;
  if (Array.isArray(first)) return first as number[];
  return prompt as number[];
}

function toolChoiceOf(choice: ChatRequest['tool_choice']): GenerationToolChoice | undefined {
  if (choice === undefined || typeof choice === 'string') return choice;
  return { name: choice.function.name };
}

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
  const launch = (
    context: CallContext,
    start: (signal: AbortSignal) => GenerationRun<GenerationResult, GenerationDelta>,
  ): { run: GenerationRun<GenerationResult, GenerationDelta>; handle: RunningHandle } => {
    const handle = running.register(context, 'generation');
    const endActivity = deps.activity?.begin();
    const release = (): void => {
      endActivity?.();
      handle.release();
    };
    let run: GenerationRun<GenerationResult, GenerationDelta>;
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

  /** Resolves the model and loads it on demand; everything that can fail before generating fails here. */
  const prepare = async (requested: string | undefined, keepAlive: number | string | undefined) => {
    const resolved = await models.resolveTextModel(requested);
    await models.ensureLoaded(resolved.model, { keepAlive });
    return resolved;
  };

  return {
    'chat.completions': async (request, context) => {
      refuseUnavailable(request);
      const defaults = await registry.getGenerationParams();
      const { model, generator } = await prepare(request.model, request.keep_alive);
      const chatRequest: ChatGenerationRequest = {
        ...samplingOf(request, defaults, request.max_completion_tokens),
        messages: messagesOf(request, defaults),
        tools: request.tools?.map((tool) => ({ name: tool.function.name, description: tool.function.description, parameters: tool.function.parameters })),
        toolChoice: toolChoiceOf(request.tool_choice),
        responseFormat: responseFormatOf(request.response_format),
        keepAlive: request.keep_alive,
        reasoning: reasoningOf(request),
        parallelToolCalls: request.parallel_tool_calls,
      };
      const { run, handle } = launch(context, (signal) => generator.chat(model.id, { ...chatRequest, signal }));
      const id = `chatcmpl-${context.requestId}`;
      const created = now();
      if (!request.stream) {
        const result = await run.result;
        const finish = finishOf(result);
        const toolCalls = result.toolCalls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.name, arguments: call.arguments },
        }));
        return {
          id,
          object: 'chat.completion',
          created,
          model: model.id,
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: toolCalls.length > 0 && result.text.length === 0 ? null : result.text,
                ...(result.reasoning.length > 0 ? { reasoning_content: result.reasoning } : {}),
                ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
              },
              finish_reason: finish.finish_reason,
              logprobs: null,
            },
          ],
          usage: usageOf(result),
          request_id: context.requestId,
          ...(finish.cancelled ? cancelledInfo : {}),
        };
      }
      const chunk = (delta: RouteChunk<'chat.completions'>['choices'][number]['delta'], result: GenerationResult | null): RouteChunk<'chat.completions'> => {
        const end = chunkEnd(result);
        const choice = { index: 0, delta, finish_reason: end.finish_reason, logprobs: null };
        return { id, object: 'chat.completion.chunk', created, model: model.id, choices: [choice], request_id: context.requestId, ...end.tail };
      };
      return (async function* chatStream(): AsyncGenerator<RouteChunk<'chat.completions'>> {
        let finished = false;
        try {
          yield chunk({ role: 'assistant', content: '' }, null);
          for await (const delta of run) yield chunk(delta.kind === 'reasoning' ? { reasoning_content: delta.text } : { content: delta.text }, null);
          const result = await run.result;
          finished = true;
          if (result.toolCalls.length > 0) {
            yield chunk(
              {
                tool_calls: result.toolCalls.map((call, index) => ({
                  index,
                  id: call.id,
                  type: 'function' as const,
                  function: { name: call.name, arguments: call.arguments },
                })),
              },
              null,
            );
          }
          yield chunk({}, result);
        } finally {
          // The consumer left early (client disconnect): stop generating.
          if (!finished) {
            handle.abort();
            await run.result.catch(() => undefined);
          }
        }
      })();
    },

    completions: async (request, context) => {
      refuseUnavailable(request);
      const defaults = await registry.getGenerationParams();
      if (request.suffix !== undefined) throw new InvalidRequestError('suffix (fill-in-the-middle) is not supported');
      const prompt = promptOf(request.prompt);
      if (request.echo === true && typeof prompt !== 'string') {
        throw new InvalidRequestError('echo needs a text prompt (the prompt was token ids)', { issues: [{ path: 'echo', message: 'needs a text prompt' }] });
      }
      const { model, generator } = await prepare(request.model, request.keep_alive);
      const { run, handle } = launch(context, (signal) =>
        generator.complete(model.id, {
          ...samplingOf(request, defaults, undefined),
          prompt,
          responseFormat: responseFormatOf(request.response_format),
          keepAlive: request.keep_alive,
          signal,
        }),
      );
      const id = `cmpl-${context.requestId}`;
      const created = now();
      const echo = request.echo === true && typeof prompt === 'string' ? prompt : '';
      if (!request.stream) {
        const result = await run.result;
        return {
          id,
          object: 'text_completion',
          created,
          model: model.id,
          choices: [{ index: 0, text: echo + result.text, finish_reason: finishOf(result).finish_reason, logprobs: null }],
          usage: usageOf(result),
          request_id: context.requestId,
          ...(finishOf(result).cancelled ? cancelledInfo : {}),
        };
      }
      const chunk = (text: string, result: GenerationResult | null): RouteChunk<'completions'> => {
        const end = chunkEnd(result);
        const choice = { index: 0, text, finish_reason: end.finish_reason, logprobs: null };
        return { id, object: 'text_completion', created, model: model.id, choices: [choice], request_id: context.requestId, ...end.tail };
      };
      return (async function* completionStream(): AsyncGenerator<RouteChunk<'completions'>> {
        let finished = false;
        try {
          if (echo.length > 0) yield chunk(echo, null);
          for await (const delta of run) yield chunk(delta.text, null);
          const result = await run.result;
          finished = true;
          yield chunk('', result);
        } finally {
          if (!finished) {
            handle.abort();
            await run.result.catch(() => undefined);
          }
        }
      })();
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
