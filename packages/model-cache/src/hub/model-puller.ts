import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConflictError, InsufficientStorageError, InvalidModelError, InvalidRequestError, NotFoundError } from '@tabagent/values';
import type { ModelRegistry } from '../model-registry.js';
import type { HubFile, HubVariant, ModelInspector, RegisteredModel } from '../model-types.js';
import type { HubClient } from './hub-client.js';
import { containedPath } from './hub-path.js';
import { hubAlias, parseHubReference, type HubReference } from './hub-reference.js';
import type { ModelDownloader } from './model-downloader.js';

/** One step of a pull, as the progress stream reports it. */
export interface PullProgress {
  status: 'resolving' | 'downloading' | 'verifying' | 'registering';
  file?: string;
  completed?: number;
  total?: number;
  bytesPerSecond?: number;
}

/** A variant as `models.scan` lists it. */
export interface ScannedVariant extends HubVariant {
  /** True when the hardware advice says the model fits this machine's memory. */
  fits: boolean;
  /** True for the variant a pull that names none downloads. */
  isDefault: boolean;
}

/** What a repository offers. */
export interface HubScan {
  repo: string;
  revision: string;
  variants: ScannedVariant[];
}

/** What a finished pull gives. */
export interface PullResult {
  model: RegisteredModel;
  alias: string;
  variant: HubVariant;
  /** Bytes fetched by this pull (0 when every file was already there). */
  downloadedBytes: number;
}

/** Options of `createModelPuller`. */
export interface ModelPullerOptions {
  registry: ModelRegistry;
  /** The inspectors of the formats this server reads; each lists its variants of a repository. */
  inspectors: readonly ModelInspector[];
  client: HubClient;
  downloader: ModelDownloader;
  /** Whether a variant fits this machine (the hardware advice); default: everything fits. */
  fits?: (variant: HubVariant) => Promise<boolean>;
}

/** Lists and pulls models from the Hub into the models folder. */
export interface ModelPuller {
  scan(reference: string, options?: { revision?: string; signal?: AbortSignal }): Promise<HubScan>;
  pull(
    reference: string,
    options?: { variant?: string; file?: string; revision?: string; signal?: AbortSignal; onProgress?: (progress: PullProgress) => void },
  ): Promise<PullResult>;
}

function chooseVariant(reference: HubReference, variants: readonly ScannedVariant[], files: readonly HubFile[]): ScannedVariant {
  const keys = variants.map((variant) => variant.key);
  if (reference.file !== null) {
    const wanted = reference.file;
    const found = variants.find((variant) => variant.files.some((file) => file.path === wanted));
    if (found) return found;
    const exists = files.some((file) => file.path === wanted);
    throw exists
      ? new InvalidRequestError(`${wanted} in ${reference.repo} is not a model file this server reads (GGUF, or an ONNX model beside tokenizer.json)`, {
          details: { repo: reference.repo, file: wanted, variants: keys },
        })
      : new NotFoundError(`${reference.repo} has no file ${wanted}`, { details: { repo: reference.repo, file: wanted, variants: keys } });
  }
  if (reference.variant !== null) {
    const wanted = reference.variant.toLowerCase();
    const found =
      variants.find((variant) => variant.key.toLowerCase() === wanted) ?? variants.find((variant) => variant.files[0]?.path.toLowerCase() === wanted);
    if (found) return found;
    throw new NotFoundError(`${reference.repo} has no variant "${reference.variant}"; it has: ${keys.join(', ') || 'none'}`, {
      details: { repo: reference.repo, variant: reference.variant, variants: keys },
    });
  }
  const chosen = variants.find((variant) => variant.isDefault);
  if (!chosen) {
    throw new InvalidRequestError(`${reference.repo} has no model this server reads (no .gguf file, no ONNX model beside tokenizer.json)`, {
      details: { repo: reference.repo, files: files.slice(0, 50).map((file) => file.path) },
    });
  }
  return chosen;
}

/** Creates the puller over a registry's models folder. */
export function createModelPuller(options: ModelPullerOptions): ModelPuller {
  const { registry, client, downloader } = options;
  const fits = options.fits ?? (async () => true);

  const scanReference = async (reference: HubReference, signal: AbortSignal | undefined): Promise<{ scan: HubScan; files: HubFile[] }> => {
    const files = await client.listFiles(reference.repo, reference.revision, { signal });
    const variants = options.inspectors.flatMap((inspector) => inspector.hubVariants?.(files, reference.repo) ?? []);
    const scanned: ScannedVariant[] = [];
    for (const variant of variants) scanned.push({ ...variant, fits: await fits(variant), isDefault: false });
    // The default: the most preferred variant that fits, else the most preferred one.
    const defaultVariant = scanned.find((variant) => variant.fits) ?? scanned[0];
    if (defaultVariant) defaultVariant.isDefault = true;
    return { scan: { repo: reference.repo, revision: reference.revision, variants: scanned }, files };
  };

  const registeredAt = async (modelPath: string): Promise<RegisteredModel> => {
    const model = (await registry.list()).find((candidate) => candidate.aliasOf === undefined && candidate.path === modelPath);
    if (model) return model;
    // Not listed: its inspector refused it (the GGUF header check, a missing tokenizer). Ask it why.
    const found = await stat(modelPath).catch(() => null);
    const inspector = found === null ? undefined : options.inspectors.find((candidate) => candidate.detect(modelPath, found));
    if (inspector) await inspector.inspect(modelPath);
    throw new InvalidModelError(`The downloaded model at ${modelPath} is not one this server can read`, { details: { path: modelPath } });
  };

  return {
    async scan(reference, scanOptions = {}) {
      const parsed = parseHubReference(reference, { revision: scanOptions.revision });
      return (await scanReference(parsed, scanOptions.signal)).scan;
    },

    async pull(reference, pullOptions = {}) {
      const parsed = parseHubReference(reference, { variant: pullOptions.variant, file: pullOptions.file, revision: pullOptions.revision });
      const report = pullOptions.onProgress ?? (() => undefined);
      report({ status: 'resolving' });
      const { scan, files } = await scanReference(parsed, pullOptions.signal);
      const variant = chooseVariant(parsed, scan.variants, files);
      const modelsDir = registry.modelsDir;

      // Where each file goes, checked before the first byte: inside the models folder, even through
      // a symbolic link already there (a hostile listing's `..`, or a split model whose stem is `..`).
      await mkdir(modelsDir, { recursive: true });
      const destinations = new Map<string, string>();
      for (const file of variant.files) destinations.set(file.target, await containedPath(modelsDir, file.target, parsed.repo));
      const destinationOf = (file: (typeof variant.files)[number]): string => destinations.get(file.target) as string;

      // Files already in place (same size) are kept; another file of the same name is a conflict, never overwritten.
      const pending: typeof variant.files = [];
      for (const file of variant.files) {
        const destination = destinationOf(file);
        const existing = await stat(destination).catch(() => null);
        if (existing === null) pending.push(file);
        else if (!existing.isFile() || existing.size !== file.size) {
          throw new ConflictError(`${destination} already exists and is not ${parsed.repo}/${file.path}; move it away or delete it first`, {
            details: { path: destination, repo: parsed.repo, file: file.path },
          });
        }
      }
      let remaining = 0;
      for (const file of pending) remaining += file.size - (await downloader.partialBytes({ repo: parsed.repo, revision: parsed.revision, file }));
      const free = pending.length === 0 ? Number.POSITIVE_INFINITY : await downloader.freeBytes();
      if (remaining > free) {
        throw new InsufficientStorageError(`Not enough disk space for ${parsed.repo} ${variant.key}: it needs ${remaining} more bytes and ${free} are free`, {
          details: { repo: parsed.repo, variant: variant.key, needed_bytes: remaining, free_bytes: free },
        });
      }

      let downloadedBytes = 0;
      for (const file of pending) {
        const before = await downloader.partialBytes({ repo: parsed.repo, revision: parsed.revision, file });
        await downloader.download(
          {
            repo: parsed.repo,
            revision: parsed.revision,
            file,
            destination: destinationOf(file),
            // Inspected before it is renamed in: a hostile header never reaches the models folder,
            // where every listing and the next start would read it.
            check: async (stagedPath) => {
              try {
                for (const inspector of options.inspectors) await inspector.checkDownload?.(stagedPath, file.target);
              } catch (error) {
                throw new InvalidModelError(
                  `${parsed.repo}/${file.path} is not a model this server can read (${(error as Error).message}); it was deleted and nothing was added to the models folder`,
                  { cause: error, details: { repo: parsed.repo, file: file.path } },
                );
              }
            },
          },
          {
            signal: pullOptions.signal,
            onProgress: (progress) =>
              report({
                status: 'downloading',
                file: progress.file,
                completed: progress.completed,
                total: progress.total,
                bytesPerSecond: progress.bytesPerSecond,
              }),
          },
        );
        downloadedBytes += file.size - before;
      }

      report({ status: 'registering' });
      const model = await registeredAt(path.join(modelsDir, variant.modelPath));
      const alias = hubAlias(parsed.repo, variant.key);
      // A pull that named no variant also answers to the bare `hf.co/owner/repo` (Ollama's `:latest`).
      const names = parsed.variant === null && parsed.file === null ? [alias, `hf.co/${parsed.repo}`] : [alias];
      for (const name of names) {
        if (name !== model.id && (await registry.aliasTarget(name)) !== model.id) await registry.setAlias(name, model.id);
      }
      return { model, alias, variant, downloadedBytes };
    },
  };
}
