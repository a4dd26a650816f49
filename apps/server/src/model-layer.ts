import path from 'node:path';
import { ggufModelInspector } from '@tabagent/gguf-loader';
import { assessFeasibility, type HardwareProbe } from '@tabagent/hardware';
import { createHubClient, createModelDownloader, createModelPuller, createModelRegistry, type ModelRegistry } from '@tabagent/model-cache';
import { onnxModelInspector } from '@tabagent/onnx-loader';
import type { DataDirLayout } from './data-dir.js';
import type { HfTokenStore } from './hf-token-store.js';

/** What the model layer of a data directory needs. */
export interface ModelLayerOptions {
  layout: DataDirLayout;
  hardware: Pick<HardwareProbe, 'availableMemory'>;
  hfTokens: HfTokenStore;
  hfEndpoint: string;
  /** `HF_TOKEN`, used when no token is stored. */
  hfToken: string | undefined;
  /** `--model-dir` folders `models.register` may take paths from. */
  modelDirs?: readonly string[];
  logger?: { warn(objectOrMessage: object | string, message?: string): void };
}

/**
 * The registry, the Hub client, the downloader and the puller of a data directory: the one
 * place that names the formats (one inspector per format adapter), shared by the server and
 * the `tabagent pull/list/rm` commands.
 */
export function createModelLayer(options: ModelLayerOptions) {
  const { layout, hardware } = options;
  const inspectors = [ggufModelInspector, onnxModelInspector];
  const registry: ModelRegistry = createModelRegistry({
    dataDir: layout.root,
    modelsDir: layout.models,
    inspectors,
    modelDirs: options.modelDirs ?? [],
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const hubClient = createHubClient({ endpoint: options.hfEndpoint, token: () => options.hfTokens.get() ?? options.hfToken ?? null });
  const downloader = createModelDownloader({
    client: hubClient,
    stagingDir: path.join(layout.models, '.downloads'),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  /** The hardware advice: weights plus room for a context in free RAM and VRAM. */
  const fits = async (sizeBytes: number): Promise<boolean> => {
    const available = await hardware.availableMemory();
    const megabyte = 1024 * 1024;
    return assessFeasibility(sizeBytes / megabyte, available.ramBytes / megabyte, available.vramBytes / megabyte).can_load;
  };
  const puller = createModelPuller({ registry, inspectors, client: hubClient, downloader, fits: (variant) => fits(variant.totalBytes) });
  return { inspectors, registry, hubClient, downloader, puller, fits };
}
