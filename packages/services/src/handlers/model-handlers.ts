import { toMegabytes, type LoadedModelView, type ModelResolver, type RegisteredModel } from '@tabagent/model-cache';
import { basename } from 'node:path';
import type { CallerIdentity, RouteResponse } from '@tabagent/values';
import type { HandlerGroup } from './handler-group.js';

/** Free RAM and VRAM in bytes (the hardware package). */
export interface AvailableMemory {
  ramBytes: number;
  vramBytes: number;
}

/** What the model handlers need. */
export interface ModelHandlerDeps {
  /** The registry and one backend per format. */
  models: ModelResolver;
  availableMemory: () => Promise<AvailableMemory>;
  /** The upstream engines (`@tabagent/upstream`), when any are configured. */
  upstreams?: {
    status(): RouteResponse<'upstreams.list'>;
    refresh(): Promise<RouteResponse<'upstreams.refresh'>>;
  };
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
  | 'resources.compatibility'
  | 'upstreams.list'
  | 'upstreams.refresh';

/** Model routes on the registry and the format backends. */
export function createModelHandlers(deps: ModelHandlerDeps): HandlerGroup<ModelRouteId> {
  const { models } = deps;
  const { registry } = models;

  /**
   * The model as a caller sees it. A caller with a pairing token (a web app the user paired) sees
   * only the last part of the path: where the user keeps files, their account name included, is
   * not what a chat token was given for (security review M2).
   */
  const info = (model: RegisteredModel, defaultModel: string | null, caller: CallerIdentity): RouteResponse<'models.list'>['data'][number] => ({
    id: model.id,
    object: 'model',
    created: model.created,
    owned_by: model.ownedBy ?? 'tabagent',
    format: model.format,
    task: model.task,
    path: caller.pairing === undefined ? model.path : basename(model.path),
    size_bytes: model.sizeBytes,
    loaded: models.isLoaded(model.aliasOf ?? model.id),
    is_default: model.id === defaultModel,
    details: model.details,
    ...(model.aliasOf === undefined ? {} : { alias_of: model.aliasOf }),
  });

  const estimate = async (request: { model: string; context_size?: number; gpu_layers?: number | 'auto' | 'max' }) => {
    const model = await registry.get(request.model);
    const [available, result] = await Promise.all([
      deps.availableMemory(),
      models.backendOf(model).estimate(model, {
        contextSize: request.context_size ?? model.settings.context_size,
        gpuLayers: request.gpu_layers ?? model.settings.gpu_layers,
      }),
    ]);
    return { model, ...result, available, fitsInRam: result.ramBytes <= available.ramBytes, fitsInVram: result.vramBytes <= available.vramBytes };
  };

  return {
    'models.list': async (_request, context) => {
      const [models, defaultModel] = await Promise.all([registry.list(), registry.defaultModel()]);
      return { object: 'list', data: models.map((model) => info(model, defaultModel, context.caller)) };
    },

    'models.get': async (request, context) => {
      const model = await registry.get(request.model);
      const chatTemplate = (await models.backendOf(model).chatTemplate?.(model)) ?? null;
      return { ...info(model, await registry.defaultModel(), context.caller), chat_template: chatTemplate };
    },

    'models.alias': async (request) => {
      const model = await registry.setAlias(request.alias, request.model);
      return { status: 'created', alias: request.alias, model: model.id };
    },

    'models.load': async (request) => {
      const model = await registry.get(request.model);
      const loaded = await models.ensureLoaded(model, {
        contextSize: request.context_size,
        gpuLayers: request.gpu_layers,
        threads: request.threads,
        keepAlive: request.keep_alive,
      });
      const remembered = Object.entries({ context_size: request.context_size, gpu_layers: request.gpu_layers, threads: request.threads }).filter(
        ([, value]) => value !== undefined,
      );
      if (remembered.length > 0) await registry.setModelSettings(model.id, Object.fromEntries(remembered));
      return { ...loaded.view, status: loaded.alreadyLoaded ? 'already_loaded' : 'loaded', load_time_ms: loaded.loadTimeMs };
    },

    'models.unload': async (request) => {
      const unloaded = await models.unload(request.model);
      return { status: unloaded ? 'unloaded' : 'not_loaded', model: request.model };
    },

    'models.loaded': async () => {
      const loaded: LoadedModelView[] = models.loaded();
      return { models: loaded, total: loaded.length, default_model: await registry.defaultModel() };
    },

    'models.select': async (request) => {
      await registry.setDefaultModel(request.model);
      return { status: 'selected', default_model: request.model };
    },

    'models.register': async (request, context) => {
      const model = await registry.register(request.path, { id: request.id, task: request.task });
      return info(model, await registry.defaultModel(), context.caller);
    },

    'models.delete': async (request) => {
      // Deleting an alias drops the name only; the model it names stays loaded and on disk.
      if ((await registry.aliasTarget(request.model)) !== undefined) return { status: await registry.remove(request.model), model: request.model };
      const model = await registry.get(request.model).catch(() => null);
      // Unload first: a loaded model keeps its file mapped.
      await models.unload(request.model);
      const status = await registry.remove(model?.id ?? request.model);
      return { status, model: request.model };
    },

    'upstreams.list': async () => deps.upstreams?.status() ?? { upstreams: [] },

    'upstreams.refresh': async () => (await deps.upstreams?.refresh()) ?? { upstreams: [] },

    'resources.estimate': async (request) => {
      const result = await estimate(request);
      const canLoad = result.fitsInRam && result.fitsInVram;
      return {
        model: result.model.id,
        estimated_mb: toMegabytes(result.ramBytes + result.vramBytes),
        estimated_ram_mb: toMegabytes(result.ramBytes),
        estimated_vram_mb: toMegabytes(result.vramBytes),
        available_ram_mb: toMegabytes(result.available.ramBytes),
        available_vram_mb: toMegabytes(result.available.vramBytes),
        fits_in_ram: result.fitsInRam,
        fits_in_vram: result.fitsInVram,
        can_load: canLoad,
        reason: canLoad
          ? null
          : !result.fitsInRam
            ? `needs ${toMegabytes(result.ramBytes)} MB of RAM but ${toMegabytes(result.available.ramBytes)} MB are available`
            : `needs ${toMegabytes(result.vramBytes)} MB of VRAM but ${toMegabytes(result.available.vramBytes)} MB are free`,
      };
    },

    'resources.compatibility': async (request) => {
      const result = await estimate(request);
      const canLoad = result.fitsInRam && result.fitsInVram;
      const device = !canLoad ? 'none' : result.gpuLayers > 0 ? 'gpu' : 'cpu';
      const estimatedMb = toMegabytes(result.ramBytes + result.vramBytes);
      const availableMb = toMegabytes(result.available.ramBytes + result.available.vramBytes);
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
