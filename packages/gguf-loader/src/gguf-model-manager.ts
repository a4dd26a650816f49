import { stat } from 'node:fs/promises';
import type { ChatWrapper, Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import {
  chatTemplateBudgetError,
  chatTemplateBudgetTrips,
  chatTemplateLastStop,
  chatTemplateRenderBudgetMs,
  installChatTemplateBudget,
} from './chat-template-budget.js';
import { GeneralChatWrapper, getLlama, GgufInsights, HarmonyChatWrapper, LlamaLogLevel, readGgufFileInfo, resolveChatWrapper } from 'node-llama-cpp';
import { CancelledError, InvalidModelError, InvalidRequestError, ModelNotLoadedError, OutOfMemoryError, TabAgentError } from '@tabagent/values';
import { endOfGenerationTokens, requestTokenBias } from './end-of-generation-bias.js';
import { GenerationRunController, type GenerationRun } from '@tabagent/values';
import { chatPromptTokens, runChatGeneration, runCompletionGeneration, type GenerationTarget } from './gguf-generation.js';
import type { ChatGenerationRequest, CompletionGenerationRequest, GenerationDelta, GenerationResult, ReasoningSetting } from '@tabagent/values';
import { inspectGgufFile, type GgufModelInfo } from './gguf-model-info.js';
import { GgufTextEmbedder } from './gguf-text-embedder.js';
import { parseKeepAlive, type KeepAlive } from './keep-alive.js';
import { silentLogger, type Logger } from '@tabagent/values';
import { SequencePool } from './sequence-pool.js';

/** Free memory, in bytes, as the hardware package reports it. */
export interface AvailableMemory {
  ramBytes: number;
  vramBytes: number;
}

/** GPU layers to offload: a count, "auto" (what fits) or "max" (all). */
export type GpuLayersOption = number | 'auto' | 'max';

/** Options of `createGgufModelManager`. */
export interface GgufModelManagerOptions {
  /** GPU backend: "auto" (with CPU fallback, the default) or false for CPU only. */
  gpu?: 'auto' | false;
  /** Threads when a load names none: the server passes the physical core count (default 1). */
  defaultThreads?: number;
  /** Context size when a load names none, capped by the model's trained context (default 4096). */
  defaultContextSize?: number;
  /** Parallel sequences per loaded model; more requests queue (default 4). */
  sequences?: number;
  /**
   * Grow a loaded model's context when a prompt does not fit it (reloading the model, within its
   * trained context and the memory available), instead of refusing the prompt (default true).
   */
  growContext?: boolean;
  /**
   * Requests that may wait per loaded model beyond its sequences (default 64, Ollama's
   * OLLAMA_MAX_QUEUE is 512 for a server with more cores); more are refused with 429.
   */
  maxQueued?: number;
  /** Batch size of new contexts (default: node-llama-cpp's). */
  batchSize?: number;
  /** Keep-alive when neither the load nor the request names one (default "5m"). */
  defaultKeepAlive?: KeepAlive;
  /** Free RAM/VRAM before a load (the hardware package); without it no memory check is made. */
  availableMemory?: () => Promise<AvailableMemory>;
  /**
   * Chat wrapper for every model: "auto" (the default) resolves it from the GGUF's template;
   * "general" or a wrapper instance overrides it (tests use "general" for stable prompts).
   */
  chatWrapper?: 'auto' | 'general' | ChatWrapper;
  logger?: Logger;
  /** An existing Llama instance (not disposed by the manager). */
  llama?: Llama;
}

/** Options of one load. */
export interface GgufLoadOptions {
  contextSize?: number;
  gpuLayers?: GpuLayersOption;
  threads?: number;
  batchSize?: number;
  sequences?: number;
  keepAlive?: KeepAlive;
  /** Skip the memory check (the caller checked already). */
  skipMemoryCheck?: boolean;
}

/** A loaded model as the manager reports it. */
export interface LoadedGgufModel {
  id: string;
  path: string;
  info: GgufModelInfo;
  loadedAt: Date;
  lastUsedAt: Date;
  /** When the keep-alive ends; null while generating or when kept forever. */
  expiresAt: Date | null;
  /** Context size of the generation context (null for embedding-only models). */
  contextSize: number | null;
  sequences: number;
  gpuLayers: number;
  totalLayers: number;
  /** "cpu", or the GPU backend ("cuda", "vulkan", "metal") when layers were offloaded. */
  device: string;
  threads: number;
  /** Estimated memory of weights plus context. */
  memoryBytes: number;
  loadTimeMs: number;
  /** Generations running or waiting on this model. */
  activeGenerations: number;
  /** Of those, generations waiting for a free sequence. */
  queuedGenerations: number;
}

/** node-llama-cpp's memory estimate for a model and context. */
export interface GgufMemoryEstimate {
  path: string;
  gpuLayers: number;
  totalLayers: number;
  contextSize: number;
  ramBytes: number;
  vramBytes: number;
  available: AvailableMemory | null;
  fitsInRam: boolean;
  fitsInVram: boolean;
  canLoad: boolean;
  reason: string | null;
}

/** Loads GGUF models once and runs generations on them. */
export interface GgufModelManager extends AsyncDisposable {
  /** Validates, checks memory and loads; a second load of the same id returns the loaded model. */
  load(id: string, path: string, options?: GgufLoadOptions): Promise<{ model: LoadedGgufModel; alreadyLoaded: boolean }>;
  /** Unloads a model, cancelling its generations. False when it was not loaded. */
  unload(id: string): Promise<boolean>;
  get(id: string): LoadedGgufModel | undefined;
  list(): LoadedGgufModel[];
  /** Memory the model at `path` would need, from node-llama-cpp's estimate. */
  estimate(path: string, options?: { contextSize?: number; gpuLayers?: GpuLayersOption; sequences?: number }): Promise<GgufMemoryEstimate>;
  /** Starts a chat generation on a loaded model; its deltas are answer text and thinking. */
  chat(id: string, request: ChatGenerationRequest): GenerationRun<GenerationResult, GenerationDelta>;
  /** Starts a raw prompt completion on a loaded model. */
  complete(id: string, request: CompletionGenerationRequest): GenerationRun<GenerationResult, GenerationDelta>;
  /** The tokens of a chat request's rendered prompt, exactly as its generation would evaluate them. */
  countChatTokens(id: string, request: ChatGenerationRequest): Promise<number>;
  /** The token ids of that prompt (special tokens as their ids). */
  chatPromptTokens(id: string, request: ChatGenerationRequest): Promise<number[]>;
  /** The embedder of a loaded model (created on first use). */
  embedder(id: string): Promise<GgufTextEmbedder>;
  /** The GPU backend in use, or "cpu". */
  device(): Promise<string>;
  /** Unloads everything and frees the backend (idempotent). */
  dispose(): Promise<void>;
}

interface ModelEntry {
  id: string;
  path: string;
  info: GgufModelInfo;
  model: LlamaModel;
  context: LlamaContext | null;
  pool: SequencePool<LlamaContextSequence> | null;
  embedder: Promise<GgufTextEmbedder> | null;
  /** Found on the first `ignoreEos` request (a scan of the vocabulary). */
  endOfGenerationTokens: Token[] | null;
  /** Resolved once at load: resolving per request re-runs node-llama-cpp's Jinja matching (hundreds of ms). */
  chatWrapper: ChatWrapper;
  /** Variants of a Harmony (gpt-oss) wrapper for a reasoning effort, made on first use. */
  chatWrapperVariants: Map<ReasoningSetting, ChatWrapper>;
  loadedAt: Date;
  lastUsedAt: Date;
  keepAliveMs: number;
  timer: NodeJS.Timeout | null;
  expiresAt: Date | null;
  contextSize: number | null;
  sequences: number;
  threads: number;
  memoryBytes: number;
  loadTimeMs: number;
  active: Set<Promise<unknown>>;
  unloading: AbortController;
}

const megabyte = 1024 * 1024;

/** Default implementation of `GgufModelManager` on node-llama-cpp. */
export class NodeLlamaModelManager implements GgufModelManager {
  private llamaPromise: Promise<Llama> | null = null;
  private readonly entries = new Map<string, ModelEntry>();
  private readonly loading = new Map<string, Promise<ModelEntry>>();
  /** How each model was last loaded (file and options): a generation whose model was unloaded under it loads it again. */
  private readonly lastLoads = new Map<string, { path: string; options: GgufLoadOptions }>();
  /** Context growths in progress, by model: requests that overflow together wait for one. */
  private readonly growing = new Map<string, Promise<boolean>>();
  private readonly logger: Logger;
  private disposed = false;
  /** Aborted by dispose(): loads in progress give up instead of holding the shutdown. */
  private readonly disposing = new AbortController();
  private disposePromise: Promise<void> | null = null;

  private readonly chatWrapper: 'auto' | ChatWrapper;

  constructor(private readonly options: GgufModelManagerOptions = {}) {
    // A chat template comes with the model file: its rendering runs on the event loop, so it gets a time budget.
    installChatTemplateBudget();
    this.logger = options.logger ?? silentLogger;
    this.chatWrapper = options.chatWrapper === 'general' ? new GeneralChatWrapper() : (options.chatWrapper ?? 'auto');
  }

  private getLlama(): Promise<Llama> {
    if (this.options.llama) return Promise.resolve(this.options.llama);
    this.llamaPromise ??= this.createLlama();
    return this.llamaPromise;
  }

  private async createLlama(): Promise<Llama> {
    const logger = (level: LlamaLogLevel, message: string): void => {
      const text = message.trim();
      if (text.length === 0) return;
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) this.logger.error({ source: 'llama.cpp' }, text);
      else if (level === LlamaLogLevel.warn) this.logger.warn({ source: 'llama.cpp' }, text);
      else this.logger.debug({ source: 'llama.cpp' }, text);
    };
    const common = { build: 'never' as const, logLevel: LlamaLogLevel.warn, logger, progressLogs: false };
    if (this.options.gpu === false) return getLlama({ ...common, gpu: false });
    try {
      return await getLlama({ ...common, gpu: 'auto' });
    } catch (error) {
      this.logger.warn({ err: error }, 'No usable GPU build of llama.cpp; falling back to CPU');
      return getLlama({ ...common, gpu: false });
    }
  }

  async device(): Promise<string> {
    const llama = await this.getLlama();
    return llama.gpu === false ? 'cpu' : llama.gpu;
  }

  private defaultKeepAliveMs(): number {
    return parseKeepAlive(this.options.defaultKeepAlive ?? '5m');
  }

  private async resolveGpuLayers(llama: Llama, insights: GgufInsights, option: GpuLayersOption | undefined): Promise<number> {
    if (llama.gpu === false || !llama.supportsGpuOffloading) return 0;
    const total = insights.totalLayers;
    if (option === 'max') return total;
    if (typeof option === 'number') return Math.min(option, total);
    try {
      // The V1 estimates (deprecated) are arithmetic on the GGUF metadata; V2 simulates a load inside
      // llama.cpp, which a file not yet trusted must not reach (a malformed one can abort the process).
      // eslint-disable-next-line @typescript-eslint/no-deprecated
      return await insights.configurationResolver.resolveModelGpuLayers('auto', { getVramState: () => llama.getVramState() });
    } catch {
      return 0;
    }
  }

  async estimate(path: string, options: { contextSize?: number; gpuLayers?: GpuLayersOption; sequences?: number } = {}): Promise<GgufMemoryEstimate> {
    const info = await inspectGgufFile(path);
    return this.estimateFor(path, info, options);
  }

  private async estimateFor(
    path: string,
    info: GgufModelInfo,
    options: { contextSize?: number; gpuLayers?: GpuLayersOption; sequences?: number; batchSize?: number },
  ): Promise<GgufMemoryEstimate> {
    const llama = await this.getLlama();
    let insights: GgufInsights;
    try {
      insights = await GgufInsights.from(await readGgufFileInfo(path), llama);
    } catch (error) {
      throw new InvalidModelError(`Cannot read GGUF metadata of ${path}: ${(error as Error).message}`, { cause: error });
    }
    const gpuLayers = await this.resolveGpuLayers(llama, insights, options.gpuLayers);
    const contextSize = this.contextSizeFor(info, options.contextSize);
    const sequences = info.embeddingOnly ? 1 : (options.sequences ?? this.options.sequences ?? 4);
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- arithmetic only, see resolveGpuLayers
    const model = insights.estimateModelResourceRequirements({ gpuLayers });
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- arithmetic only, see resolveGpuLayers
    const context = insights.estimateContextResourceRequirements({
      contextSize,
      modelGpuLayers: gpuLayers,
      sequences,
      batchSize: options.batchSize ?? this.options.batchSize,
      isEmbeddingContext: info.embeddingOnly,
    });
    const ramBytes = model.cpuRam + context.cpuRam;
    const vramBytes = model.gpuVram + context.gpuVram;
    const available = this.options.availableMemory ? await this.options.availableMemory() : null;
    const fitsInRam = available === null || ramBytes <= available.ramBytes;
    const fitsInVram = available === null || vramBytes <= available.vramBytes;
    const canLoad = fitsInRam && fitsInVram;
    let reason: string | null = null;
    if (!fitsInRam) reason = `needs ${(ramBytes / megabyte).toFixed(1)} MB of RAM but ${(available.ramBytes / megabyte).toFixed(1)} MB are available`;
    else if (!fitsInVram)
      reason = `needs ${(vramBytes / megabyte).toFixed(1)} MB of VRAM for ${gpuLayers} GPU layers but ${(available.vramBytes / megabyte).toFixed(1)} MB are free`;
    return { path, gpuLayers, totalLayers: insights.totalLayers, contextSize, ramBytes, vramBytes, available, fitsInRam, fitsInVram, canLoad, reason };
  }

  private contextSizeFor(info: GgufModelInfo, requested: number | undefined): number {
    const trained = info.contextLength ?? 4096;
    return Math.min(requested ?? this.options.defaultContextSize ?? 4096, trained);
  }

  load(id: string, path: string, options: GgufLoadOptions = {}): Promise<{ model: LoadedGgufModel; alreadyLoaded: boolean }> {
    if (this.disposed) return Promise.reject(new ModelNotLoadedError('The model manager is shut down'));
    const existing = this.entries.get(id);
    if (existing) {
      if (options.keepAlive !== undefined) {
        existing.keepAliveMs = parseKeepAlive(options.keepAlive);
        this.scheduleExpiry(existing);
      }
      return Promise.resolve({ model: this.describe(existing), alreadyLoaded: true });
    }
    let pending = this.loading.get(id);
    const joined = pending !== undefined;
    this.lastLoads.set(id, { path, options });
    if (!pending) {
      pending = this.loadNow(id, path, options).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    return pending.then((entry) => ({ model: this.describe(entry), alreadyLoaded: joined }));
  }

  private async loadNow(id: string, path: string, options: GgufLoadOptions): Promise<ModelEntry> {
    const started = performance.now();
    this.logger.info({ model: id, path }, 'Loading model');
    const keepAliveMs = options.keepAlive === undefined ? this.defaultKeepAliveMs() : parseKeepAlive(options.keepAlive);
    // Validation first: a malformed file can abort the process inside llama.cpp.
    const info = await inspectGgufFile(path);
    const llama = await this.getLlama();
    const threads = options.threads ?? this.options.defaultThreads ?? 1;
    const sequences = info.embeddingOnly ? 1 : (options.sequences ?? this.options.sequences ?? 4);
    const estimate = await this.estimateFor(path, info, {
      contextSize: options.contextSize,
      gpuLayers: options.gpuLayers,
      sequences,
      batchSize: options.batchSize,
    });
    if (!options.skipMemoryCheck && !estimate.canLoad && estimate.available) {
      throw new OutOfMemoryError(`Model ${id} does not fit: it ${estimate.reason ?? 'needs more memory than is available'}`, {
        details: {
          model: id,
          required_ram_mb: Math.round(estimate.ramBytes / megabyte),
          available_ram_mb: Math.round(estimate.available.ramBytes / megabyte),
          required_vram_mb: Math.round(estimate.vramBytes / megabyte),
          available_vram_mb: Math.round(estimate.available.vramBytes / megabyte),
          gpu_layers: estimate.gpuLayers,
        },
      });
    }
    let model: LlamaModel;
    try {
      model = await llama.loadModel({
        modelPath: path,
        gpuLayers: estimate.gpuLayers,
        ignoreMemorySafetyChecks: options.skipMemoryCheck,
        loadSignal: this.disposing.signal,
      });
    } catch (error) {
      if (this.disposing.signal.aborted) throw new CancelledError(`Loading ${id} was stopped: the model manager is shutting down`, { cause: error });
      throw new InvalidModelError(`llama.cpp could not load ${id}: ${(error as Error).message}`, { cause: error });
    }
    let context: LlamaContext | null = null;
    let pool: SequencePool<LlamaContextSequence> | null = null;
    if (!info.embeddingOnly) {
      try {
        let sequencePool: SequencePool<LlamaContextSequence> | null = null;
        const created = await model.createContext({
          contextSize: estimate.contextSize,
          sequences,
          threads,
          batchSize: options.batchSize ?? this.options.batchSize,
          createSignal: this.disposing.signal,
          // node-llama-cpp dispatches a decode at once only when every sequence of the context has
          // queued one, else on the next event-loop cycle to batch them: with one generation running
          // that cycle is paid on every token (SSE writes, other requests in between). Dispatch at
          // once while a single sequence is in use; batch across the loop when several are.
          batching: { dispatchSchedule: (dispatch) => ((sequencePool?.inUse ?? 0) <= 1 ? dispatch() : setImmediate(dispatch)) },
        });
        context = created;
        sequencePool = new SequencePool(sequences, () => created.getSequence(), this.options.maxQueued ?? 64);
        pool = sequencePool;
      } catch (error) {
        await model.dispose();
        if (this.disposing.signal.aborted) throw new CancelledError(`Loading ${id} was stopped: the model manager is shutting down`, { cause: error });
        throw new OutOfMemoryError(`Could not create a context of ${estimate.contextSize} tokens for ${id}: ${(error as Error).message}`, { cause: error });
      }
    }
    let chatWrapper: ChatWrapper;
    try {
      chatWrapper = await this.resolveChatWrapper(id, path, model);
    } catch (error) {
      await context?.dispose();
      await model.dispose();
      throw error;
    }
    const now = new Date();
    const entry: ModelEntry = {
      id,
      path,
      info,
      model,
      context,
      pool,
      embedder: null,
      endOfGenerationTokens: null,
      chatWrapper,
      chatWrapperVariants: new Map(),
      loadedAt: now,
      lastUsedAt: now,
      keepAliveMs,
      timer: null,
      expiresAt: null,
      contextSize: context?.contextSize ?? null,
      sequences,
      threads,
      memoryBytes: estimate.ramBytes + estimate.vramBytes,
      loadTimeMs: performance.now() - started,
      active: new Set(),
      unloading: new AbortController(),
    };
    if (this.disposed) {
      await context?.dispose();
      await model.dispose();
      throw new CancelledError('The model manager was shut down during the load');
    }
    this.entries.set(id, entry);
    this.logger.info(
      { model: id, gpuLayers: model.gpuLayers, contextSize: entry.contextSize, threads, loadTimeMs: Math.round(entry.loadTimeMs) },
      'Model loaded',
    );
    this.scheduleExpiry(entry);
    return entry;
  }

  /** Chat wrappers resolved by file (path, size and time), newest last; see resolveChatWrapper. */
  private readonly resolvedWrappers = new Map<string, ChatWrapper>();

  /**
   * The model's chat wrapper, once per file: node-llama-cpp's "auto" resolution renders the GGUF's
   * Jinja template against every specialised wrapper to find an equivalent one, synchronously
   * (about a second of the event loop for a tool-calling template here), which is why it must not
   * run per request, nor again when the same file is loaded again after an unload or a keep-alive
   * expiry. A wrapper holds no reference to the model (the tokenizer is used while it is built),
   * so one wrapper serves every load of its file. A configured wrapper is used as it is.
   */
  private async resolveChatWrapper(id: string, path: string, model: LlamaModel): Promise<ChatWrapper> {
    if (this.chatWrapper !== 'auto') return this.chatWrapper;
    const fileStat = await stat(path);
    const key = `${path}\0${fileStat.size}\0${fileStat.mtimeMs}`;
    const known = this.resolvedWrappers.get(key);
    if (known !== undefined) {
      this.resolvedWrappers.delete(key);
      this.resolvedWrappers.set(key, known);
      return known;
    }
    const started = performance.now();
    // node-llama-cpp catches a template that fails (the render budget stopped it) and falls back to
    // a guessed format: a template over the budget refuses the model instead, saying why.
    const tripsBefore = chatTemplateBudgetTrips();
    const wrapper = resolveChatWrapper(model);
    if (chatTemplateBudgetTrips() > tripsBefore) {
      this.logger.warn({ model: id, resolveMs: Math.round(performance.now() - started) }, 'Chat template stopped by the render budget');
      throw chatTemplateLastStop() ?? chatTemplateBudgetError(chatTemplateRenderBudgetMs);
    }
    this.logger.info({ model: id, chatWrapper: wrapper.wrapperName, resolveMs: Math.round(performance.now() - started) }, 'Chat wrapper resolved');
    this.resolvedWrappers.set(key, wrapper);
    for (const oldest of this.resolvedWrappers.keys()) {
      if (this.resolvedWrappers.size <= 16) break;
      this.resolvedWrappers.delete(oldest);
    }
    return wrapper;
  }

  private describe(entry: ModelEntry): LoadedGgufModel {
    const gpuLayers = entry.model.gpuLayers;
    const llamaGpu = entry.model.llama.gpu;
    return {
      id: entry.id,
      path: entry.path,
      info: entry.info,
      loadedAt: entry.loadedAt,
      lastUsedAt: entry.lastUsedAt,
      expiresAt: entry.expiresAt,
      contextSize: entry.contextSize,
      sequences: entry.sequences,
      gpuLayers,
      totalLayers: entry.model.fileInsights.totalLayers,
      device: gpuLayers > 0 && llamaGpu !== false ? llamaGpu : 'cpu',
      threads: entry.threads,
      memoryBytes: entry.memoryBytes,
      loadTimeMs: entry.loadTimeMs,
      activeGenerations: entry.active.size,
      queuedGenerations: entry.pool?.queued ?? 0,
    };
  }

  private scheduleExpiry(entry: ModelEntry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.expiresAt = null;
    if (entry.active.size > 0 || entry.keepAliveMs === Infinity) return;
    entry.expiresAt = new Date(Date.now() + entry.keepAliveMs);
    const timer = setTimeout(
      () => {
        if (this.entries.get(entry.id) !== entry || entry.active.size > 0) return;
        this.logger.info({ model: entry.id }, 'Keep-alive expired; unloading');
        this.unload(entry.id).catch((error: unknown) => this.logger.error({ err: error, model: entry.id }, 'Unload after keep-alive failed'));
      },
      Math.min(entry.keepAliveMs, 2_147_483_647),
    );
    timer.unref();
    entry.timer = timer;
  }

  get(id: string): LoadedGgufModel | undefined {
    const entry = this.entries.get(id);
    return entry ? this.describe(entry) : undefined;
  }

  list(): LoadedGgufModel[] {
    return [...this.entries.values()].map((entry) => this.describe(entry));
  }

  async unload(id: string): Promise<boolean> {
    const loading = this.loading.get(id);
    if (loading) await loading.catch(() => undefined);
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    entry.unloading.abort();
    entry.pool?.rejectWaiting(new CancelledError(`Model ${id} was unloaded`));
    await Promise.allSettled([...entry.active]);
    if (entry.embedder) await (await entry.embedder.catch(() => null))?.dispose();
    await entry.context?.dispose();
    await entry.model.dispose();
    this.logger.info({ model: id }, 'Model unloaded');
    return true;
  }

  private entryFor(id: string): ModelEntry {
    const entry = this.entries.get(id);
    if (!entry) throw new ModelNotLoadedError(`Model ${id} is not loaded`);
    return entry;
  }

  /**
   * The model's entry for a generation about to start. An unload (keep-alive expiry, POST
   * /v1/models/unload, memory pressure) can release the model between the request's load and this
   * moment; the model is then loaded again as it was, as Ollama and LM Studio do, instead of a 503
   * the client must retry. An unload and a load arriving together can release the new one too: up
   * to 3 loads, then the error is passed on; a cancelled request loads nothing.
   */
  private async entryForGeneration(id: string, signal: AbortSignal | undefined): Promise<ModelEntry> {
    for (let reloads = 0; ; reloads += 1) {
      const entry = this.entries.get(id);
      if (entry) return entry;
      const last = this.lastLoads.get(id);
      if (last === undefined || reloads >= 3 || signal?.aborted === true || this.disposed) return this.entryFor(id);
      await this.load(id, last.path, last.options);
    }
  }

  private startGeneration(
    id: string,
    keepAlive: KeepAlive | undefined,
    signal: AbortSignal | undefined,
    run: (target: GenerationTarget, signal: AbortSignal, push: (delta: GenerationDelta) => void, requestStart: number) => Promise<GenerationResult>,
  ): GenerationRun<GenerationResult, GenerationDelta> {
    const requestStart = performance.now();
    return new GenerationRunController<GenerationResult, GenerationDelta>(async (push) => {
      try {
        return await this.generateOn(id, keepAlive, signal, run, push, requestStart);
      } catch (error) {
        // Nothing was pushed yet (the prompt is measured before its size is reported): the
        // generation runs once more, in a context grown to hold its prompt, when that is possible.
        if (!(await this.growContextFor(id, error))) throw error;
        return await this.generateOn(id, keepAlive, signal, run, push, requestStart);
      }
    });
  }

  /**
   * Grows a loaded model's context for a prompt that did not fit, as an agent's prompt does not
   * fit the default (Claude Code's first request is ~10,000 tokens, Codex's ~5,000): to the prompt
   * plus room for an answer (half the prompt, at least 4,096 tokens), in steps of 4,096, within
   * the context the model was trained for and the memory the machine has. It reloads the model,
   * so only while no other generation runs on it; a concurrent request that also overflows waits
   * for the same growth. True when the context was grown (or already is large enough).
   */
  private async growContextFor(id: string, error: unknown): Promise<boolean> {
    if (this.options.growContext === false || !TabAgentError.isInstance(error) || error.code !== 'context_length_exceeded') return false;
    const promptTokens = error.details?.['prompt_tokens'];
    if (typeof promptTokens !== 'number') return false;
    const pending = this.growing.get(id);
    if (pending !== undefined) return pending;
    const growth = this.growContext(id, promptTokens).finally(() => this.growing.delete(id));
    this.growing.set(id, growth);
    return growth;
  }

  private async growContext(id: string, promptTokens: number): Promise<boolean> {
    const entry = this.entries.get(id);
    const last = this.lastLoads.get(id);
    if (entry === undefined || last === undefined || this.disposed) return false;
    const current = entry.contextSize ?? 0;
    const trained = entry.info.contextLength ?? current;
    const step = 4096;
    const wanted = Math.min(trained, Math.ceil((promptTokens + Math.max(step, promptTokens / 2)) / step) * step);
    if (wanted <= promptTokens) return false;
    if (wanted <= current) return true;
    const estimate = await this.estimateFor(last.path, entry.info, {
      contextSize: wanted,
      gpuLayers: last.options.gpuLayers,
      sequences: entry.sequences,
      batchSize: last.options.batchSize,
    });
    if (!estimate.canLoad && estimate.available) {
      this.logger.warn({ model: id, contextSize: wanted, reason: estimate.reason }, 'The context cannot grow for a long prompt');
      return false;
    }
    // Checked last, with no await before the unload: a generation that started meanwhile keeps its context.
    if (entry.active.size > 0 || this.entries.get(id) !== entry) return false;
    this.logger.info({ model: id, from: current, to: wanted, promptTokens }, 'Growing the context for a long prompt');
    await this.unload(id);
    await this.load(id, last.path, { ...last.options, contextSize: wanted });
    return true;
  }

  private async generateOn(
    id: string,
    keepAlive: KeepAlive | undefined,
    signal: AbortSignal | undefined,
    run: (target: GenerationTarget, signal: AbortSignal, push: (delta: GenerationDelta) => void, requestStart: number) => Promise<GenerationResult>,
    push: (delta: GenerationDelta) => void,
    requestStart: number,
  ): Promise<GenerationResult> {
    const entry = await this.entryForGeneration(id, signal);
    const pool = entry.pool;
    if (!pool) throw new InvalidRequestError(`Model ${id} is an embedding model and cannot generate text`);
    const keepAliveMs = keepAlive === undefined ? undefined : parseKeepAlive(keepAlive);
    const combined = signal ? AbortSignal.any([signal, entry.unloading.signal]) : entry.unloading.signal;
    const target: GenerationTarget = {
      modelId: id,
      llama: entry.model.llama,
      model: entry.model,
      contextSize: entry.contextSize ?? 0,
      chatWrapper: (reasoning) => chatWrapperFor(entry, reasoning),
      vocabularySize: entry.info.vocabularySize,
      toolSyntax: this.chatWrapper !== 'auto' || hasToolSyntax(entry.info.chatTemplate),
      tokenBias: (request) =>
        requestTokenBias(
          entry.model,
          entry.info.vocabularySize,
          () => (entry.endOfGenerationTokens ??= endOfGenerationTokens(entry.model, entry.info.vocabularySize)),
          request,
        ),
      // llama-server's slot choice: the free sequence holding the longest prefix of the prompt, if
      // that prefix is at least half the prompt; otherwise a sequence never used, else the least
      // recently used. Every prompt shares its first tokens (BOS, the template's opening) with
      // every cache: taking any sequence that shares something would overwrite another
      // conversation's cache while others sit unused.
      acquireSequence: (promptTokens, reuse, acquireSignal) =>
        pool.acquire(acquireSignal, reuse ? (sequence) => similarPrefixLength(sequence, promptTokens) : undefined),
      releaseSequence: (sequence) => pool.release(sequence),
    };
    const work = (async (): Promise<GenerationResult> => {
      try {
        return await run(target, combined, push, requestStart);
      } catch (error) {
        // Aborted before the generation began (building a grammar, clearing a sequence).
        if (combined.aborted) return cancelledResult(id, requestStart);
        throw error;
      }
    })();
    entry.active.add(work);
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.expiresAt = null;
    try {
      return await work;
    } finally {
      entry.active.delete(work);
      entry.lastUsedAt = new Date();
      if (keepAliveMs !== undefined) entry.keepAliveMs = keepAliveMs;
      if (this.entries.get(id) === entry && entry.active.size === 0) {
        if (entry.keepAliveMs === 0) {
          this.unload(id).catch((error: unknown) => this.logger.error({ err: error, model: id }, 'Unload after keep_alive 0 failed'));
        } else {
          this.scheduleExpiry(entry);
        }
      }
    }
  }

  chat(id: string, request: ChatGenerationRequest): GenerationRun<GenerationResult, GenerationDelta> {
    return this.startGeneration(id, request.keepAlive, request.signal, (target, signal, push, start) =>
      runChatGeneration(target, { ...request, signal }, push, start),
    );
  }

  /** The tokens of a chat request's prompt as a generation of it would evaluate them (Anthropic's count_tokens). */
  async countChatTokens(id: string, request: ChatGenerationRequest): Promise<number> {
    return (await this.chatPromptTokens(id, request)).length;
  }

  /** The token ids of a chat request's rendered prompt, as a generation of it would evaluate them. */
  async chatPromptTokens(id: string, request: ChatGenerationRequest): Promise<number[]> {
    let tokens: number[] = [];
    const run = this.startGeneration(id, request.keepAlive, request.signal, async (target, _signal, _push, start) => {
      tokens = chatPromptTokens(target, request);
      return { ...cancelledResult(id, start), promptTokens: tokens.length };
    });
    await run.result;
    return tokens;
  }

  complete(id: string, request: CompletionGenerationRequest): GenerationRun<GenerationResult, GenerationDelta> {
    return this.startGeneration(id, request.keepAlive, request.signal, (target, signal, push, start) =>
      runCompletionGeneration(target, { ...request, signal }, push, start),
    );
  }

  embedder(id: string): Promise<GgufTextEmbedder> {
    let entry: ModelEntry;
    try {
      entry = this.entryFor(id);
    } catch (error) {
      return Promise.reject(error);
    }
    entry.lastUsedAt = new Date();
    this.scheduleExpiry(entry);
    entry.embedder ??= GgufTextEmbedder.create({ modelId: id, model: entry.model, threads: entry.threads });
    return entry.embedder;
  }

  dispose(): Promise<void> {
    this.disposePromise ??= (async () => {
      this.disposed = true;
      this.disposing.abort();
      await Promise.allSettled([...this.loading.values()]);
      await Promise.allSettled([...this.entries.keys()].map((id) => this.unload(id)));
      if (this.llamaPromise && !this.options.llama) await (await this.llamaPromise.catch(() => null))?.dispose();
    })();
    return this.disposePromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** A prompt reuses a sequence's cache only when they share at least this part of the prompt (llama-server's `--slot-prompt-similarity`). */
const slotPromptSimilarity = 0.5;

/** The prefix a sequence shares with a prompt, when it is at least half the prompt; else 0 (nothing worth taking the sequence for). */
function similarPrefixLength(sequence: LlamaContextSequence, promptTokens: readonly Token[]): number {
  const shared = sequence.compareContextTokens([...promptTokens]).firstDifferentIndex;
  return shared >= promptTokens.length * slotPromptSimilarity ? shared : 0;
}

/**
 * Whether a model was taught a tool-call syntax: its GGUF's chat template renders the request's
 * tools. node-llama-cpp maps a plain template to a specialised wrapper (ChatML, Llama 3) whose
 * function syntax the model never saw, so the wrapper alone does not say. A file without a
 * template (node-llama-cpp's general wrapper, whose own syntax it parses as calls, never leaving
 * them as text) and a wrapper the server was configured with are taken as they are.
 */
function hasToolSyntax(template: string | null): boolean {
  return template === null || /\btools\b/.test(template);
}

/**
 * The wrapper for a request's reasoning setting: a reasoning effort is given to gpt-oss's Harmony
 * format (a wrapper variant per effort, kept); every other wrapper has no effort to set.
 */
function chatWrapperFor(entry: ModelEntry, reasoning: ReasoningSetting | undefined): ChatWrapper {
  const base = entry.chatWrapper;
  if (reasoning === undefined || reasoning === 'off' || !(base instanceof HarmonyChatWrapper) || base.reasoningEffort === reasoning) return base;
  let variant = entry.chatWrapperVariants.get(reasoning);
  if (variant === undefined) {
    variant = new HarmonyChatWrapper({
      modelIdentity: base.modelIdentity,
      cuttingKnowledgeDate: base.cuttingKnowledgeDate,
      todayDate: base.todayDate,
      reasoningEffort: reasoning,
      requiredChannels: base.requiredChannels,
      keepOnlyLastThought: base.keepOnlyLastThought,
    });
    entry.chatWrapperVariants.set(reasoning, variant);
  }
  return variant;
}

function cancelledResult(modelId: string, requestStart: number): GenerationResult {
  return {
    modelId,
    text: '',
    reasoning: '',
    cachedPromptTokens: 0,
    reasoningTokens: 0,
    finishReason: 'cancelled',
    toolCalls: [],
    promptTokens: 0,
    completionTokens: 0,
    timeToFirstTokenMs: null,
    tokensPerSecond: null,
    totalTimeMs: performance.now() - requestStart,
  };
}

/** Creates the GGUF model manager (one llama.cpp backend shared by every loaded model). */
export function createGgufModelManager(options: GgufModelManagerOptions = {}): GgufModelManager {
  return new NodeLlamaModelManager(options);
}
