/**
 * The one internal generation contract. Every wire dialect (OpenAI chat and completions, Ollama,
 * the extension's legacy actions, and the ones to come) converts its request to a
 * `ChatGenerationRequest` or `CompletionGenerationRequest` once, in its codec; every engine
 * (gguf-loader, upstreams) takes only these and answers a `GenerationRun`, which the codec turns
 * back into its wire shape once. No dialect's field names appear here: they are camel-cased and
 * named for what they mean.
 */

/** A keep-alive as requests send it: seconds (0 unloads after the request, negative keeps forever), or a duration ("30s", "5m", "1h30m"). */
export type KeepAlive = number | string;

/** Sampling settings of one generation (OpenAI and llama.cpp names, camel-cased). */
export interface SamplingSettings {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  /** llama.cpp repeat penalty (1 = off). */
  repeatPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Same seed, same prompt and settings: same output. */
  seed?: number;
  /** Most tokens to generate; absent: until the model stops or the context is full (finish reason `length`). */
  maxTokens?: number;
  /** Generation stops before any of these strings; they are not part of the text. */
  stop?: readonly string[];
  /** Never sample an end-of-generation token (llama-server's `ignore_eos`). */
  ignoreEos?: boolean;
  /** OpenAI's `logit_bias`: token id of this model's vocabulary to a bias added to its logit (-100 bans it). */
  logitBias?: ReadonlyMap<number, number>;
}

/** One part of a message's content: text, or an image (by URL or data URL) for models with vision. */
export type GenerationContentPart = { type: 'text'; text: string } | { type: 'image'; url: string };

/** One chat message (OpenAI roles). */
export interface GenerationChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function';
  /** Text, or parts (text and images); null for an assistant turn that only called tools. */
  content: string | null | readonly GenerationContentPart[];
  name?: string;
  toolCalls?: readonly GeneratedToolCall[];
  toolCallId?: string;
  /** An assistant turn's thinking, replayed in history (rendered where the template shows it). */
  reasoning?: string;
}

/** A tool the model may call (OpenAI function tool). */
export interface GenerationTool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters?: Record<string, unknown>;
}

/** How the output is constrained. */
export type GenerationResponseFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: Record<string, unknown> };

/** OpenAI `tool_choice`. */
export type GenerationToolChoice = 'none' | 'auto' | 'required' | { name: string };

/** Options shared by chat and completion runs. */
export interface GenerationRequestBase extends SamplingSettings {
  signal?: AbortSignal;
  /**
   * Reuse a sequence whose cached tokens start like this prompt, evaluating only the rest
   * (llama-server's `cache_prompt`; default true). false: evaluate the whole prompt again.
   */
  cachePrompt?: boolean;
  /** How long the model stays loaded after this request (see `parseKeepAlive`). */
  keepAlive?: KeepAlive;
  responseFormat?: GenerationResponseFormat;
}

/**
 * How much a reasoning model thinks: `off` closes its thought at once; an effort is given to
 * models whose chat format takes one (gpt-oss, through the Harmony wrapper) and ignored by others.
 */
export type ReasoningSetting = 'off' | 'low' | 'medium' | 'high';

/** A chat generation request. */
export interface ChatGenerationRequest extends GenerationRequestBase {
  messages: readonly GenerationChatMessage[];
  tools?: readonly GenerationTool[];
  toolChoice?: GenerationToolChoice;
  /** Absent: the model thinks as its chat template makes it. */
  reasoning?: ReasoningSetting;
  /** false: at most one tool call is returned (OpenAI's `parallel_tool_calls`). */
  parallelToolCalls?: boolean;
}

/**
 * One piece of a running generation, in order: answer text or a reasoning model's thinking; the
 * prompt's size once it is rendered and known to fit (before it is evaluated, so a stream can
 * open at once with the real input token count); and each tool call as it is generated, its
 * start (index, id and name) and then fragments of its JSON arguments, which concatenated are
 * exactly the call's `arguments` in the result.
 */
export type GenerationDelta =
  | { kind: 'content' | 'reasoning'; text: string }
  | { kind: 'prompt'; promptTokens: number }
  | { kind: 'tool-call-start'; index: number; id: string; name: string }
  | { kind: 'tool-call-arguments'; index: number; text: string };

/** A raw prompt completion request. */
export interface CompletionGenerationRequest extends GenerationRequestBase {
  /** Text, or token ids of the model's vocabulary (evaluated as given, after the model's BOS). */
  prompt: string | readonly number[];
}

/** A tool call the model made. `arguments` is JSON text. */
export interface GeneratedToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** Why a generation ended. */
export type GenerationFinishReason = 'stop' | 'length' | 'tool_calls' | 'cancelled';

/** The outcome of a generation, with real token counts and timings. */
export interface GenerationResult {
  modelId: string;
  /** The answer (for a reasoning model, without its thinking). */
  text: string;
  /** A reasoning model's thinking; empty when it did not think. */
  reasoning: string;
  finishReason: GenerationFinishReason;
  toolCalls: GeneratedToolCall[];
  /** Tokens of the whole prompt. */
  promptTokens: number;
  /** Prompt tokens reused from the sequence's KV cache instead of evaluated. */
  cachedPromptTokens: number;
  /** Generated tokens, thinking included. */
  completionTokens: number;
  /** Generated tokens that were thinking. */
  reasoningTokens: number;
  /** From the start of the request (queueing included) to the first text; null when no text came. */
  timeToFirstTokenMs: number | null;
  /** Completion tokens per second of decoding; null when nothing was generated. */
  tokensPerSecond: number | null;
  totalTimeMs: number;
}

/**
 * The one stream of events a generation produces, for codecs that speak events (each streamed
 * dialect is one mapping of it): `start` once; `prompt` when the prompt is known to fit; text,
 * reasoning and tool-call deltas in order; then each complete tool call (`tool-call`, also for
 * calls that were streamed, so a codec may take them whole) and `end` with the result (usage and
 * finish reason), or `error` instead of `end` when it failed.
 */
export type GenerationEvent =
  | { type: 'start'; modelId: string }
  | { type: 'prompt'; promptTokens: number }
  | { type: 'text-delta'; text: string }
  | { type: 'reasoning-delta'; text: string }
  | { type: 'tool-call-start'; index: number; id: string; name: string }
  | { type: 'tool-call-delta'; index: number; arguments: string }
  | { type: 'tool-call'; index: number; call: GeneratedToolCall }
  | { type: 'end'; result: GenerationResult }
  | { type: 'error'; error: unknown };
