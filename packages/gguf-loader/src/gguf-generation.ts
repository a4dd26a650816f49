import { randomUUID } from 'node:crypto';
import type {
  ChatModelFunctions,
  ChatWrapper,
  LlamaChatResponse,
  GbnfJsonSchema,
  Llama,
  LlamaContextSequence,
  LlamaGrammar,
  LLamaContextualRepeatPenalty,
  TokenBias,
} from 'node-llama-cpp';
import { LlamaChat, LlamaCompletion, TokenMeter } from 'node-llama-cpp';
import { InvalidRequestError, safeParseJson } from '@tabagent/values';
import { toChatHistory } from './chat-history.js';
import type {
  ChatGenerationRequest,
  CompletionGenerationRequest,
  GeneratedToolCall,
  GenerationFinishReason,
  GenerationRequestBase,
  GenerationResponseFormat,
  GenerationResult,
  GenerationTool,
} from './generation-types.js';

/** Everything one generation needs from its model. */
export interface GenerationTarget {
  modelId: string;
  llama: Llama;
  sequence: LlamaContextSequence;
  chatWrapper: 'auto' | ChatWrapper;
  /** The bias that forbids end-of-generation tokens (`ignoreEos`), built once per model. */
  endOfGenerationBias: () => TokenBias;
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
function samplingOf(target: GenerationTarget, request: GenerationRequestBase) {
  return {
    tokenBias: request.ignoreEos === true ? target.endOfGenerationBias() : undefined,
    temperature: request.temperature,
    topP: request.topP,
    topK: request.topK,
    minP: request.minP,
    seed: request.seed,
    maxTokens: request.maxTokens,
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
function cancelledGeneration(
  modelId: string,
  usage: { usedInputTokens: number; usedOutputTokens: number },
  clock: GenerationClock,
  promptLength: () => number,
): GenerationResult {
  const promptTokens = usage.usedInputTokens > 0 ? usage.usedInputTokens : promptLength();
  return {
    modelId,
    text: '',
    finishReason: 'cancelled',
    toolCalls: [],
    promptTokens,
    completionTokens: usage.usedOutputTokens,
    ...clock.finish(usage.usedOutputTokens),
  };
}

/** Runs one chat generation on an acquired sequence (its history is cleared first). */
export async function runChatGeneration(
  target: GenerationTarget,
  request: ChatGenerationRequest,
  push: (delta: string) => void,
  requestStart: number,
): Promise<GenerationResult> {
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

  let grammar = await grammarOf(target.llama, request.responseFormat);
  if (forced) {
    const chosen = typeof toolChoice === 'object' ? tools.filter((tool) => tool.name === toolChoice.name) : tools;
    grammar = await grammarOf(target.llama, { type: 'json_schema', schema: forcedToolCallSchema(chosen) as Record<string, unknown> });
  }

  await target.sequence.clearHistory();
  const meterBefore = target.sequence.tokenMeter.getState();
  const clock = new GenerationClock(requestStart);
  const chat = new LlamaChat({ contextSequence: target.sequence, chatWrapper: target.chatWrapper, autoDisposeSequence: false });
  try {
    const onTextChunk = (text: string): void => {
      if (text.length === 0) return;
      clock.mark();
      // A forced tool call is returned as tool_calls, not as content.
      if (!forced) push(text);
    };
    const common = { ...samplingOf(target, request), onTextChunk };
    const functions: ChatModelFunctions | undefined =
      tools.length > 0 && !forced
        ? Object.fromEntries(tools.map((tool) => [tool.name, { description: tool.description, params: tool.parameters as GbnfJsonSchema | undefined }]))
        : undefined;
    const response = await generateOrCancel<LlamaChatResponse<ChatModelFunctions> | LlamaChatResponse>(request.signal, () =>
      functions
        ? chat.generateResponse(history, { ...common, functions, documentFunctionParams: true })
        : chat.generateResponse(history, { ...common, grammar }),
    );
    const usage = TokenMeter.diff(target.sequence.tokenMeter, meterBefore);
    if (response === null) {
      // Stopped before the prompt was evaluated: report the prompt's length all the same.
      const promptTokens = () =>
        chat.chatWrapper
          .generateContextState({ chatHistory: history, availableFunctions: functions, documentFunctionParams: true })
          .contextText.tokenize(target.sequence.model.tokenizer).length;
      return cancelledGeneration(target.modelId, usage, clock, promptTokens);
    }
    let finishReason = finishReasonOf(response.metadata.stopReason);
    let text = response.response;
    const toolCalls: GeneratedToolCall[] = [];
    if (forced && finishReason === 'stop') {
      const parsed = safeParseJson(text);
      const call = parsed.success ? (parsed.value as { name?: unknown; arguments?: unknown }) : null;
      if (call && typeof call.name === 'string') {
        toolCalls.push({ id: toolCallId(), name: call.name, arguments: JSON.stringify(call.arguments ?? {}) });
        finishReason = 'tool_calls';
        text = '';
      }
    }
    for (const call of response.functionCalls ?? []) {
      toolCalls.push({ id: toolCallId(), name: call.functionName, arguments: JSON.stringify((call.params as unknown) ?? {}) });
    }
    if (toolCalls.length > 0 && finishReason === 'stop') finishReason = 'tool_calls';
    return {
      modelId: target.modelId,
      text,
      finishReason,
      toolCalls,
      promptTokens: usage.usedInputTokens,
      completionTokens: usage.usedOutputTokens,
      ...clock.finish(usage.usedOutputTokens),
    };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

/** Runs one raw prompt completion on an acquired sequence (its history is cleared first). */
export async function runCompletionGeneration(
  target: GenerationTarget,
  request: CompletionGenerationRequest,
  push: (delta: string) => void,
  requestStart: number,
): Promise<GenerationResult> {
  const grammar = await grammarOf(target.llama, request.responseFormat);
  await target.sequence.clearHistory();
  const meterBefore = target.sequence.tokenMeter.getState();
  const clock = new GenerationClock(requestStart);
  const completion = new LlamaCompletion({ contextSequence: target.sequence, autoDisposeSequence: false });
  try {
    const response = await generateOrCancel(request.signal, () =>
      completion.generateCompletionWithMeta(request.prompt, {
        ...samplingOf(target, request),
        grammar,
        onTextChunk: (text: string) => {
          if (text.length === 0) return;
          clock.mark();
          push(text);
        },
      }),
    );
    const usage = TokenMeter.diff(target.sequence.tokenMeter, meterBefore);
    if (response === null) return cancelledGeneration(target.modelId, usage, clock, () => target.sequence.model.tokenize(request.prompt).length);
    return {
      modelId: target.modelId,
      text: response.response,
      finishReason: finishReasonOf(response.metadata.stopReason),
      toolCalls: [],
      promptTokens: usage.usedInputTokens,
      completionTokens: usage.usedOutputTokens,
      ...clock.finish(usage.usedOutputTokens),
    };
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}
