import path from 'node:path';
import { ggufModelInspector } from '@tabagent/gguf-loader';
import { assessFeasibility, type HardwareProbe } from '@tabagent/hardware';
import {
  createHubClient,
  createModelDownloader,
  createModelPuller,
  createModelRegistry,
  type ModelDownloader,
  type ModelRegistry,
} from '@tabagent/model-cache';
import { onnxModelInspector } from '@tabagent/onnx-loader';
import type { Logger } from '@tabagent/values';
import type { HfTokenStore } from './hf-token-store.js';

/** What the model layer of a data directory needs. */
export interface ModelLayerOptions {
  /** The data directory and its models folder. */
  layout: { root: string; models: string };
  hardware: Pick<HardwareProbe, 'availableMemory'>;
  hfTokens: HfTokenStore;
  hfEndpoint: string;
  /** `HF_TOKEN`, used when no token is stored. */
  hfToken: string | undefined;
  /** `--model-dir` folders `models.register` may take paths from. */
  modelDirs?: readonly string[];
  logger?: Pick<Logger, 'warn'>;
}

/** Files downloading now and bytes received since start, for `/metrics`. */
export interface DownloadStats {
  activeFiles: number;
  bytesReceived: number;
}

/**
 * Wraps a downloader to count what it receives: files in flight (a transfer shared by two pulls
 * is one file) and bytes received in this process (a resumed partial counts from where it was).
 */
function countDownloads(downloader: ModelDownloader): { downloader: ModelDownloader; downloadStats: () => DownloadStats } {
  const inFlight = new Map<string, { callers: number; completed: number; ready: Promise<void> }>();
  let bytesReceived = 0;
  const counted: ModelDownloader = {
    get stagingDir() {
      return downloader.stagingDir;
    },
    partialBytes: (task) => downloader.partialBytes(task),
    partials: () => downloader.partials(),
    discard: (task) => downloader.discard(task),
    freeBytes: () => downloader.freeBytes(),
    async download(task, callOptions) {
      const key = task.destination;
      // The entry is made before anything is awaited: two pulls of one file that start together
      // share it (one count in downloads_active, its bytes counted once).
      let entry = inFlight.get(key);
      if (entry === undefined) {
        const created = { callers: 0, completed: 0, ready: Promise.resolve() };
        // Bytes already on disk from an earlier, interrupted pull were not received now.
        created.ready = downloader
          .partialBytes(task)
          .catch(() => 0)
          .then((bytes) => {
            created.completed = Math.max(created.completed, bytes);
          });
        inFlight.set(key, created);
        entry = created;
      }
      const shared = entry;
      shared.callers += 1;
      try {
        await shared.ready;
        await downloader.download(task, {
          ...callOptions,
          onProgress: (progress) => {
            if (progress.completed > shared.completed) {
              bytesReceived += progress.completed - shared.completed;
              shared.completed = progress.completed;
            }
            callOptions?.onProgress?.(progress);
          },
        });
      } finally {
        shared.callers -= 1;
        if (shared.callers === 0 && inFlight.get(key) === shared) inFlight.delete(key);
      }
    },
  };
  return { downloader: counted, downloadStats: () => ({ activeFiles: inFlight.size, bytesReceived }) };
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
  const { downloader, downloadStats } = countDownloads(
    createModelDownloader({
      client: hubClient,
      stagingDir: path.join(layout.models, '.downloads'),
      ...(options.logger ? { logger: options.logger } : {}),
    }),
  );
  /** The hardware advice: weights plus room for a context in free RAM and VRAM. */
  const fits = async (sizeBytes: number): Promise<boolean> => {
    const available = await hardware.availableMemory();
    const megabyte = 1024 * 1024;
    return assessFeasibility(sizeBytes / megabyte, available.ramBytes / megabyte, available.vramBytes / megabyte).can_load;
  };
  const puller = createModelPuller({ registry, inspectors, client: hubClient, downloader, fits: (variant) => fits(variant.totalBytes) });
  return { inspectors, registry, hubClient, downloader, downloadStats, puller, fits };
}
