import type { GenerationParams } from '@tabagent/model-cache';
import {
  InvalidRequestError,
  SamplingOptions,
  ollamaModelIdOf,
  requiredOllamaModelName,
  ToolDefinition,
  toFieldIssues,
  type ChatGenerationRequest,
  type CompletionGenerationRequest,
  type GenerationChatMessage,
  type GenerationResponseFormat,
  type GenerationTool,
  type OllamaMessage,
  type ReasoningSetting,
  type RouteRequest,
} from '@tabagent/values';
import { samplingWithDefaults, withDefaultSystemPrompt, type RequestedSampling } from '../generation-defaults.js';

// Ollama's chat and generate requests into the internal generation contract, once: every Ollama
// field name (`options.num_predict`, `format`, `think`, `images`, `tool_name`) is read here.

type OllamaChat = RouteRequest<'ollama.chat'>;
type OllamaGenerate = RouteRequest<'ollama.generate'>;

/** How the model is loaded when this request loads it (`options.num_ctx`, `options.num_thread`). */
export interface OllamaLoadOptions {
  contextSize?: number;
  threads?: number;
}

/** What every Ollama generation carries besides the contract's request. */
export interface OllamaGenerationParts {
  /** The name as the client wrote it (answers repeat it). */
  name: string;
  /** The model id it names on this server. */
  modelId: string;
  keepAlive: number | string | undefined;
  load: OllamaLoadOptions;
  /** Option names this server does not use (logged, never an error: Ollama ignores them too). */
  ignoredOptions: string[];
  stream: boolean;
}

/** Ollama option names mapped onto sampling, and llama-server's `ignore_eos`, which Ollama does not have. */
const samplingOptionNames: Readonly<Record<string, keyof RequestedSampling | 'num_ctx' | 'num_thread'>> = {
  num_predict: 'maxTokens',
  temperature: 'temperature',
  top_k: 'topK',
  top_p: 'topP',
  min_p: 'minP',
  repeat_penalty: 'repeatPenalty',
  seed: 'seed',
  stop: 'stop',
  presence_penalty: 'presencePenalty',
  frequency_penalty: 'frequencyPenalty',
  ignore_eos: 'ignoreEos',
  num_ctx: 'num_ctx',
  num_thread: 'num_thread',
};

/** Same bounds as every sampling field of this server (a temperature of 3 is a 400 here as on the OpenAI route). */
const OptionValues = SamplingOptions.pick({
  temperature: true,
  top_k: true,
  top_p: true,
  min_p: true,
  repeat_penalty: true,
  seed: true,
  stop: true,
  presence_penalty: true,
  frequency_penalty: true,
  ignore_eos: true,
  max_tokens: true,
}).extend({
  num_ctx: SamplingOptions.shape.max_tokens.unwrap().optional(),
  num_thread: SamplingOptions.shape.top_k.unwrap().optional(),
});

function invalid(issues: { path: string; message: string }[], what: string): InvalidRequestError {
  return new InvalidRequestError(
    `Invalid request for ${what}: ${issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ')}`,
    {
      issues,
    },
  );
}

/** Ollama's `options` as sampling and load settings; names it does not map are reported as ignored. */
function optionsOf(options: Record<string, unknown> | undefined, what: string): { sampling: RequestedSampling; load: OllamaLoadOptions; ignored: string[] } {
  const given: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value === null || value === undefined) continue;
    if (samplingOptionNames[key] === undefined) ignored.push(key);
    // -1 is "until the model stops", -2 "until the context is full": both are the default here.
    else if (key === 'num_predict') given['max_tokens'] = typeof value === 'number' && value < 0 ? -1 : value;
    else given[key] = value;
  }
  const parsed = OptionValues.safeParse(given);
  if (!parsed.success) {
    throw invalid(
      toFieldIssues(parsed.error).map((issue) => ({ ...issue, path: `options.${issue.path === 'max_tokens' ? 'num_predict' : issue.path}` })),
      what,
    );
  }
  const values = parsed.data;
  return {
    sampling: {
      temperature: values.temperature,
      topK: values.top_k,
      topP: values.top_p,
      minP: values.min_p,
      repeatPenalty: values.repeat_penalty,
      seed: values.seed,
      stop: values.stop === undefined ? undefined : typeof values.stop === 'string' ? [values.stop] : values.stop,
      presencePenalty: values.presence_penalty,
      frequencyPenalty: values.frequency_penalty,
      ignoreEos: values.ignore_eos,
      maxTokens: values.max_tokens,
    },
    load: {
      ...(values.num_ctx === undefined ? {} : { contextSize: values.num_ctx }),
      ...(values.num_thread === undefined ? {} : { threads: values.num_thread }),
    },
    ignored,
  };
}

/** Ollama's `format` ("json" or a JSON schema); none for absent or empty. */
function responseFormatOf(format: string | Record<string, unknown> | null | undefined): GenerationResponseFormat | undefined {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return { type: 'json_object' };
  if (typeof format === 'object') return { type: 'json_schema', schema: format };
  throw new InvalidRequestError(`invalid format: ${JSON.stringify(format)}; expected "json" or a valid JSON Schema object`, {
    issues: [{ path: 'format', message: 'expected "json" or a JSON schema' }],
  });
}

/** Ollama's `think`: false closes the thought, a level is an effort (`max` is the most there is, `high`), true or absent: as the template does. */
function reasoningOf(think: boolean | 'low' | 'medium' | 'high' | 'max' | undefined): ReasoningSetting | undefined {
  if (think === undefined || think === true) return undefined;
  if (think === false) return 'off';
  return think === 'max' ? 'high' : think;
}

/** Ollama's tools are OpenAI function tools; held to the same schema. */
function toolsOf(tools: readonly Record<string, unknown>[] | null | undefined, what: string): GenerationTool[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  return tools.map((tool, index) => {
    const parsed = ToolDefinition.safeParse(tool);
    if (!parsed.success)
      throw invalid(
        toFieldIssues(parsed.error).map((issue) => ({ ...issue, path: `tools.${index}.${issue.path}` })),
        what,
      );
    const { name, description, parameters } = parsed.data.function;
    return { name, description, parameters };
  });
}

const noImages = (images: readonly unknown[] | null | undefined, path: string): void => {
  if (images !== undefined && images !== null && images.length > 0) {
    throw new InvalidRequestError('images are not supported: the models of this server read text only', { issues: [{ path, message: 'not supported' }] });
  }
};

/**
 * Ollama's messages as the contract's. Ollama's tool calls carry no id and its tool results name
 * the function (`tool_name`), so ids are made for the calls and each result is matched to the
 * first open call of that name (or the first open call), which is how Ollama pairs them.
 */
function messagesOf(messages: readonly OllamaMessage[]): GenerationChatMessage[] {
  const open: { id: string; name: string }[] = [];
  let calls = 0;
  return messages.map((message, index): GenerationChatMessage => {
    noImages(message.images, `messages.${index}.images`);
    switch (message.role) {
      case 'system':
      case 'user':
        return { role: message.role, content: message.content };
      case 'assistant': {
        const toolCalls = (message.tool_calls ?? []).map((call) => {
          const id = call.id ?? `call_${calls++}`;
          open.push({ id, name: call.function.name });
          const args = call.function.arguments ?? {};
          return { id, name: call.function.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) };
        });
        return {
          role: 'assistant',
          content: message.content === '' && toolCalls.length > 0 ? null : message.content,
          ...(toolCalls.length > 0 ? { toolCalls } : {}),
        };
      }
      case 'tool': {
        const byId = message.tool_call_id === undefined ? -1 : open.findIndex((call) => call.id === message.tool_call_id);
        const byName = message.tool_name === undefined ? -1 : open.findIndex((call) => call.name === message.tool_name);
        const position = byId !== -1 ? byId : byName !== -1 ? byName : open.length > 0 ? 0 : -1;
        const call = position === -1 ? undefined : open.splice(position, 1)[0];
        return {
          role: 'tool',
          content: message.content,
          ...(call === undefined ? {} : { toolCallId: call.id }),
          ...(message.tool_name === undefined ? {} : { name: message.tool_name }),
        };
      }
      default:
        throw new InvalidRequestError(`messages.${index}.role must be system, user, assistant or tool, got "${message.role}"`, {
          issues: [{ path: `messages.${index}.role`, message: 'unknown role' }],
        });
    }
  });
}

function partsOf(body: OllamaChat | OllamaGenerate, what: string): OllamaGenerationParts & { sampling: RequestedSampling } {
  const name = requiredOllamaModelName(body);
  const { sampling, load, ignored } = optionsOf(body.options, what);
  return { name, modelId: ollamaModelIdOf(name), keepAlive: body.keep_alive, load, ignoredOptions: ignored, stream: body.stream !== false, sampling };
}

/** An Ollama chat: the contract's chat request, or null for an empty `messages` (load, or with `keep_alive: 0` unload). */
export function ollamaChatOf(body: OllamaChat, defaults: GenerationParams): OllamaGenerationParts & { request: ChatGenerationRequest | null } {
  const { sampling, ...parts } = partsOf(body, '/api/chat');
  if (body.messages === undefined || body.messages === null || body.messages.length === 0) return { ...parts, request: null };
  return {
    ...parts,
    request: {
      ...samplingWithDefaults(sampling, defaults),
      messages: withDefaultSystemPrompt(messagesOf(body.messages), defaults),
      tools: toolsOf(body.tools, '/api/chat'),
      responseFormat: responseFormatOf(body.format),
      reasoning: reasoningOf(body.think),
      keepAlive: body.keep_alive,
    },
  };
}

/**
 * An Ollama generate: the prompt through the chat template (with `system` before it), or as it is
 * with `raw: true` (a completion); null for an empty prompt (load or unload).
 */
export function ollamaGenerateOf(
  body: OllamaGenerate,
  defaults: GenerationParams,
): OllamaGenerationParts & { request: { kind: 'chat'; chat: ChatGenerationRequest } | { kind: 'completion'; completion: CompletionGenerationRequest } | null } {
  noImages(body.images, 'images');
  if (body.suffix !== undefined && body.suffix !== null && body.suffix !== '') {
    throw new InvalidRequestError('suffix (fill-in-the-middle) is not supported', { issues: [{ path: 'suffix', message: 'not supported' }] });
  }
  if (body.template !== undefined && body.template !== null && body.template !== '') {
    throw new InvalidRequestError("template is not supported: the model's own chat template is used (or send raw: true)", {
      issues: [{ path: 'template', message: 'not supported' }],
    });
  }
  const { sampling, ...parts } = partsOf(body, '/api/generate');
  const prompt = body.prompt ?? '';
  if (prompt === '') return { ...parts, request: null };
  const common = { ...samplingWithDefaults(sampling, defaults), responseFormat: responseFormatOf(body.format), keepAlive: body.keep_alive };
  if (body.raw === true) return { ...parts, request: { kind: 'completion', completion: { ...common, prompt } } };
  const system = body.system === undefined || body.system === null || body.system === '' ? [] : [{ role: 'system' as const, content: body.system }];
  return {
    ...parts,
    request: {
      kind: 'chat',
      chat: { ...common, messages: withDefaultSystemPrompt([...system, { role: 'user', content: prompt }], defaults), reasoning: reasoningOf(body.think) },
    },
  };
}
