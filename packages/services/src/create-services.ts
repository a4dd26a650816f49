import type { HardwareProbe } from '@tabagent/hardware';
import { loadRecommendedModels, type ModelResolver } from '@tabagent/model-cache';
import { openMemoryStore, type MemoryStore } from '@tabagent/weaver';
import {
  BusyError,
  UnauthorizedError,
  assertPairingScope,
  createAppStateProvider,
  type AppStateProvider,
  type CallerIdentity,
  type Logger,
  type RouteId,
} from '@tabagent/values';
import { withChatMemory } from './chat-memory.js';
import { createEmbeddingHandlers } from './handlers/embedding-handlers.js';
import { createGenerationHandlers, type GenerationStats } from './handlers/generation-handlers.js';
import { createMemoryHandlers, createMemoryRetrieval } from './handlers/memory-handlers.js';
import { createModelDownloadHandlers } from './handlers/model-download-handlers.js';
import { createModelHandlers, type ModelHandlerDeps } from './handlers/model-handlers.js';
import { createPairingHandlers } from './handlers/pairing-handlers.js';
import { createSystemHandlers } from './handlers/system-handlers.js';
import type { HfTokenStore } from './hf-token-store.js';
import { interactiveEmbeddingRoutes, trackInteractiveCalls } from './interactive-work.js';
import type { createModelLayer } from './model-layer.js';
import type { PairingStore } from './pairing-store.js';
import { createRunningRequests } from './running-requests.js';
import { serverHandlerMap, type HandlerGroups } from './handler-map.js';
import { createServerMetrics, requestLogOnly, type RequestRecord, type ServerMetrics } from './server-metrics.js';

/** What the services are built over: the engines (composed by the app), the stores and the settings. */
export interface ServicesOptions {
  /** The registry and the format backends. */
  models: ModelResolver;
  /** Pulls and downloads (`createModelLayer`). */
  modelLayer: Pick<ReturnType<typeof createModelLayer>, 'puller' | 'downloader' | 'downloadStats' | 'fits'>;
  hardware: HardwareProbe;
  /** The upstream engines' status and refresh (`GET /v1/upstreams`), when any are configured. */
  upstreams?: ModelHandlerDeps['upstreams'];
  hfTokens: HfTokenStore;
  pairings: PairingStore;
  /** The data directory (memory store, `system.info`). */
  dataDir: string;
  /** The log file `logs.tail` reads; undefined when logs go elsewhere. */
  logFile: string | undefined;
  version: string;
  /** `--embedding-model`: the memory's embedding model until its settings name one. */
  embeddingModel?: string;
  /** Share of the time the weaver may work while the server is idle (`--memory-duty-cycle`). */
  memoryDutyCycle: number;
  /** The longest the weaver waits for interactive work before it takes a batch anyway, ms (`--memory-max-wait`; default 5000). */
  memoryMaxWaitMs?: number;
  /** Serve Prometheus metrics (`--metrics on`). */
  metrics: boolean;
  logger: Logger;
}

/** The services of one server: its provider once the transports' own handlers are in, and what it opened. */
export interface Services {
  readonly memory: MemoryStore;
  /** Undefined with `--metrics off`. */
  readonly metrics: ServerMetrics | undefined;
  /**
   * The one provider every transport calls, with the transports' own handlers (WebRTC
   * signalling) merged in, and metrics and the request log around it.
   */
  provider(transportHandlers: HandlerGroups['webrtc']): AppStateProvider;
  /**
   * For a WebRTC session opened with a pairing token: refuses calls once the token is revoked or
   * expired, and routes outside its scope (`assertPairingScope`, the check the HTTP guard makes).
   */
  authorizeChannelCall(caller: CallerIdentity, id: RouteId): void;
  /** Starts the weaver's background work. */
  start(): void;
  /** Closes the memory store (and its weaver). */
  close(): Promise<void>;
}

/** When interactive work last ended, the weaver waits this long more: a chat's next turn should not meet a batch. */
const interactiveGraceMs = 1000;

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((sum, value, index) => sum + value * (b[index] ?? 0), 0);

/**
 * Opens the memory store and builds every handler over the engines: the policy of the server
 * lives here (the weaver yields to interactive work, summaries only from a model already loaded,
 * rerank falls back to embedding similarity), not in the app that composes it.
 */
export async function openServices(options: ServicesOptions): Promise<Services> {
  const { models, logger } = options;
  // Generations running or waiting, and interactive embedding calls in flight: the weaver pauses between batches while there are any.
  let activeGenerations = 0;
  let lastInteractiveEnd = Number.NEGATIVE_INFINITY;
  let interactiveInFlight = (): number => 0;
  const activity = {
    begin: () => {
      activeGenerations += 1;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        activeGenerations -= 1;
        lastInteractiveEnd = performance.now();
      };
    },
  };
  const memory: MemoryStore = await openMemoryStore({
    dataDir: options.dataDir,
    ...(options.embeddingModel === undefined ? {} : { embeddingModel: options.embeddingModel }),
    embedders: (modelId) => models.resolveEmbedder(modelId),
    defaultEmbeddingModelId: () => models.defaultEmbeddingModelId(),
    isBusy: () => activeGenerations > 0 || interactiveInFlight() > 0 || performance.now() - lastInteractiveEnd < interactiveGraceMs,
    dutyCycle: options.memoryDutyCycle,
    ...(options.memoryMaxWaitMs === undefined ? {} : { maxWaitMs: options.memoryMaxWaitMs }),
    rerank: async (query, documents) => {
      const reranker = await models.resolveReranker(memory.storage.getMemorySettings().rerank_model ?? undefined);
      if (!reranker)
        return (await models.resolveEmbedder())
          .embed([query, ...documents])
          .then(({ vectors }) => vectors.slice(1).map((vector) => dot(vectors[0] as Float32Array, vector)));
      return (await reranker.score(query, documents)).scores;
    },
    extractEntities: async (text) => {
      const extractor = await models.resolveEntityExtractor(memory.storage.getMemorySettings().entity_model);
      return extractor ? extractor.extractEntities(text) : [];
    },
    summarize: async (texts, { signal }) => {
      // Summaries need an LLM; only one already in memory is used, so saving never loads a model.
      const backend = models.backends.find((candidate) => candidate.generator && candidate.loaded().some((view) => view.task === 'text-generation'));
      const loaded = backend?.loaded().find((view) => view.task === 'text-generation');
      if (!backend?.generator || !loaded) return null;
      const run = backend.generator.chat(loaded.model, {
        messages: [
          { role: 'system', content: 'Summarise the conversation below in three sentences.' },
          { role: 'user', content: texts.join('\n') },
        ],
        maxTokens: 200,
        temperature: 0.2,
        signal,
      });
      return (await run.result).text.trim() || null;
    },
    logger,
  });
  try {
    const retrieval = createMemoryRetrieval({ index: memory.index, weaver: memory.weaver });
    // Metrics read the live state at scrape time.
    const metrics = options.metrics
      ? createServerMetrics({
          loadedModels: () => models.loaded(),
          activeGenerations: () => activeGenerations,
          memoryStatus: () => memory.weaver.status(),
          downloads: options.modelLayer.downloadStats,
        })
      : undefined;
    const running = createRunningRequests();
    const generation = createGenerationHandlers({
      models,
      logger,
      running,
      activity,
      responseStore: memory.storage,
      ...(metrics === undefined ? {} : { onGeneration: (stats: GenerationStats) => metrics.recordGeneration(stats) }),
    });
    const groups = {
      system: createSystemHandlers({
        hardware: options.hardware,
        hfTokens: options.hfTokens,
        version: options.version,
        logFile: options.logFile,
        dataDir: options.dataDir,
        loadedModelResources: async () => models.loaded().map((view) => ({ model_id: view.model, memory_mb: view.memory_mb, device: view.device })),
      }),
      models: createModelHandlers({
        models,
        availableMemory: () => options.hardware.availableMemory(),
        ...(options.upstreams === undefined ? {} : { upstreams: options.upstreams }),
      }),
      pairing: createPairingHandlers(options.pairings),
      downloads: createModelDownloadHandlers({
        puller: options.modelLayer.puller,
        downloader: options.modelLayer.downloader,
        running,
        recommended: loadRecommendedModels(),
        fits: options.modelLayer.fits,
      }),
      generation,
      chatWithMemory: withChatMemory(generation['chat.completions'], retrieval),
      embeddings: createEmbeddingHandlers({
        resolveEmbedder: (modelId) => models.resolveEmbedder(modelId),
        resolveReranker: (modelId) => models.resolveReranker(modelId),
        listEmbeddingModels: () => models.listEmbeddingModels(),
        searchStore: (request) => retrieval.searchStoreForSemanticSearch(request),
      }),
      memory: createMemoryHandlers({ storage: memory.storage, index: memory.index, weaver: memory.weaver }),
    };
    // One line per request at info, whatever the transport: route, transport, status, duration, id (never bodies).
    const logRequest = (record: RequestRecord): void =>
      logger.info(
        { route: record.route, transport: record.transport, status: record.status, duration_ms: record.durationMs, request_id: record.requestId },
        'request',
      );
    return {
      memory,
      metrics,
      provider(transportHandlers) {
        const interactive = trackInteractiveCalls(
          createAppStateProvider(serverHandlerMap({ ...groups, webrtc: transportHandlers })),
          interactiveEmbeddingRoutes,
          () => (lastInteractiveEnd = performance.now()),
        );
        interactiveInFlight = interactive.inFlight;
        return (metrics ?? requestLogOnly()).instrument(interactive.provider, logRequest);
      },
      authorizeChannelCall(caller, id) {
        if (caller.pairing === undefined) return;
        if (!options.pairings.isActive(caller.pairing.id))
          throw new UnauthorizedError('The pairing token that opened this WebRTC session was revoked or has expired');
        assertPairingScope(caller.pairing, id);
      },
      start: () => memory.weaver.start(),
      close: () => memory.close(),
    };
  } catch (error) {
    await memory.close();
    throw error;
  }
}

/** A provider for transports that start before the services are open: calls wait for it, or are refused as busy. */
export function providerWhenReady(ready: () => AppStateProvider | undefined): AppStateProvider {
  return {
    handle: async (id, request, context) => {
      const provider = ready();
      if (provider === undefined) throw new BusyError('The server is still starting');
      return provider.handle(id, request, context);
    },
  };
}
