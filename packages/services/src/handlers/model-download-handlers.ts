import type { HubVariant, ModelDownloader, ModelPuller, PullProgress, PullResult, RecommendedModel } from '@tabagent/model-cache';
import type { CallContext, RouteChunk, RouteResponse } from '@tabagent/values';
import type { HandlerGroup } from './handler-group.js';
import type { RunningRequests } from '../running-requests.js';

/** What the download handlers need. */
export interface ModelDownloadHandlerDeps {
  puller: ModelPuller;
  downloader: ModelDownloader;
  /** Where a pull is registered, so that `generation.stop` with its request id cancels it. */
  running: RunningRequests;
  recommended: readonly RecommendedModel[];
  /** Whether a model of this many bytes fits this machine (the hardware advice). */
  fits: (sizeBytes: number) => Promise<boolean>;
}

type DownloadRouteId = 'models.pull' | 'models.scan' | 'models.recommended' | 'models.downloads' | 'models.downloads.discard';
type PullChunk = RouteChunk<'models.pull'>;

const filesOf = (variant: HubVariant) => variant.files.map((file) => ({ path: file.path, size: file.size }));

function responseOf(result: PullResult, requestId: string): RouteResponse<'models.pull'> {
  return {
    status: 'completed',
    model: result.model.id,
    alias: result.alias,
    path: result.model.path,
    format: result.model.format,
    task: result.model.task,
    variant: result.variant.key,
    size_bytes: result.variant.totalBytes,
    downloaded_bytes: result.downloadedBytes,
    files: filesOf(result.variant),
    request_id: requestId,
  };
}

function chunkOf(progress: PullProgress, requestId: string): PullChunk {
  return {
    status: progress.status === 'verifying' ? 'downloading' : progress.status,
    ...(progress.file === undefined ? {} : { file: progress.file }),
    ...(progress.completed === undefined ? {} : { completed: progress.completed }),
    ...(progress.total === undefined ? {} : { total: progress.total }),
    ...(progress.bytesPerSecond === undefined ? {} : { bytes_per_second: progress.bytesPerSecond }),
    request_id: requestId,
  };
}

/** A queue of progress chunks read by the stream; the end or the error comes last. */
function progressQueue() {
  const items: PullChunk[] = [];
  let wake: (() => void) | null = null;
  const notify = (): void => {
    wake?.();
    wake = null;
  };
  return {
    push(chunk: PullChunk): void {
      // Only the newest progress of the same file matters to a reader that fell behind.
      const last = items.at(-1);
      if (last && last.status === 'downloading' && chunk.status === 'downloading' && last.file === chunk.file) items[items.length - 1] = chunk;
      else items.push(chunk);
      notify();
    },
    notify,
    take(): PullChunk | undefined {
      return items.shift();
    },
    wait(): Promise<void> {
      return new Promise((resolve) => {
        wake = resolve;
      });
    },
  };
}

/** Pulls, scans, the recommended catalogue and the partial downloads. */
export function createModelDownloadHandlers(deps: ModelDownloadHandlerDeps): HandlerGroup<DownloadRouteId> {
  const startPull = (
    request: { model: string; variant?: string | undefined; file?: string | undefined; revision?: string | undefined },
    context: CallContext,
    onProgress: (progress: PullProgress) => void,
  ) => {
    const { signal, release } = deps.running.register(context, 'pull');
    const result = deps.puller.pull(request.model, { variant: request.variant, file: request.file, revision: request.revision, signal, onProgress });
    result.then(release, release);
    return result;
  };

  return {
    'models.pull': async (request, context) => {
      if (!request.stream) return responseOf(await startPull(request, context, () => undefined), context.requestId);

      const queue = progressQueue();
      let started!: () => void;
      // Errors found before the first byte (no such repository, a gated one, no disk space) are
      // the answer itself, with their status; only later failures end the stream.
      const firstByte = new Promise<void>((resolve) => {
        started = resolve;
      });
      let outcome: { ok: true; result: PullResult } | { ok: false; error: unknown } | null = null;
      const pulling = startPull(request, context, (progress) => {
        if (progress.status !== 'resolving') started();
        queue.push(chunkOf(progress, context.requestId));
      }).then(
        (result) => {
          outcome = { ok: true, result };
          queue.notify();
        },
        (error: unknown) => {
          outcome = { ok: false, error };
          queue.notify();
        },
      );
      await Promise.race([firstByte, pulling]);
      const ended = (): typeof outcome => outcome;
      const early = ended();
      if (early && !early.ok) throw early.error;

      return (async function* pullStream(): AsyncGenerator<PullChunk> {
        for (;;) {
          const next = queue.take();
          if (next) {
            yield next;
            continue;
          }
          const done = ended();
          if (done) {
            if (!done.ok) throw done.error;
            yield { ...responseOf(done.result, context.requestId) };
            return;
          }
          await queue.wait();
        }
      })();
    },

    'models.scan': async (request, context) => {
      const scan = await deps.puller.scan(request.model, { revision: request.revision, signal: context.signal });
      return {
        repo: scan.repo,
        revision: scan.revision,
        variants: scan.variants.map((variant) => ({
          key: variant.key,
          format: variant.format,
          task: variant.task,
          files: filesOf(variant),
          total_bytes: variant.totalBytes,
          fits: variant.fits,
          default: variant.isDefault,
        })),
        default_variant: scan.variants.find((variant) => variant.isDefault)?.key ?? null,
      };
    },

    'models.recommended': async (request) => {
      const models: RouteResponse<'models.recommended'>['models'] = [];
      for (const model of deps.recommended) {
        if (request.task !== undefined && model.task !== request.task) continue;
        const fits = await deps.fits(model.sizeBytes);
        if (!fits && !request.all) continue;
        models.push({
          name: model.name,
          pull: `hf.co/${model.repo}:${model.variant}`,
          repo: model.repo,
          variant: model.variant,
          format: model.format,
          task: model.task,
          size_bytes: model.sizeBytes,
          description: model.description,
          fits,
        });
      }
      return { models, total: models.length };
    },

    'models.downloads': async () => {
      const downloads = (await deps.downloader.partials()).map((partial) => ({
        repo: partial.repo,
        revision: partial.revision,
        file: partial.file,
        destination: partial.destination,
        completed: partial.completed,
        total: partial.total,
        active: partial.active,
        updated_at: partial.updatedAt,
      }));
      return { downloads, total: downloads.length };
    },

    'models.downloads.discard': async (request) => {
      const deleted = await deps.downloader.discard({ repo: request.repo, revision: request.revision, file: request.file });
      return { status: deleted ? 'deleted' : 'not_found', repo: request.repo, file: request.file };
    },
  };
}
