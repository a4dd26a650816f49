import path from 'node:path';
import { InvalidRequestError, mapInferenceSettings, type RouteId, type RouteResponse } from '@tabagent/values';
import type { RouteCaller } from './route-caller.js';

/** What a legacy action's adapter receives. */
export interface LegacyActionInput {
  /** The request without `action` and `messageId`. */
  fields: Record<string, unknown>;
  /** Calls catalogue routes with this request's call context. */
  routes: RouteCaller;
  /** The server version (`ping`, `handshake`, `get_version`). */
  version: string;
  /** Sends a push frame before the reply (`messageId` is added), as the Python host did for progress. */
  push: (message: Record<string, unknown>) => Promise<void>;
}

/** Fields of a success reply, merged after `{messageId, status: 'success'}`. */
export type LegacyReplyFields = Record<string, unknown>;

/** One row of the legacy action table: the routes it calls and its adapter. */
export interface LegacyActionSpec {
  /** Catalogue routes this action calls, in call order (empty: answered by the host itself). */
  readonly routes: readonly RouteId[];
  /** Builds the reply fields; throws a `TabAgentError` for an error reply. */
  run(input: LegacyActionInput): Promise<LegacyReplyFields>;
}

/** Keys a legacy reply sets itself; a route field of the same name is renamed `route_<key>`. */
const reservedReplyKeys = new Set(['messageId', 'status']);

/**
 * The generic success shape of a route-backed action: the response object's fields at top level,
 * where the extension reads them. A response field named `status` (e.g. `loaded`, `halted`)
 * would collide with the envelope's `status: 'success'`, so it travels as `route_status`. A
 * response that is not an object is sent as `data`.
 */
export function spreadRouteData(data: unknown): LegacyReplyFields {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { data };
  const reply: LegacyReplyFields = {};
  for (const [key, value] of Object.entries(data)) reply[reservedReplyKeys.has(key) ? `route_${key}` : key] = value;
  return reply;
}

function routeAction(id: RouteId, toRequest: (fields: Record<string, unknown>) => unknown = (fields) => fields): LegacyActionSpec {
  return {
    routes: [id],
    async run({ fields, routes }) {
      return spreadRouteData(await routes.call(id, toRequest(fields)));
    },
  };
}

function firstDefined(fields: Record<string, unknown>, ...names: string[]): unknown {
  for (const name of names) if (fields[name] !== undefined) return fields[name];
  return undefined;
}

function requireString(fields: Record<string, unknown>, names: string[]): string {
  const value = firstDefined(fields, ...names);
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidRequestError(`${names[0]} is required (a non-empty string)`, { issues: [{ path: names[0] ?? '', message: 'Required non-empty string' }] });
  }
  return value;
}

/** `1536` -> `"1.5 GB"`, `512` -> `"512 MB"`. */
export function formatMegabytes(megabytes: number): string {
  if (megabytes < 1024) return `${Math.round(megabytes)} MB`;
  const gigabytes = megabytes / 1024;
  return `${gigabytes >= 10 ? Math.round(gigabytes) : Number(gigabytes.toFixed(1))} GB`;
}

/** The extension's display strings (`IntegrationsNativeTab`, `SystemInfo`), from our routes. */
export interface LegacySystemInfo {
  os: string;
  cpu: string;
  ram: string;
  gpu: string;
  vram: string;
  available_backends: string[];
}

/** Maps `system.info` (+ the GPU backends of `hardware.info` when known) to display strings. */
export function toLegacySystemInfo(info: RouteResponse<'system.info'>, llamaGpuBackends: readonly string[]): LegacySystemInfo {
  const vramTotal = info.gpus.reduce((sum, gpu) => sum + (gpu.vram_total_mb ?? 0), 0);
  return {
    os: `${info.os.distro} ${info.os.release} (${info.os.arch})`,
    cpu: `${info.cpu.brand} (${info.cpu.physical_cores} cores, ${info.cpu.logical_cores} threads)`,
    ram: formatMegabytes(info.memory.total_mb),
    gpu: info.gpus.length === 0 ? 'None' : info.gpus.map((gpu) => gpu.name).join(', '),
    vram: vramTotal > 0 ? formatMegabytes(vramTotal) : 'N/A',
    available_backends: ['cpu', ...llamaGpuBackends],
  };
}

/** The extension's `BackendType` for a loaded model's format. */
function backendOfFormat(format: string): string {
  return format === 'gguf' ? 'native_llama' : 'native_onnx';
}

function isAbsoluteAnywhere(candidate: string): boolean {
  return path.posix.isAbsolute(candidate) || path.win32.isAbsolute(candidate);
}

/**
 * Replies of the actions the host answers itself, synchronously: the extension's handshake must
 * be answered at once (it gives up after 30 s and reconnects), and ping is its liveness check.
 */
export function immediateLegacyReply(action: string, version: string): LegacyReplyFields | undefined {
  switch (action) {
    case 'handshake':
      return { message: 'TabAgent host ready', version };
    case 'ping':
      return { response: 'pong', version };
    case 'get_version':
      return { version };
    default:
      return undefined;
  }
}

function immediateAction(action: string): LegacyActionSpec {
  return { routes: [], run: async ({ version }) => immediateLegacyReply(action, version) ?? {} };
}

const systemInfoAction: LegacyActionSpec = {
  routes: ['system.info', 'hardware.info'],
  async run({ routes }) {
    const info = await routes.call('system.info', {});
    let gpuBackends: readonly string[] = [];
    try {
      gpuBackends = (await routes.call('hardware.info', {})).advice.llama_gpu_backends;
    } catch {
      // hardware.info is optional here: without it the host still reports CPU-only backends.
    }
    const display = toLegacySystemInfo(info, gpuBackends);
    return { ...display, data: display };
  },
};

const loadModelAction: LegacyActionSpec = {
  routes: ['models.register', 'models.load'],
  async run({ fields, routes }) {
    const target = requireString(fields, ['model_path', 'modelPath', 'model_id', 'model']);
    let model = target;
    if (isAbsoluteAnywhere(target)) model = (await routes.call('models.register', { path: target })).id;
    const loaded = await routes.call('models.load', { model });
    return { ...spreadRouteData(loaded), message: `Model ${loaded.model} loaded`, isReady: true, modelPath: loaded.model };
  },
};

const unloadModelAction: LegacyActionSpec = {
  routes: ['models.loaded', 'models.unload'],
  async run({ fields, routes }) {
    const named = firstDefined(fields, 'model_id', 'model', 'model_path', 'modelPath');
    let targets: string[];
    if (typeof named === 'string' && named.length > 0) targets = [named];
    else targets = (await routes.call('models.loaded', {})).models.filter((entry) => entry.task === 'text-generation').map((entry) => entry.model);
    const unloaded: string[] = [];
    for (const model of targets) {
      const result = await routes.call('models.unload', { model });
      if (result.status === 'unloaded') unloaded.push(result.model);
    }
    return { message: unloaded.length === 0 ? 'No model was loaded' : `Unloaded ${unloaded.join(', ')}`, unloaded };
  },
};

const modelStateAction: LegacyActionSpec = {
  routes: ['models.loaded', 'stats.get'],
  async run({ routes }) {
    const loaded = await routes.call('models.loaded', {});
    const textModels = loaded.models.filter((entry) => entry.task === 'text-generation');
    const current = textModels.find((entry) => entry.model === loaded.default_model) ?? textModels[0];
    const state: LegacyReplyFields = { isReady: current !== undefined };
    if (current !== undefined) {
      state.backend = backendOfFormat(current.format);
      state.modelPath = current.model;
    }
    let last: RouteResponse<'stats.get'>['last'] = null;
    try {
      last = (await routes.call('stats.get', {})).last;
    } catch {
      // Without stats (not built, or nothing generated yet) the state still says what is loaded.
    }
    if (last) {
      state.time_to_first_token = last.time_to_first_token_ms;
      state.tokens_per_second = last.tokens_per_second;
      state.input_tokens = last.prompt_tokens;
      state.output_tokens = last.completion_tokens;
      state.total_time = last.total_time_ms;
    }
    return state;
  },
};

// The generation itself, its setting names and its reply are the legacy codec's (services'
// `legacy.generate`): one call, one log line, one count.
const generateAction = routeAction('legacy.generate');

const stopGenerationAction: LegacyActionSpec = {
  routes: ['generation.stop', 'generation.halt'],
  async run({ fields, routes }) {
    const requestId = fields.request_id;
    if (typeof requestId === 'string' && requestId.length > 0) return spreadRouteData(await routes.call('generation.stop', { request_id: requestId }));
    return spreadRouteData(await routes.call('generation.halt', {}));
  },
};

const settingsAction = (source: string): LegacyActionSpec => ({
  routes: ['params.set'],
  async run({ fields, routes }) {
    return spreadRouteData(await routes.call('params.set', mapInferenceSettings(fields[source] ?? fields.settings)));
  },
});

const executeCommandAction: LegacyActionSpec = {
  routes: [],
  async run() {
    throw new InvalidRequestError('execute_command is refused: the TabAgent host never runs shell commands', { details: { action: 'execute_command' } });
  },
};

const hfTokenStatusAction: LegacyActionSpec = {
  routes: ['hf.token.status'],
  async run({ routes }) {
    const status = await routes.call('hf.token.status', {});
    return { ...spreadRouteData(status), hasToken: status.has_token };
  },
};

/**
 * Every legacy action the host answers, mapped onto catalogue routes. Actions with a live call
 * site in the extension come first; the rest are declared in its `NativeActionType` and map
 * cleanly onto a route.
 */
export const legacyActionTable: Readonly<Record<string, LegacyActionSpec>> = Object.freeze({
  handshake: immediateAction('handshake'),
  ping: immediateAction('ping'),
  get_version: immediateAction('get_version'),
  get_system_info: systemInfoAction,
  get_logs: routeAction('system.logs', (fields) => ({ lines: fields.lines ?? 500 })),
  pull_model: {
    routes: ['models.pull'],
    // Progress goes out as the Python host's `modelWorkerLoadingProgress` pushes (the shape the
    // extension's download UI uses), then the one reply with the pulled model.
    async run({ fields, routes, push }) {
      let final: unknown;
      const request = {
        model: firstDefined(fields, 'model_id', 'model_name', 'model'),
        variant: firstDefined(fields, 'variant', 'quantization'),
        stream: true,
      };
      await routes.stream('models.pull', request, async (chunk) => {
        if (chunk.status === 'completed') {
          final = chunk;
          return;
        }
        const loaded = 'completed' in chunk ? chunk.completed : undefined;
        const total = 'total' in chunk ? chunk.total : undefined;
        const file = 'file' in chunk ? chunk.file : undefined;
        const progress = loaded !== undefined && total !== undefined && total > 0 ? Math.round((loaded / total) * 1000) / 10 : undefined;
        await push({
          type: 'modelWorkerLoadingProgress',
          payload: {
            status: chunk.status,
            ...(file === undefined ? {} : { file }),
            ...(progress === undefined ? {} : { progress, loaded, total }),
            ...('bytes_per_second' in chunk && chunk.bytes_per_second !== undefined ? { bytes_per_second: chunk.bytes_per_second } : {}),
            message: file === undefined ? chunk.status : `${chunk.status} ${file}`,
          },
        });
      });
      return spreadRouteData(final);
    },
  },
  load_model: loadModelAction,
  unload_model: unloadModelAction,
  delete_model: routeAction('models.delete', (fields) => ({ model: firstDefined(fields, 'model_id', 'model_name', 'model') })),
  get_model_state: modelStateAction,
  generate: generateAction,
  stop_generation: stopGenerationAction,
  update_settings: settingsAction('settings'),
  execute_command: executeCommandAction,
  generate_embeddings: routeAction('embeddings', (fields) => ({
    model: fields.model,
    input: firstDefined(fields, 'input', 'texts'),
    dimensions: fields.dimensions,
  })),
  rerank_documents: routeAction('rerank'),
  semantic_search: routeAction('semantic_search'),
  compute_similarity: routeAction('similarity'),
  cluster_texts: routeAction('cluster'),
  recommend_items: routeAction('recommend'),
  get_params: routeAction('params.get', () => ({})),
  set_params: settingsAction('params'),
  list_loaded_models: routeAction('models.loaded', () => ({})),
  select_active_model: routeAction('models.select', (fields) => ({ model: firstDefined(fields, 'model_id', 'model') })),
  get_registered_models: routeAction('models.list', () => ({})),
  query_resources: routeAction('resources.get', () => ({})),
  estimate_model_size: routeAction('resources.estimate', (fields) => ({
    model: firstDefined(fields, 'model', 'model_id', 'model_path'),
    context_size: fields.context_size,
  })),
  get_hardware_info: routeAction('hardware.info', () => ({})),
  check_model_feasibility: routeAction('hardware.feasibility', (fields) => ({ model_size_mb: firstDefined(fields, 'model_size_mb', 'modelSizeMb') })),
  get_recommended_models: routeAction('hardware.recommendations', () => ({})),
  set_hf_token: routeAction('hf.token.set', (fields) => ({ token: fields.token })),
  get_hf_token_status: hfTokenStatusAction,
  clear_hf_token: routeAction('hf.token.clear', () => ({})),
});

/** Actions answered by the host without touching the provider. */
export const immediateLegacyActions: ReadonlySet<string> = new Set(['handshake', 'ping', 'get_version']);

/** Looks up an action; `undefined` for unknown actions (including inherited object keys). */
export function getLegacyAction(action: string): LegacyActionSpec | undefined {
  return Object.prototype.hasOwnProperty.call(legacyActionTable, action) ? legacyActionTable[action] : undefined;
}
