import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PlainCounter, PlainHistogram } from './plain-metrics.js';
import {
  isChunkStream,
  onStreamEnd,
  toProblemDetails,
  type AppStateProvider,
  type CallContext,
  type HandlerResult,
  type RouteId,
  type RouteRequest,
  type RouteResponse,
} from '@tabagent/values';

/** One finished generation, as `stats.get` reports it. */
export type GenerationMetricsSample = NonNullable<RouteResponse<'stats.get'>['last']>;

/** What the scrape reads at scrape time (state, not events). */
export interface MetricsSources {
  loadedModels: () => { model: string; format: string; device: string; memory_mb: number; running?: number | undefined; queued?: number | undefined }[];
  activeGenerations: () => number;
  memoryStatus: () => Promise<RouteResponse<'memory.status'>>;
  downloads: () => { activeFiles: number; bytesReceived: number };
}

/** One request that finished (or failed), whatever its transport. */
export interface RequestRecord {
  route: RouteId;
  transport: CallContext['transport'];
  status: number;
  durationMs: number;
  requestId: string;
}

/** The server's Prometheus metrics (`prom-client`), rendered at `GET /metrics`. */
export interface ServerMetrics {
  readonly registry: Registry;
  /** Wraps a provider so that every call through it is counted and timed (streams until their end). */
  instrument(provider: AppStateProvider, onRequest?: (record: RequestRecord) => void): AppStateProvider;
  /** Records a finished generation: time to first token, decode speed, token counts. */
  recordGeneration(sample: GenerationMetricsSample): void;
  /** Counts an HTTP request refused before the provider (bad JSON, 401, 403, 404, 413...). */
  /** Counts a request a transport refused before the provider saw it (by route pattern and status). */
  recordRefusal(refusal: { route: string; status: number }): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

const durationBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Wraps a provider so that every call through it is timed (a stream until its end) and reported
 * with its status: 200, the problem status of its error, or 499 for a stream its client left.
 */
function instrumentProvider(provider: AppStateProvider, report: (record: RequestRecord) => void): AppStateProvider {
  const finish = (id: RouteId, context: CallContext, started: number, status: number): void => {
    const durationMs = Math.round((performance.now() - started) * 10) / 10;
    report({ route: id, transport: context.transport, status, durationMs, requestId: context.requestId });
  };
  return {
    // Not an async function: a plain then() is one promise less on every request's path.
    handle<K extends RouteId>(id: K, request: RouteRequest<K>, context: CallContext): Promise<HandlerResult<K>> {
      const started = performance.now();
      return provider.handle(id, request, context).then(
        (result) => {
          if (!isChunkStream(result)) {
            finish(id, context, started, 200);
            return result;
          }
          // A stream is timed to its end: finished (499 when the caller went away), failed, or closed early.
          return onStreamEnd(result, (outcome, error) => {
            const status = outcome === 'failed' ? toProblemDetails(error).status : outcome === 'closed' || context.signal.aborted ? 499 : 200;
            finish(id, context, started, status);
          }) as HandlerResult<K>;
        },
        (error: unknown) => {
          finish(id, context, started, toProblemDetails(error).status);
          throw error;
        },
      );
    },
  };
}

/** Request timing and reporting without metrics (`--metrics off`): the request log still gets its lines. */
export function requestLogOnly(): Pick<ServerMetrics, 'instrument'> {
  return { instrument: (provider, onRequest) => instrumentProvider(provider, (record) => onRequest?.(record)) };
}

/** Creates the registry with the default process metrics (event-loop delay included) and ours. */
export function createServerMetrics(sources: MetricsSources): ServerMetrics {
  const registry = new Registry();
  // Process CPU, memory, handles, GC and event-loop delay percentiles (perf_hooks.monitorEventLoopDelay).
  // Sampling every 50 ms, not 10: a blocked loop delays the pending timer whatever the rate, so the
  // percentiles stay true, and an idle server wakes 20 times a second for it instead of 100.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 50 });
  // On every request's path: plain numbers, read at scrape time (see plain-metrics.ts).
  const requests = new PlainCounter(registry, {
    name: 'tabagent_requests_total',
    help: 'Requests by route id (unmatched, or ollama and its path, when refused before any handler), transport and HTTP status (errors by their problem status).',
    labelNames: ['route', 'transport', 'status'],
  });
  const duration = new PlainHistogram(registry, {
    name: 'tabagent_request_duration_seconds',
    help: 'Time from a request reaching the provider to its response, or to the end of its stream.',
    labelNames: ['route', 'transport'],
    buckets: durationBuckets,
  });
  const perModelHistogram = (name: string, help: string, buckets: number[]): Histogram<'model'> =>
    new Histogram({ name, help, labelNames: ['model'] as const, buckets, registers: [registry] });
  const ttft = perModelHistogram(
    'tabagent_time_to_first_token_seconds',
    'Time to first token of finished generations.',
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  );
  const decode = perModelHistogram(
    'tabagent_decode_tokens_per_second',
    'Decode speed of finished generations.',
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
  );
  const promptTokens = new Counter({
    name: 'tabagent_prompt_tokens_total',
    help: 'Prompt tokens evaluated.',
    labelNames: ['model'] as const,
    registers: [registry],
  });
  const completionTokens = new Counter({
    name: 'tabagent_completion_tokens_total',
    help: 'Completion tokens generated.',
    labelNames: ['model'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'tabagent_model_loaded',
    help: 'Loaded models (1 each), by format and device.',
    labelNames: ['model', 'format', 'device'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const view of sources.loadedModels()) this.set({ model: view.model, format: view.format, device: view.device }, 1);
    },
  });
  // One series per loaded model, read from the backends' views at each scrape.
  const modelGauge = (name: string, help: string, read: (view: ReturnType<MetricsSources['loadedModels']>[number]) => number): Gauge<'model'> =>
    new Gauge({
      name,
      help,
      labelNames: ['model'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const view of sources.loadedModels()) this.set({ model: view.model }, read(view));
      },
    });
  modelGauge('tabagent_model_memory_bytes', 'Memory a loaded model takes, as its backend estimates it.', (view) => view.memory_mb * 1024 * 1024);
  modelGauge('tabagent_model_queue_depth', 'Requests waiting for a loaded model (for a GGUF: for a free sequence).', (view) => view.queued ?? 0);
  modelGauge('tabagent_model_requests_running', 'Requests a loaded model is serving now.', (view) => view.running ?? 0);
  new Gauge({
    name: 'tabagent_downloads_active',
    help: 'Model files downloading now (a transfer shared by two pulls counts once).',
    registers: [registry],
    collect() {
      this.set(sources.downloads().activeFiles);
    },
  });
  new Counter({
    name: 'tabagent_download_bytes_total',
    help: 'Bytes of model files received from the Hub by this process.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.downloads().bytesReceived);
    },
  });
  // prom-client's nodejs_eventloop_lag_* figures are the intervals between ticks of a 50 ms
  // timer, so an idle loop reads 50 ms: this gauge is the delay alone (the interval less the
  // timer's period), over the time since the previous scrape.
  const delayResolutionMs = 10;
  const delays = monitorEventLoopDelay({ resolution: delayResolutionMs });
  delays.enable();
  new Gauge({
    name: 'tabagent_event_loop_delay_seconds',
    help: `Event-loop delay since the previous scrape by quantile (1: the longest), without the ${delayResolutionMs} ms period of the timer that measures it.`,
    labelNames: ['quantile'] as const,
    registers: [registry],
    collect() {
      const delay = (nanoseconds: number): number => (delays.count === 0 ? 0 : Math.max(0, nanoseconds / 1e6 - delayResolutionMs) / 1000);
      this.set({ quantile: '0.5' }, delay(delays.percentile(50)));
      this.set({ quantile: '0.99' }, delay(delays.percentile(99)));
      this.set({ quantile: '1' }, delay(delays.max));
      delays.reset();
    },
  });
  let utilization = performance.eventLoopUtilization();
  new Gauge({
    name: 'tabagent_event_loop_utilization',
    help: 'Share of the time since the previous scrape (0..1) that the event loop was running callbacks rather than waiting for I/O: how near the server is to saturation, which the delay percentiles show only once it is there.',
    registers: [registry],
    collect() {
      const now = performance.eventLoopUtilization();
      this.set(performance.eventLoopUtilization(now, utilization).utilization);
      utilization = now;
    },
  });
  new Gauge({
    name: 'tabagent_process_array_buffers_bytes',
    help: 'Memory of ArrayBuffers and SharedArrayBuffers (process.memoryUsage().arrayBuffers).',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().arrayBuffers);
    },
  });
  new Gauge({
    name: 'tabagent_generations_active',
    help: 'Generations running or waiting for their model.',
    registers: [registry],
    collect() {
      this.set(sources.activeGenerations());
    },
  });
  // One status per scrape, not one per gauge: it counts the outbox and the nodes, which takes
  // milliseconds of the event loop once memory holds tens of thousands of items.
  let statusRead: { at: number; status: Promise<RouteResponse<'memory.status'>> } | undefined;
  const memoryStatusOnce = (): Promise<RouteResponse<'memory.status'>> => {
    const now = performance.now();
    if (statusRead === undefined || now - statusRead.at > 1000) statusRead = { at: now, status: sources.memoryStatus() };
    return statusRead.status;
  };
  const memoryGauge = (name: string, help: string, read: (status: RouteResponse<'memory.status'>) => number | null): Gauge =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const value = read(await memoryStatusOnce());
        this.set(value ?? 0);
      },
    });
  memoryGauge('tabagent_memory_queue_depth', 'Weaver work waiting: indexing, enrichment, summaries, deletes.', (status) => status.queue_depth);
  memoryGauge('tabagent_memory_unindexed_items', 'Saved messages and pages not in the vector index yet.', (status) => status.unindexed);
  memoryGauge('tabagent_memory_failed_items', 'Weaver items that failed for good.', (status) => status.failed);
  memoryGauge('tabagent_memory_items_per_second', 'Saved items made searchable per second over the last minute.', (status) => status.items_per_second);
  memoryGauge('tabagent_memory_lag_seconds', 'Age of the oldest saved item not in the vector index yet (0 when none waits).', (status) =>
    status.oldest_pending_age_ms === null ? 0 : status.oldest_pending_age_ms / 1000,
  );

  return {
    registry,
    instrument(provider, onRequest) {
      // Label children are looked up once per label set, by route, transport and status in nested
      // maps (no key string built per request): the hot path is then two plain updates.
      const children = new Map<string, Map<string, { timer: { observe: (value: number) => void }; counters: Map<number, { inc: () => void }> }>>();
      return instrumentProvider(provider, (record) => {
        let byTransport = children.get(record.route);
        if (byTransport === undefined) {
          byTransport = new Map();
          children.set(record.route, byTransport);
        }
        let child = byTransport.get(record.transport);
        if (child === undefined) {
          child = { timer: duration.labels(record.route, record.transport), counters: new Map() };
          byTransport.set(record.transport, child);
        }
        let counter = child.counters.get(record.status);
        if (counter === undefined) {
          counter = requests.labels(record.route, record.transport, String(record.status));
          child.counters.set(record.status, counter);
        }
        counter.inc();
        child.timer.observe(record.durationMs / 1000);
        onRequest?.(record);
      });
    },
    recordRefusal(refusal) {
      requests.labels(refusal.route, 'http', String(refusal.status)).inc();
    },
    recordGeneration(sample) {
      const labels = { model: sample.model };
      if (sample.time_to_first_token_ms !== null) ttft.observe(labels, sample.time_to_first_token_ms / 1000);
      if (sample.tokens_per_second !== null) decode.observe(labels, sample.tokens_per_second);
      promptTokens.inc(labels, sample.prompt_tokens);
      completionTokens.inc(labels, sample.completion_tokens);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
