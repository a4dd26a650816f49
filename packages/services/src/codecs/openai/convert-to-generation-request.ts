import type { GenerationParams } from '@tabagent/model-cache';
import {
  InvalidRequestError,
  type ChatGenerationRequest,
  type CompletionGenerationRequest,
  type GenerationChatMessage,
  type GenerationResponseFormat,
  type GenerationToolChoice,
  type ReasoningSetting,
  type RouteRequest,
} from '@tabagent/values';
import { samplingWithDefaults, withDefaultSystemPrompt, type RequestedSampling } from '../generation-defaults.js';
import { refuseField } from '../refuse-field.js';

// The OpenAI dialect (chat completions and completions) into the internal generation contract:
// every OpenAI field name is read here and nowhere else.

type ChatRequest = RouteRequest<'chat.completions'>;
type CompletionRequest = RouteRequest<'completions'>;

/** Refuses what cannot be given, with a clear 400, rather than ignoring it silently. */
export function refuseUnavailable(request: {
  n?: number | undefined;
  best_of?: number | undefined;
  logprobs?: boolean | number | undefined;
  top_logprobs?: number | undefined;
}): void {
  if (request.n !== undefined && request.n > 1) refuseField('n', 'n must be 1: one choice is generated per request (send the request again for another)');
  if (request.best_of !== undefined && request.best_of > 1) refuseField('best_of', 'best_of must be 1: one choice is generated per request');
  if (request.logprobs === true || (typeof request.logprobs === 'number' && request.logprobs > 0) || (request.top_logprobs ?? 0) > 0) {
    refuseField(
      request.top_logprobs !== undefined && request.top_logprobs > 0 ? 'top_logprobs' : 'logprobs',
      // node-llama-cpp reports probabilities only from a context sequence's own evaluation loop;
      // LlamaChat and LlamaCompletion, which apply the templates, tools, grammars and stops, do not.
      'logprobs are not supported yet: generation runs through node-llama-cpp LlamaChat/LlamaCompletion, which do not report token probabilities',
    );
  }
}

/** OpenAI's sampling fields, camel-cased (`max_completion_tokens`, the newer name, before `max_tokens`). */
function requestedSamplingOf(request: ChatRequest | CompletionRequest, newerMaxTokens: number | undefined): RequestedSampling {
  return {
    temperature: request.temperature,
    topP: request.top_p,
    topK: request.top_k,
    minP: request.min_p,
    repeatPenalty: request.repeat_penalty,
    frequencyPenalty: request.frequency_penalty,
    presencePenalty: request.presence_penalty,
    seed: request.seed,
    maxTokens: newerMaxTokens ?? request.max_tokens,
    stop: request.stop === undefined ? undefined : typeof request.stop === 'string' ? [request.stop] : request.stop,
    ignoreEos: request.ignore_eos,
    cachePrompt: request.cache_prompt,
    logitBias: request.logit_bias === undefined ? undefined : new Map(Object.entries(request.logit_bias).map(([id, value]) => [Number(id), value])),
  };
}

function responseFormatOf(format: ChatRequest['response_format']): GenerationResponseFormat | undefined {
  if (format === undefined) return undefined;
  if (format.type === 'json_schema') return { type: 'json_schema', schema: format.json_schema.schema };
  return format;
}

/** OpenAI's reasoning_effort as the contract's reasoning setting (absent: the model thinks as its template makes it). */
function reasoningOf(request: ChatRequest): ReasoningSetting | undefined {
  if (request.reasoning_effort === undefined) return undefined;
  if (request.reasoning_effort === 'none') return 'off';
  return request.reasoning_effort === 'minimal' ? 'low' : request.reasoning_effort;
}

function toolChoiceOf(choice: ChatRequest['tool_choice']): GenerationToolChoice | undefined {
  if (choice === undefined || typeof choice === 'string') return choice;
  return { name: choice.function.name };
}

/** OpenAI messages as the contract's; content parts stay parts (the engine decides what it can take). */
function messagesOf(request: ChatRequest): GenerationChatMessage[] {
  return request.messages.map((message): GenerationChatMessage => ({
    role: message.role,
    content: Array.isArray(message.content)
      ? message.content.map((part) => (part.type === 'text' ? { type: 'text' as const, text: part.text } : { type: 'image' as const, url: part.image_url.url }))
      : message.content,
    name: message.name,
    toolCallId: message.tool_call_id,
    toolCalls: message.tool_calls?.map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments })),
  }));
}

/** A chat completions request as the contract's chat request, over the stored defaults. */
export function chatGenerationRequestOf(request: ChatRequest, defaults: GenerationParams): ChatGenerationRequest {
  refuseUnavailable(request);
  return {
    ...samplingWithDefaults(requestedSamplingOf(request, request.max_completion_tokens), defaults),
    messages: withDefaultSystemPrompt(messagesOf(request), defaults),
    tools: request.tools?.map((tool) => ({ name: tool.function.name, description: tool.function.description, parameters: tool.function.parameters })),
    toolChoice: toolChoiceOf(request.tool_choice),
    responseFormat: responseFormatOf(request.response_format),
    keepAlive: request.keep_alive,
    reasoning: reasoningOf(request),
    parallelToolCalls: request.parallel_tool_calls,
  };
}

/** The one prompt of a completions request: text, or token ids. */
function promptOf(prompt: CompletionRequest['prompt']): string | readonly number[] {
  if (typeof prompt === 'string') return prompt;
  const first: unknown = prompt[0];
  if (typeof first === 'string') return first;
  if (Array.isArray(first)) return first as number[];
  return prompt as number[];
}

/** A completions request as the contract's completion request, over the stored defaults; `echo` is the text to repeat first. */
export function completionGenerationRequestOf(request: CompletionRequest, defaults: GenerationParams): { request: CompletionGenerationRequest; echo: string } {
  refuseUnavailable(request);
  if (request.suffix !== undefined) throw new InvalidRequestError('suffix (fill-in-the-middle) is not supported');
  const prompt = promptOf(request.prompt);
  if (request.echo === true && typeof prompt !== 'string') {
    throw new InvalidRequestError('echo needs a text prompt (the prompt was token ids)', { issues: [{ path: 'echo', message: 'needs a text prompt' }] });
  }
  return {
    request: {
      ...samplingWithDefaults(requestedSamplingOf(request, undefined), defaults),
      prompt,
      responseFormat: responseFormatOf(request.response_format),
      keepAlive: request.keep_alive,
    },
    echo: request.echo === true && typeof prompt === 'string' ? prompt : '',
  };
}
