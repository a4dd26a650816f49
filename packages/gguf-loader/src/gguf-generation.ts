import { randomUUID } from 'node:crypto';
import type {
  ChatModelFunctions,
  ChatWrapper,
  GbnfJsonSchema,
  Llama,
  LlamaChatResponse,
  LlamaChatResponseChunk,
  LlamaChatResponseFunctionCallParamsChunk,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
  LLamaContextualRepeatPenalty,
  Token,
  TokenBias,
} from 'node-llama-cpp';
import { LlamaChat, LlamaCompletion, LlamaVocabularyType, TokenMeter } from 'node-llama-cpp';
import { ContextLengthExceededError, InvalidRequestError, safeParseJson } from '@tabagent/values';
import { toChatHistory } from './chat-history.js';
import type {
  ChatGenerationRequest,
  CompletionGenerationRequest,
  GeneratedToolCall,
  GenerationDelta,
  GenerationFinishReason,
  GenerationRequestBase,
  GenerationResponseFormat,
  GenerationResult,
  GenerationTool,
  ReasoningSetting,
} from '@tabagent/values';

/** Everything one generation needs from its model. */
export interface GenerationTarget {
  modelId: string;
  llama: Llama;
  model: LlamaModel;
  /** Tokens each sequence holds. */
  contextSize: number;
  /** The model's chat wrapper, resolved once at load (a variant for a reasoning effort). */
  chatWrapper: (reasoning: ReasoningSetting | undefined) => ChatWrapper;
  /** The request's token bias (`logitBias`, `ignoreEos`), or undefined when it has none. */
  tokenBias: (request: GenerationRequestBase) => TokenBias | undefined;
  /** Size of the model's vocabulary (token ids are below it). */
  vocabularySize: number;
  /**
   * Whether the model's chat format has a tool-call syntax (a specialised wrapper, or a Jinja
   * template that renders tools). Without one the model was never taught to call tools.
   */
  toolSyntax: boolean;
  /**
   * A sequence for this prompt: the free one whose cached tokens share the longest prefix with it
   * (or a clean one when `reuse` is false or nothing matches). Waits while all are busy.
   */
  acquireSequence: (promptTokens: readonly Token[], reuse: boolean, signal: AbortSignal | undefined) => Promise<LlamaContextSequence>;
  releaseSequence: (sequence: LlamaContextSequence) => void;
}

/**
 * Tokens kept free beyond the prompt: node-llama-cpp may open a thought or inject a channel
 * prefix after rendering, and must have room for one generated token.
 */
const contextMargin = 8;

/**
 * The most tokens this prompt leaves room for, capped by the request's maxTokens. A prompt that
 * does not fit at all is a ContextLengthExceededError (OpenAI's code), never a hang or a crash.
 */
function tokenBudget(target: GenerationTarget, promptTokens: number, maxTokens: number | undefined): number {
  const room = target.contextSize - promptTokens - contextMargin;
  if (room < 1) {
    throw new ContextLengthExceededError(
      `The prompt has ${promptTokens} tokens; the context of ${target.modelId} holds ${target.contextSize} per sequence, leaving no room to generate`,
      { details: { prompt_tokens: promptTokens, context_size: target.contextSize } },
    );
  }
  return maxTokens === undefined ? room : Math.min(maxTokens, room);
}

/** Acquires a sequence for the prompt; null when the request was stopped while it waited. */
async function acquireFor(target: GenerationTarget, promptTokens: readonly Token[], request: GenerationRequestBase): Promise<LlamaContextSequence | null> {
  try {
    const sequence = await target.acquireSequence(promptTokens, request.cachePrompt !== false, request.signal);
    if (request.cachePrompt === false) await sequence.clearHistory();
    return sequence;
  } catch (error) {
    if (request.signal?.aborted === true) return null;
    throw error;
  }
}

/** Prompt tokens the sequence already holds: all the shared prefix but the last prompt token, which is evaluated again for its logits. */
function cachedTokensOf(sequence: LlamaContextSequence, promptTokens: readonly Token[]): number {
  return Math.max(0, Math.min(sequence.compareContextTokens([...promptTokens]).firstDifferentIndex, promptTokens.length - 1));
}

type StopReason = 'eogToken' | 'stopGenerationTrigger' | 'functionCalls' | 'maxTokens' | 'abort' | 'customStopTrigger';

function finishReasonOf(stopReason: StopReason): GenerationFinishReason {
  switch (stopReason) {
    case 'maxTokens':
      return 'length';
    case 'abort':
      return 'cancelled';
    case 'functionCalls':
      return 'tool_calls';
    default:
      return 'stop';
  }
}

function repeatPenaltyOf(request: GenerationRequestBase): LLamaContextualRepeatPenalty | false {
  const penalty = request.repeatPenalty ?? 1;
  const frequencyPenalty = request.frequencyPenalty ?? 0;
  const presencePenalty = request.presencePenalty ?? 0;
  if (penalty === 1 && frequencyPenalty === 0 && presencePenalty === 0) return false;
  return {
    penalty,
    frequencyPenalty: frequencyPenalty === 0 ? undefined : frequencyPenalty,
    presencePenalty: presencePenalty === 0 ? undefined : presencePenalty,
  };
}

async function grammarOf(llama: Llama, format: GenerationResponseFormat | undefined): Promise<LlamaGrammar | undefined> {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return llama.getGrammarFor('json');
  try {
    // The schema is only known at run time; node-llama-cpp's generic typing wants a literal.
    const createGrammar = llama.createGrammarForJsonSchema.bind(llama) as (schema: GbnfJsonSchema) => Promise<LlamaGrammar>;
    return await createGrammar(format.schema as GbnfJsonSchema);
  } catch (error) {
    throw new InvalidRequestError(`response_format.json_schema.schema is not supported: ${(error as Error).message}`, { cause: error });
  }
}

/** Sampling options in node-llama-cpp's names (shared by chat and completion). */
function samplingOf(target: GenerationTarget, request: GenerationRequestBase, maxTokens: number) {
  return {
    tokenBias: target.tokenBias(request),
    temperature: request.temperature,
    topP: request.topP,
    topK: request.topK,
    minP: request.minP,
    seed: request.seed,
    maxTokens,
    repeatPenalty: repeatPenaltyOf(request),
    customStopTriggers: request.stop && request.stop.length > 0 ? [...request.stop] : undefined,
    signal: request.signal,
    stopOnAbortSignal: true,
  };
}

/** Times a generation: time to first text and decode speed. */
class GenerationClock {
  private readonly start = performance.now();
  private firstAt: number | null = null;
  constructor(private readonly requestStart: number) {}
  mark(): void {
    this.firstAt ??= performance.now();
  }
  finish(completionTokens: number): Pick<GenerationResult, 'timeToFirstTokenMs' | 'tokensPerSecond' | 'totalTimeMs'> {
    const end = performance.now();
    const decodeMs = this.firstAt === null ? end - this.start : end - this.firstAt;
    return {
      timeToFirstTokenMs: this.firstAt === null ? null : this.firstAt - this.requestStart,
      // The first token is produced by prompt processing; the rest are decode steps.
      tokensPerSecond: completionTokens > 1 && decodeMs > 0 ? ((completionTokens - 1) * 1000) / decodeMs : null,
      totalTimeMs: end - this.requestStart,
    };
  }
}

/**
 * Runs node-llama-cpp's generation. Its stopOnAbortSignal only covers an abort once the response
 * has started; an abort during prompt evaluation rejects with the signal's AbortError, which is a
 * stop all the same: it becomes an empty response with the tokens evaluated so far.
 */
async function generateOrCancel<Response>(signal: AbortSignal | undefined, generate: () => Promise<Response>): Promise<Response | null> {
  try {
    return await generate();
  } catch (error) {
    if (signal?.aborted === true) return null;
    throw error;
  }
}

function toolCallId(): string {
  return `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

/**
 * Tool calls pushed as they are generated: the first fragment of each call pushes its start
 * (index, a new id, the name), every fragment its argument text. `complete` gives the calls of the
 * result with the ids already sent and, as arguments, exactly the text streamed (so the fragments
 * a client concatenates equal the final arguments), or the parsed value's JSON where nothing was
 * streamed for a call.
 */
class StreamedToolCalls {
  private readonly started: { id: string; name: string; text: string }[] = [];
  constructor(private readonly push: (delta: GenerationDelta) => void) {}

  fragment(index: number, name: string, text: string): void {
    let call = this.started[index];
    if (call === undefined) {
      call = { id: toolCallId(), name, text: '' };
      this.started[index] = call;
      this.push({ kind: 'tool-call-start', index, id: call.id, name });
    }
    if (text.length === 0) return;
    call.text += text;
    this.push({ kind: 'tool-call-arguments', index, text });
  }

  complete(parsed: readonly { name: string; params: unknown }[]): GeneratedToolCall[] {
    return parsed.map((call, index) => {
      const streamed = this.started[index];
      const text = streamed?.text.trim() ?? '';
      const argumentsText = streamed !== undefined && streamed.name === call.name && safeParseJson(text).success ? text : JSON.stringify(call.params ?? {});
      if (streamed === undefined) this.fragment(index, call.name, argumentsText);
      return { id: this.started[index]?.id ?? toolCallId(), name: call.name, arguments: argumentsText };
    });
  }
}

/**
 * Reads a forced tool call (a grammar makes the model write `{"name": "...", "arguments": ...}`)
 * as it is generated: once the name is read, the call starts, and the arguments' text is pushed as
 * it comes, holding back the closing brace and spaces that may end the outer object. `finish`
 * takes the whole text and gives the call, its arguments exactly the fragments pushed.
 */
class ForcedToolCallReader {
  private static readonly head = /^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*/;
  private text = '';
  private name: string | null = null;
  private argumentsStart = 0;
  private sent = 0;
  constructor(private readonly calls: StreamedToolCalls) {}

  read(chunk: string): void {
    this.text += chunk;
    if (this.name === null) {
      const match = ForcedToolCallReader.head.exec(this.text);
      if (match === null) return;
      this.name = JSON.parse(match[1] as string) as string;
      this.argumentsStart = match[0].length;
      this.sent = this.argumentsStart;
      this.calls.fragment(0, this.name, '');
    }
    // What may be the end of the outer object (`}` and spaces) waits until more text follows it.
    const body = this.text.slice(0, this.text.length - (/[\s}]*$/.exec(this.text)?.[0].length ?? 0));
    if (body.length > this.sent) {
      this.calls.fragment(0, this.name, body.slice(this.sent));
      this.sent = body.length;
    }
  }

  finish(text: string): GeneratedToolCall | null {
    const parsed = safeParseJson(text);
    const call = parsed.success ? (parsed.value as { name?: unknown; arguments?: unknown }) : null;
    if (call === null || typeof call.name !== 'string') return null;
    if (this.name !== null) {
      // The arguments are the text after `"arguments":`, less the outer object's closing brace.
      const argumentsText = text.slice(this.argumentsStart).replace(/\s*\}\s*$/, '');
      const sentLength = this.sent - this.argumentsStart;
      if (argumentsText.length > sentLength) this.calls.fragment(0, this.name, argumentsText.slice(sentLength));
    }
    return this.calls.complete([{ name: call.name, params: call.arguments }])[0] ?? null;
  }
}

/** JSON schema for a forced tool call: `{name, arguments}` for one of the given tools. */
function forcedToolCallSchema(tools: readonly GenerationTool[]): GbnfJsonSchema {
  const variants = tools.map((tool) => ({
    type: 'object',
    properties: { name: { const: tool.name }, arguments: tool.parameters ?? { type: 'object', properties: {} } },
    required: ['name', 'arguments'],
  }));
  return (variants.length === 1 ? variants[0] : { oneOf: variants }) as GbnfJsonSchema;
}

/** The result of a generation stopped before its response started. */
function cancelledGeneration(modelId: string, promptTokens: number, clock: GenerationClock): GenerationResult {
  return {
    modelId,
    text: '',
    reasoning: '',
    finishReason: 'cancelled',
    toolCalls: [],
    promptTokens,
    cachedPromptTokens: 0,
    completionTokens: 0,
    reasoningTokens: 0,
    ...clock.finish(0),
  };
}

/**
 * The prompt of a chat request as LlamaChat will evaluate it (the same rendering call), with what
 * the generation needs to run it: checked (tool choice, tool support), not yet measured against
 * the context. Its tokens are what `count_tokens` reports and what the sequence is chosen by.
 */
function renderChatPrompt(target: GenerationTarget, request: ChatGenerationRequest) {
  const history = toChatHistory(request.messages);
  const tools = request.toolChoice === 'none' ? [] : (request.tools ?? []);
  const toolChoice = request.toolChoice ?? 'auto';
  const forced = tools.length > 0 && (toolChoice === 'required' || typeof toolChoice === 'object');
  if (typeof toolChoice === 'object' && !tools.some((tool) => tool.name === toolChoice.name)) {
    throw new InvalidRequestError(`tool_choice names "${toolChoice.name}", which is not in tools`);
  }
  if (tools.length > 0 && request.responseFormat !== undefined && request.responseFormat.type !== 'text') {
    throw new InvalidRequestError('tools and a JSON response_format cannot be combined');
  }
  // node-llama-cpp would describe the tools in a generic syntax of its own, which a model whose
  // template has none was never trained on: it would answer in text (or write tool JSON as text),
  // and the client would never see a call. Refused, saying why, as llama-server refuses tools
  // without a tool-aware template.
  if (tools.length > 0 && !target.toolSyntax) {
    throw new InvalidRequestError(`Model ${target.modelId} does not support tools: its chat template has no tool-call syntax`, {
      issues: [{ path: 'tools', message: 'this model does not support tools' }],
    });
  }
  const functions: ChatModelFunctions | undefined =
    tools.length > 0 && !forced
      ? Object.fromEntries(tools.map((tool) => [tool.name, { description: tool.description, params: tool.parameters as GbnfJsonSchema | undefined }]))
      : undefined;
  const chatWrapper = target.chatWrapper(request.reasoning);
  const promptTokens = chatWrapper
    .generateContextState({ chatHistory: history, availableFunctions: functions, documentFunctionParams: true })
    .contextText.tokenize(target.model.tokenizer);
  return { history, tools, toolChoice, forced, functions, chatWrapper, promptTokens };
}

/** The token ids of a chat request's rendered prompt, exactly as a generation of it would evaluate them. */
export function chatPromptTokens(target: GenerationTarget, request: ChatGenerationRequest): number[] {
  return [...renderChatPrompt(target, request).promptTokens];
}

/**
 * Runs one chat generation: renders the prompt with the model's chat wrapper (resolved once at
 * load), checks it fits, takes the sequence that holds the longest prefix of it, and generates.
 * Thinking (thought segments) is pushed as reasoning, apart from the answer.
 */
export async function runChatGeneration(
  target: GenerationTarget,
  request: ChatGenerationRequest,
  push: (delta: GenerationDelta) => void,
  requestStart: number,
): Promise<GenerationResult> {
  const clock = new GenerationClock(requestStart);
  const { history, tools, toolChoice, forced, functions, chatWrapper, promptTokens } = renderChatPrompt(target, request);
  let grammar = await grammarOf(target.llama, request.responseFormat);
  if (forced) {
    const chosen = typeof toolChoice === 'object' ? tools.filter((tool) => tool.name === toolChoice.name) : tools;
    grammar = await grammarOf(target.llama, { type: 'json_schema', schema: forcedToolCallSchema(chosen) as Record<string, unknown> });
  }
  const maxTokens = tokenBudget(target, promptTokens.length, request.maxTokens);
  push({ kind: 'prompt', promptTokens: promptTokens.length });

  const sequence = await acquireFor(target, promptTokens, request);
  if (sequence === null) return cancelledGeneration(target.modelId, promptTokens.length, clock);
  const cachedPromptTokens = cachedTokensOf(sequence, promptTokens);
  const meterBefore = sequence.tokenMeter.getState();
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper, autoDisposeSequence: false });
  let reasoningTokens = 0;
  // Tool calls as they are generated: a forced call's `{name, arguments}` text is read as it
  // comes; a free call comes from node-llama-cpp's function-call syntax, chunk by chunk.
  const calls = new StreamedToolCalls(push);
  const forcedReader = forced ? new ForcedToolCallReader(calls) : null;
  try {
    const onResponseChunk = (chunk: LlamaChatResponseChunk): void => {
      if (chunk.type === 'segment') {
        if (chunk.segmentType !== 'thought') return;
        reasoningTokens += chunk.tokens.length;
        if (chunk.text.length === 0) return;
        clock.mark();
        push({ kind: 'reasoning', text: chunk.text });
        return;
      }
      if (chunk.text.length === 0) return;
      clock.mark();
      // A forced tool call is returned as tool_calls, not as content.
      if (forcedReader) forcedReader.read(chunk.text);
      else push({ kind: 'content', text: chunk.text });
    };
    const common = {
      ...samplingOf(target, request, maxTokens),
      onResponseChunk,
      // Thinking switched off: a thought that opens is closed at once (node-llama-cpp's segment budget).
      ...(request.reasoning === 'off' ? { budgets: { thoughtTokens: 0 } } : {}),
    };
    const onFunctionCallParamsChunk = (chunk: LlamaChatResponseFunctionCallParamsChunk): void => {
      clock.mark();
      calls.fragment(chunk.callIndex, chunk.functionName, chunk.paramsChunk);
    };
    const response = await generateOrCancel<LlamaChatResponse<ChatModelFunctions> | LlamaChatResponse>(request.signal, () =>
      functions
        ? chat.generateResponse(history, {
            ...common,
            functions,
            documentFunctionParams: true,
            onFunctionCallParamsChunk,
            ...(request.parallelToolCalls === false ? { maxParallelFunctionCalls: 1 } : {}),
          })
        : chat.generateResponse(history, { ...common, grammar }),
    );
    const usage = TokenMeter.diff(sequence.tokenMeter, meterBefore);
    if (response === null)
      return {
        ...cancelledGeneration(target.modelId, promptTokens.length, clock),
        cachedPromptTokens,
        completionTokens: usage.usedOutputTokens,
        reasoningTokens,
      };
    let finishReason = finishReasonOf(response.metadata.stopReason);
    let text = response.response;
    let toolCalls: GeneratedToolCall[] = [];
    if (forcedReader) {
      const call = finishReason === 'stop' ? forcedReader.finish(text) : null;
      if (call !== null) {
        toolCalls = [call];
        finishReason = 'tool_calls';
      }
      // A forced call cut short (max tokens) is no call, and never its JSON as the answer's text.
      text = '';
    }
    if (functions) toolCalls = calls.complete((response.functionCalls ?? []).map((call) => ({ name: call.functionName, params: call.params })));
    if (request.parallelToolCalls === false) toolCalls.splice(1);
    if (toolCalls.length > 0 && finishReason === 'stop') finishReason = 'tool_calls';
    const reasoning = response.fullResponse.flatMap((part) => (typeof part !== 'string' && part.segmentType === 'thought' ? [part.text] : [])).join('');
    return {
      modelId: target.modelId,
      text,
      reasoning,
      finishReason,
      toolCalls,
      promptTokens: promptTokens.length,
      cachedPromptTokens,
      completionTokens: usage.usedOutputTokens,
      reasoningTokens,
      ...clock.finish(usage.usedOutputTokens),
    };
  } finally {
    chat.dispose({ disposeSequence: false });
    target.releaseSequence(sequence);
  }
}

/** The token LlamaCompletion puts before the input (node-llama-cpp's resolveBeginningTokenToPrepend, utils/tokenizerUtils.js). */
function beginningTokenOf(model: LlamaModel): Token | null {
  if (model.vocabularyType === LlamaVocabularyType.rwkv || model.vocabularyType === LlamaVocabularyType.ugm) return null;
  if (model.vocabularyType === LlamaVocabularyType.wpm || model.tokens.shouldPrependBosToken) return model.tokens.bos;
  return null;
}

/**
 * A text prompt tokenized as LlamaCompletion tokenizes it (special tokens off, a leading space
 * trimmed when a beginning token goes first): `input` is handed to it as tokens, so the tokens it
 * evaluates (`evaluated`) are exactly the ones the sequence is chosen by.
 */
function completionPromptTokens(target: GenerationTarget, prompt: string | readonly number[]): { input: Token[]; evaluated: Token[] } {
  const model = target.model;
  const beginning = beginningTokenOf(model);
  if (typeof prompt !== 'string') {
    const outside = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= target.vocabularySize);
    if (outside !== undefined) {
      throw new InvalidRequestError(`prompt has token id ${outside}, which is not in this model's vocabulary of ${target.vocabularySize}`, {
        issues: [{ path: 'prompt', message: 'unknown token id' }],
      });
    }
  }
  const input = typeof prompt === 'string' ? model.tokenize(prompt, false, beginning === null ? undefined : 'trimLeadingSpace') : (prompt as Token[]);
  return { input, evaluated: beginning === null ? input : [beginning, ...input] };
}

/** Runs one raw prompt completion on the sequence that holds the longest prefix of the prompt. */
export async function runCompletionGeneration(
  target: GenerationTarget,
  request: CompletionGenerationRequest,
  push: (delta: GenerationDelta) => void,
  requestStart: number,
): Promise<GenerationResult> {
  const clock = new GenerationClock(requestStart);
  const grammar = await grammarOf(target.llama, request.responseFormat);
  const { input, evaluated: promptTokens } = completionPromptTokens(target, request.prompt);
  const maxTokens = tokenBudget(target, promptTokens.length, request.maxTokens);
  push({ kind: 'prompt', promptTokens: promptTokens.length });
  const sequence = await acquireFor(target, promptTokens, request);
  if (sequence === null) return cancelledGeneration(target.modelId, promptTokens.length, clock);
  const cachedPromptTokens = cachedTokensOf(sequence, promptTokens);
  const meterBefore = sequence.tokenMeter.getState();
  const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
  try {
    const response = await generateOrCancel(request.signal, () =>
      completion.generateCompletionWithMeta(input, {
        ...samplingOf(target, request, maxTokens),
        grammar,
        // The budget above keeps prompt and output inside the context; without these a prompt too
        // long would be cut from the front silently (to the context less a shift size).
        disableContextShift: true,
        contextShiftSize: 0,
        onTextChunk: (text: string) => {
          if (text.length === 0) return;
          clock.mark();
          push({ kind: 'content', text });
        },
      }),
    );
    const usage = TokenMeter.diff(sequence.tokenMeter, meterBefore);
    if (response === null)
      return { ...cancelledGeneration(target.modelId, promptTokens.length, clock), cachedPromptTokens, completionTokens: usage.usedOutputTokens };
    return {
      modelId: target.modelId,
      text: response.response,
      reasoning: '',
      finishReason: finishReasonOf(response.metadata.stopReason),
      toolCalls: [],
      promptTokens: promptTokens.length,
      cachedPromptTokens,
      completionTokens: usage.usedOutputTokens,
      reasoningTokens: 0,
      ...clock.finish(usage.usedOutputTokens),
    };
  } finally {
    completion.dispose({ disposeSequence: false });
    target.releaseSequence(sequence);
  }
}
