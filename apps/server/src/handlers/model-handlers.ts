import { inspectGgufFile, type AvailableMemory, type GgufModelManager } from '@tabagent/gguf-loader';
import { InvalidRequestError, type RouteResponse } from '@tabagent/values';
import type { ModelRegistry, RegisteredModel } from '../model-registry.js';
import { createGgufModelAccess, type GgufModelAccess, type LoadedModelView } from './gguf-model-access.js';
import type { HandlerGroup } from './handler-group.js';

/** Another model backend (the ONNX loader) the model routes dispatch to by format. */
export interface ExtraModelBackend {
  readonly format: 'onnx';
  load(model: RegisteredModel, options: { keepAlive?: number | string }): Promise<{ model: LoadedModelView; alreadyLoaded: boolean; loadTimeMs: number }>;
  unload(modelId: string): Promise<boolean>;
  loaded(): LoadedModelView[];
  /** Memory the model needs, in bytes (for estimate/compatibility). */
  estimateBytes?(model: RegisteredModel): Promise<number>;
}

/** What the model handlers need. */
export interface ModelHandlerDeps {
  manager: GgufModelManager;
  registry: ModelRegistry;
  /** Free RAM/VRAM (the hardware package). */
  availableMemory: () => Promise<AvailableMemory>;
  /** Shared with the generation handlers (created from manager and registry when absent). */
  access?: GgufModelAccess;
  /** Backends of other formats (ONNX). */
  extraBackends?: readonly ExtraModelBackend[];
}

type ModelRouteId =
  | 'models.list'
  | 'models.get'
  | 'models.load'
  | 'models.unload'
  | 'models.loaded'
  | 'models.select'
  | 'models.register'
  | 'models.delete'
  | 'models.alias'
  | 'resources.estimate'
  | 'resources.compatibility';

const megabyte = 1024 * 1024;
const round = (value: number): number => Math.round(value * 10) / 10;

/** Model routes on the registry and the GGUF manager (plus any extra backends). */
export function createModelHandlers(deps: ModelHandlerDeps): HandlerGroup<ModelRouteId> {
  const { manager, registry } = deps;
  const access = deps.access ?? createGgufModelAccess({ manager, registry });
  const extra = (format: string): ExtraModelBackend | undefined => deps.extraBackends?.find((backend) => backend.format === format);
  const isLoaded = (id: string): boolean =>
    manager.get(id) !== undefined || (deps.extraBackends ?? []).some((backend) => backend.loaded().some((entry) => entry.model === id));

  const info = (model: RegisteredModel, defaultModel: string | null): RouteResponse<'models.list'>['data'][number] => ({
    id: model.id,
    object: 'model',
    created: model.created,
    owned_by: 'tabagent',
    format: model.format,
    task: model.task,
    path: model.path,
    size_bytes: model.sizeBytes,
    loaded: isLoaded(model.aliasOf ?? model.id),
    is_default: model.id === defaultModel,
    details: model.details,
    ...(model.aliasOf === undefined ? {} : { alias_of: model.aliasOf }),
  });

  const loadedViews = async (): Promise<LoadedModelView[]> => {
    const models = await registry.list();
    const taskById = new Map(models.map((model) => [model.id, model.task]));
    const gguf = manager.list().map((loaded) => access.view(loaded, taskById.get(loaded.id) ?? (loaded.info.embeddingOnly ? 'embedding' : 'text-generation')));
    return [...gguf, ...(deps.extraBackends ?? []).flatMap((backend) => backend.loaded())];
  };

  const estimate = async (request: { model: string; context_size?: number; gpu_layers?: number | 'auto' | 'max' }) => {
    const model = await registry.get(request.model);
    const available = await deps.availableMemory();
    if (model.format === 'gguf') {
      const result = await manager.estimate(model.path, {
        contextSize: request.context_size ?? model.settings.context_size,
        gpuLayers: request.gpu_layers ?? model.settings.gpu_layers,
      });
      const fitsInRam = result.ramBytes <= available.ramBytes;
      const fitsInVram = result.vramBytes <= available.vramBytes;
      return { model, ramBytes: result.ramBytes, vramBytes: result.vramBytes, gpuLayers: result.gpuLayers, available, fitsInRam, fitsInVram };
    }
    const bytes = (await extra(model.format)?.estimateBytes?.(model)) ?? model.sizeBytes;
    return { model, ramBytes: bytes, vramBytes: 0, gpuLayers: 0, available, fitsInRam: bytes <= available.ramBytes, fitsInVram: true };
  };

  return {
    'models.list': async () => {
      const [models, defaultModel] = await Promise.all([registry.list(), registry.defaultModel()]);
      return { object: 'list', data: models.map((model) => info(model, defaultModel)) };
    },

    'models.get': async (request) => {
      const model = await registry.get(request.model);
      // The template is read from the header here rather than kept in every listing.
      const chatTemplate = model.format === 'gguf' ? (await inspectGgufFile(model.path)).chatTemplate : null;
      return { ...info(model, await registry.defaultModel()), chat_template: chatTemplate };
    },

    'models.alias': async (request) => {
      const model = await registry.setAlias(request.alias, request.model);
      return { status: 'created', alias: request.alias, model: model.id };
    },

    'models.load': async (request) => {
      const model = await registry.get(request.model);
      const started = performance.now();
      const backend = extra(model.format);
      if (model.format !== 'gguf') {
        if (!backend) throw new InvalidRequestError(`No backend loads ${model.format} models in this server`);
        const loaded = await backend.load(model, { keepAlive: request.keep_alive });
        return { ...loaded.model, status: loaded.alreadyLoaded ? 'already_loaded' : 'loaded', load_time_ms: loaded.loadTimeMs };
      }
      const remembered = { context_size: request.context_size, gpu_layers: request.gpu_layers, threads: request.threads };
      const { model: loaded, alreadyLoaded } = await access.ensureLoaded(model, {
        contextSize: request.context_size,
        gpuLayers: request.gpu_layers,
        threads: request.threads,
        keepAlive: request.keep_alive,
      });
      if (Object.values(remembered).some((value) => value !== undefined)) {
        await registry.setModelSettings(model.id, Object.fromEntries(Object.entries(remembered).filter(([, value]) => value !== undefined)));
      }
      return {
        ...access.view(loaded, model.task),
        status: alreadyLoaded ? 'already_loaded' : 'loaded',
        load_time_ms: alreadyLoaded ? performance.now() - started : loaded.loadTimeMs,
      };
    },

    'models.unload': async (request) => {
      let unloaded = await manager.unload(request.model);
      for (const backend of deps.extraBackends ?? []) unloaded = (await backend.unload(request.model)) || unloaded;
      return { status: unloaded ? 'unloaded' : 'not_loaded', model: request.model };
    },

    'models.loaded': async () => {
      const models = await loadedViews();
      return { models, total: models.length, default_model: await registry.defaultModel() };
    },

    'models.select': async (request) => {
      await registry.setDefaultModel(request.model);
      return { status: 'selected', default_model: request.model };
    },

    'models.register': async (request) => {
      const model = await registry.register(request.path, { id: request.id, task: request.task });
      return info(model, await registry.defaultModel());
    },

    'models.delete': async (request) => {
      // Deleting an alias drops the name only; the model it names stays loaded and on disk.
      if ((await registry.aliasTarget(request.model)) !== undefined) return { status: await registry.remove(request.model), model: request.model };
      const model = await registry.get(request.model).catch(() => null);
      // Unload first: a loaded model keeps its file mapped.
      await manager.unload(request.model);
      for (const backend of deps.extraBackends ?? []) await backend.unload(request.model);
      const status = await registry.remove(model?.id ?? request.model);
      return { status, model: request.model };
    },

    'resources.estimate': async (request) => {
      const result = await estimate(request);
      const canLoad = result.fitsInRam && result.fitsInVram;
      return {
        model: result.model.id,
        estimated_mb: round((result.ramBytes + result.vramBytes) / megabyte),
        estimated_ram_mb: round(result.ramBytes / megabyte),
        estimated_vram_mb: round(result.vramBytes / megabyte),
        available_ram_mb: round(result.available.ramBytes / megabyte),
        available_vram_mb: round(result.available.vramBytes / megabyte),
        fits_in_ram: result.fitsInRam,
        fits_in_vram: result.fitsInVram,
        can_load: canLoad,
        reason: canLoad
          ? null
          : !result.fitsInRam
            ? `needs ${round(result.ramBytes / megabyte)} MB of RAM but ${round(result.available.ramBytes / megabyte)} MB are available`
            : `needs ${round(result.vramBytes / megabyte)} MB of VRAM but ${round(result.available.vramBytes / megabyte)} MB are free`,
      };
    },

    'resources.compatibility': async (request) => {
      const result = await estimate(request);
      const canLoad = result.fitsInRam && result.fitsInVram;
      const device = !canLoad ? 'none' : result.gpuLayers > 0 ? 'gpu' : 'cpu';
      const estimatedMb = round((result.ramBytes + result.vramBytes) / megabyte);
      const availableMb = round((result.available.ramBytes + result.available.vramBytes) / megabyte);
      return {
        model: result.model.id,
        compatible: canLoad,
        message: canLoad
          ? `${result.model.id} fits: about ${estimatedMb} MB on ${device === 'gpu' ? `the GPU (${result.gpuLayers} layers) and RAM` : 'the CPU'}`
          : `${result.model.id} needs about ${estimatedMb} MB but ${availableMb} MB are available`,
        estimated_memory_mb: estimatedMb,
        available_memory_mb: availableMb,
        recommended_device: device,
      };
    },
  };
}
