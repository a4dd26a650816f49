import type {
  ChatGenerationRequest,
  CompletionGenerationRequest,
  GeneratedToolCall,
  GenerationChatMessage,
  GenerationDelta,
  GenerationFinishReason,
  GenerationRequestBase,
} from '@tabagent/values';

/**
 * The internal contract as an OpenAI request to an upstream: the standard fields, plus the
 * llama.cpp-family extras that vLLM, llama-server, Ollama and TabAgent read (`top_k`, `min_p`,
 * `repeat_penalty`, `ignore_eos`, `cache_prompt`) and that strict servers ignore. Always streamed
 * with usage: the upstream's tokens reach the client as they arrive.
 */
function samplingOf(request: GenerationRequestBase): Record<string, unknown> {
  const body: Record<string, unknown> = {
    stream: true,
    stream_options: { include_usage: true },
    temperature: request.temperature,
    top_p: request.topP,
    top_k: request.topK,
    min_p: request.minP,
    repeat_penalty: request.repeatPenalty,
    frequency_penalty: request.frequencyPenalty,
    presence_penalty: request.presencePenalty,
    seed: request.seed,
    max_tokens: request.maxTokens,
    stop: request.stop === undefined || request.stop.length === 0 ? undefined : request.stop,
    ignore_eos: request.ignoreEos,
    cache_prompt: request.cachePrompt,
    logit_bias: request.logitBias === undefined ? undefined : Object.fromEntries([...request.logitBias].map(([token, bias]) => [String(token), bias])),
  };
  if (request.responseFormat !== undefined && request.responseFormat.type !== 'text') {
    body['response_format'] =
      request.responseFormat.type === 'json_object'
        ? { type: 'json_object' }
        : { type: 'json_schema', json_schema: { name: 'output', schema: request.responseFormat.schema, strict: true } };
  }
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
}

function messageOf(message: GenerationChatMessage): Record<string, unknown> {
  const content =
    typeof message.content === 'string' || message.content === null
      ? message.content
      : message.content.map((part) => (part.type === 'text' ? { type: 'text', text: part.text } : { type: 'image_url', image_url: { url: part.url } }));
  const wire: Record<string, unknown> = { role: message.role, content };
  if (message.name !== undefined) wire['name'] = message.name;
  if (message.toolCallId !== undefined) wire['tool_call_id'] = message.toolCallId;
  if (message.reasoning !== undefined && message.reasoning !== '') wire['reasoning_content'] = message.reasoning;
  if (message.toolCalls !== undefined && message.toolCalls.length > 0) {
    wire['tool_calls'] = message.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }));
  }
  return wire;
}

/** A chat request as `POST {base}/chat/completions` takes it. */
export function openAiChatBodyOf(model: string, request: ChatGenerationRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { model, messages: request.messages.map(messageOf), ...samplingOf(request) };
  if (request.tools !== undefined && request.tools.length > 0) {
    body['tools'] = request.tools.map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description === undefined ? {} : { description: tool.description }),
        parameters: tool.parameters ?? { type: 'object' },
      },
    }));
  }
  if (request.toolChoice !== undefined) {
    body['tool_choice'] = typeof request.toolChoice === 'string' ? request.toolChoice : { type: 'function', function: { name: request.toolChoice.name } };
  }
  if (request.parallelToolCalls !== undefined) body['parallel_tool_calls'] = request.parallelToolCalls;
  // OpenAI's reasoning_effort ("none" closes the thought at once), as TabAgent, vLLM and llama-server read it.
  if (request.reasoning !== undefined) body['reasoning_effort'] = request.reasoning === 'off' ? 'none' : request.reasoning;
  return body;
}

/** A completion request as `POST {base}/completions` takes it. */
export function openAiCompletionBodyOf(model: string, request: CompletionGenerationRequest): Record<string, unknown> {
  return { model, prompt: request.prompt, ...samplingOf(request) };
}

interface WireToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

interface WireChunk {
  error?: unknown;
  choices?: Array<{
    text?: string | null;
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: WireToolCallDelta[] | null };
    finish_reason?: string | null;
  }>;
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number } | null;
    completion_tokens_details?: { reasoning_tokens?: number } | null;
  } | null;
}

/** What a finished upstream stream said: the text, the calls, the finish reason and its usage. */
export interface DecodedStream {
  text: string;
  reasoning: string;
  toolCalls: GeneratedToolCall[];
  finishReason: GenerationFinishReason;
  promptTokens: number;
  cachedPromptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
}

/** An error frame inside an upstream's stream (`data: {"error": ...}`). */
export class UpstreamStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamStreamError';
  }
}

/**
 * Reads an OpenAI chat or completion stream chunk by chunk into the contract's deltas. Tool
 * calls are numbered in the order they start, whatever indices the upstream used; a call's
 * start is given once its name is known, and its argument fragments after it.
 */
export class OpenAiStreamDecoder {
  private text = '';
  private reasoning = '';
  private finish: string | null = null;
  private usage: WireChunk['usage'] = null;
  private outputChunks = 0;
  private readonly calls = new Map<number, { index: number; id: string; name: string; arguments: string; started: boolean }>();
  private nextCallIndex = 0;
  /** True once `[DONE]` or a finish reason with its usage was read. */
  done = false;

  constructor(private readonly newCallId: () => string) {}

  /** The deltas of one `data:` payload; throws for an error frame. */
  push(data: string): GenerationDelta[] {
    if (data.trim() === '[DONE]') {
      this.done = true;
      return [];
    }
    const chunk = JSON.parse(data) as WireChunk;
    if (chunk.error !== undefined && chunk.error !== null) {
      const error = chunk.error as { message?: unknown } | string;
      throw new UpstreamStreamError(typeof error === 'string' ? error : typeof error.message === 'string' ? error.message : JSON.stringify(error));
    }
    if (chunk.usage) this.usage = chunk.usage;
    const deltas: GenerationDelta[] = [];
    for (const choice of chunk.choices ?? []) {
      if (choice.finish_reason) this.finish = choice.finish_reason;
      const content = choice.text ?? choice.delta?.content;
      if (typeof content === 'string' && content !== '') {
        this.text += content;
        this.outputChunks += 1;
        deltas.push({ kind: 'content', text: content });
      }
      const thought = choice.delta?.reasoning_content ?? choice.delta?.reasoning;
      if (typeof thought === 'string' && thought !== '') {
        this.reasoning += thought;
        this.outputChunks += 1;
        deltas.push({ kind: 'reasoning', text: thought });
      }
      for (const call of choice.delta?.tool_calls ?? []) deltas.push(...this.toolCallDeltas(call));
    }
    return deltas;
  }

  private toolCallDeltas(wire: WireToolCallDelta): GenerationDelta[] {
    const key = wire.index ?? this.calls.size;
    let call = this.calls.get(key);
    if (call === undefined) {
      call = { index: -1, id: wire.id ?? '', name: '', arguments: '', started: false };
      this.calls.set(key, call);
    }
    if (wire.id !== undefined && wire.id !== '' && call.id === '') call.id = wire.id;
    if (wire.function?.name !== undefined && !call.started) call.name += wire.function.name;
    const fragment = wire.function?.arguments ?? '';
    const deltas: GenerationDelta[] = [];
    if (!call.started && call.name !== '') {
      call.started = true;
      call.index = this.nextCallIndex++;
      if (call.id === '') call.id = this.newCallId();
      deltas.push({ kind: 'tool-call-start', index: call.index, id: call.id, name: call.name });
      // Arguments that came before the name are given now, after the start.
      if (call.arguments !== '') deltas.push({ kind: 'tool-call-arguments', index: call.index, text: call.arguments });
    }
    call.arguments += fragment;
    if (call.started && fragment !== '') deltas.push({ kind: 'tool-call-arguments', index: call.index, text: fragment });
    this.outputChunks += fragment === '' ? 0 : 1;
    return deltas;
  }

  /** True when the stream said how it finished (a finish reason), so its end is not a cut. */
  get finished(): boolean {
    return this.done || this.finish !== null;
  }

  /** The whole answer. Without the upstream's usage, completion tokens are the output chunks (one token each on llama.cpp-family servers). */
  result(cancelled: boolean): DecodedStream {
    const toolCalls = [...this.calls.values()]
      .filter((call) => call.started)
      .sort((a, b) => a.index - b.index)
      .map((call) => ({ id: call.id, name: call.name, arguments: call.arguments }));
    const finishReason: GenerationFinishReason = cancelled
      ? 'cancelled'
      : this.finish === 'length'
        ? 'length'
        : this.finish === 'tool_calls' || this.finish === 'function_call' || toolCalls.length > 0
          ? 'tool_calls'
          : 'stop';
    return {
      text: this.text,
      reasoning: this.reasoning,
      toolCalls,
      finishReason,
      promptTokens: this.usage?.prompt_tokens ?? 0,
      cachedPromptTokens: this.usage?.prompt_tokens_details?.cached_tokens ?? 0,
      completionTokens: this.usage?.completion_tokens ?? this.outputChunks,
      reasoningTokens: this.usage?.completion_tokens_details?.reasoning_tokens ?? 0,
    };
  }
}
