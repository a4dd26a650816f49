import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import {
  CancelledError,
  ConflictError,
  InsufficientStorageError,
  InvalidModelError,
  TabAgentError,
  TimeoutError,
  UpstreamError,
  safeParseJson,
  type Logger,
} from '@tabagent/values';
import type { HubFile } from '../model-types.js';
import type { HubClient } from './hub-client.js';

/** Progress of one file. */
export interface DownloadProgress {
  file: string;
  completed: number;
  total: number;
  /** Bytes per second received in this session of the download (0 before the first byte). */
  bytesPerSecond: number;
}

/** One file to fetch into place. */
export interface FileDownload {
  repo: string;
  revision: string;
  file: HubFile;
  /** Absolute path the verified file is renamed to. */
  destination: string;
  /**
   * Checks the verified file while it is still in the staging folder (a GGUF header), so a file
   * that must not go into the models folder never does: a throw deletes it and fails the download.
   */
  check?: (stagedPath: string) => Promise<void>;
}

/** A download that has not finished: running now, or a partial left by a cancel, a failure or a crash. */
export interface PartialDownload {
  repo: string;
  revision: string;
  file: string;
  destination: string;
  completed: number;
  total: number;
  active: boolean;
  updatedAt: string;
}

/** Options of `createModelDownloader`. */
export interface ModelDownloaderOptions {
  client: HubClient;
  /** Where partials live: on the models folder's file system, so the final rename is atomic. */
  stagingDir: string;
  /** Attempts after the first for transient failures (default 5). */
  retries?: number;
  /** First retry delay; doubles per attempt up to 8 s (default 500 ms). */
  retryDelayMs?: number;
  /** Free bytes of the staging file system (default `statfs`). */
  freeBytes?: (dir: string) => Promise<number>;
  /**
   * The slowest transfer kept (default 16 KiB/s), judged over each `speedWindowMs` (default 60 s),
   * as curl's --speed-limit and --speed-time: a body that drips a byte now and then (which the
   * socket's idle timeout never stops) ends the attempt with a timeout. So each file has a
   * deadline, its size at this rate, that a live transfer never meets. The partial is kept and
   * retried like a dropped connection.
   */
  minBytesPerSecond?: number;
  speedWindowMs?: number;
  logger?: Pick<Logger, 'warn'>;
}

/** Fetches files from the Hub into place: resumable, verified, shared between callers. */
export interface ModelDownloader {
  readonly stagingDir: string;
  /**
   * Downloads one file to its destination unless it is there. Two calls for the same file share
   * one transfer; aborting `signal` detaches this caller, and the transfer stops (leaving a
   * resumable partial) when no caller is left.
   */
  download(task: FileDownload, options?: { signal?: AbortSignal; onProgress?: (progress: DownloadProgress) => void }): Promise<void>;
  /** Bytes already downloaded of a file (its partial), 0 when none. */
  partialBytes(task: Pick<FileDownload, 'repo' | 'revision' | 'file'>): Promise<number>;
  /** Every partial and running download. */
  partials(): Promise<PartialDownload[]>;
  /** Deletes a partial that is not running; false when there is none. */
  discard(task: Pick<FileDownload, 'repo' | 'revision'> & { file: string }): Promise<boolean>;
  /** Free bytes where downloads are written. */
  freeBytes(): Promise<number>;
}

interface SharedDownload {
  promise: Promise<void>;
  controller: AbortController;
  listeners: Set<(progress: DownloadProgress) => void>;
  callers: number;
  last: DownloadProgress | null;
}

interface StateFile {
  repo: string;
  revision: string;
  file: string;
  size: number;
  sha256: string | null;
  gitOid: string | null;
  destination: string;
  updated_at: string;
}

const retryableCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
/** Room left free beside a download, so that finishing one never fills the disk to the last byte. */
const diskReserveBytes = 64 * 1024 * 1024;
const progressIntervalMs = 200;

async function readState(file: string): Promise<Partial<StateFile> | undefined> {
  const parsed = safeParseJson(await readFile(file, 'utf8').catch(() => ''));
  return parsed.success && typeof parsed.value === 'object' && parsed.value !== null ? parsed.value : undefined;
}

/** What a failed transfer tells the caller: our errors as they are, network and disk errors named. */
function toDownloadError(error: unknown, task: FileDownload): TabAgentError {
  if (TabAgentError.isInstance(error)) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const details = { repo: task.repo, file: task.file.path, ...(typeof code === 'string' ? { cause_code: code } : {}) };
  if (code === 'ENOSPC')
    return new InsufficientStorageError(`The disk filled up while downloading ${task.repo}/${task.file.path}; the partial is kept to resume`, {
      cause: error,
      details,
    });
  const reason = error instanceof Error ? error.message : String(error);
  return new UpstreamError(`Downloading ${task.repo}/${task.file.path} failed: ${reason}; pulling again resumes it`, { cause: error, details });
}

function isRetryable(error: unknown): boolean {
  if (TabAgentError.isInstance(error)) return error.retryable;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && retryableCodes.has(code);
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new CancelledError('The download was cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

async function sizeOf(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

/** The hash the Hub lists for a file: sha256 of the content for LFS files, git's blob SHA-1 for the others. */
function createVerifier(file: HubFile): { hash: Hash; expected: string | null; algorithm: string } {
  if (file.sha256 !== null) return { hash: createHash('sha256'), expected: file.sha256.toLowerCase(), algorithm: 'sha256' };
  const hash = createHash('sha1');
  hash.update(`blob ${file.size}\0`);
  return { hash, expected: file.gitOid?.toLowerCase() ?? null, algorithm: 'git-sha1' };
}

async function hashPrefix(hash: Hash, file: string, length: number): Promise<void> {
  if (length === 0) return;
  for await (const chunk of createReadStream(file, { start: 0, end: length - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) hash.update(chunk);
}

/**
 * Streams a response body into a file, calling `onChunk` (hash, count) before each write; 'data'
 * events with pause/resume cost less per chunk than async iteration at hundreds of MB/s. Resolves
 * when the body ends or its connection closes (the caller checks the length); rejects on an error.
 */
/** A floor on the transfer rate: at least `minBytes` in every window of `windowMs`, or `tooSlow` ends it. */
interface SpeedFloor {
  minBytes: number;
  windowMs: number;
  tooSlow: (bytes: number) => Error;
}

function copyBody(body: IncomingMessage, out: WriteStream, floor: SpeedFloor, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let windowBytes = 0;
    const speedCheck = setInterval(() => {
      // A body paused for the disk to drain is not the Hub's slowness.
      if (windowBytes < floor.minBytes && !body.isPaused()) finish(floor.tooSlow(windowBytes));
      windowBytes = 0;
    }, floor.windowMs);
    speedCheck.unref();
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      clearInterval(speedCheck);
      body.off('data', onData);
      out.off('drain', onDrain);
      if (error === undefined) resolve();
      else {
        body.destroy();
        reject(error instanceof Error ? error : new UpstreamError('The download stream failed'));
      }
    };
    const onDrain = (): void => {
      body.resume();
    };
    const onData = (chunk: Buffer): void => {
      windowBytes += chunk.length;
      try {
        onChunk(chunk);
      } catch (error) {
        finish(error);
        return;
      }
      if (!out.write(chunk)) body.pause();
    };
    body.on('data', onData);
    out.on('drain', onDrain);
    out.once('error', finish);
    body.once('error', finish);
    body.once('end', () => finish());
    body.once('close', () => finish());
  });
}

async function closeStream(stream: WriteStream): Promise<void> {
  if (stream.closed) return;
  stream.end();
  await once(stream, 'close');
}

/** Creates the downloader of a models folder. */
export function createModelDownloader(options: ModelDownloaderOptions): ModelDownloader {
  const { client, stagingDir } = options;
  const retries = options.retries ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const minBytesPerSecond = options.minBytesPerSecond ?? 16 * 1024;
  const speedWindowMs = options.speedWindowMs ?? 60_000;
  const inflight = new Map<string, SharedDownload>();
  const freeBytesOf =
    options.freeBytes ??
    (async (dir: string) => {
      const fsStats = await statfs(dir);
      return fsStats.bavail * fsStats.bsize;
    });

  const keyOf = (task: { repo: string; revision: string; file: string }): string => `${task.repo}@${task.revision}/${task.file}`;
  // Staging files are named by a hash of (repo, revision, file) only: no part of a name from the
  // Hub or from a caller (`models.downloads.discard`) becomes a path, on any OS.
  const stagingName = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 32);
  const pathsOf = (task: { repo: string; revision: string; file: string }) => {
    const base = path.join(stagingDir, stagingName(keyOf(task)));
    return { partial: `${base}.partial`, state: `${base}.json`, lock: `${base}.lock` };
  };

  /** One process downloads a file at a time: a lock beside the partial names the process (the CLI and a server may share a folder). */
  const acquireLock = async (lock: string, task: FileDownload): Promise<() => Promise<void>> => {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(lock, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        return () => rm(lock, { force: true });
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
        const owner = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
        if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
          throw new ConflictError(`${task.repo}/${task.file.path} is being downloaded by another process (pid ${owner})`, {
            details: { repo: task.repo, file: task.file.path, pid: owner },
          });
        }
        // The process that held it is gone: its partial is ours to resume.
        await rm(lock, { force: true });
      }
    }
    throw new ConflictError(`Could not lock ${lock}`);
  };

  const transfer = async (task: FileDownload, shared: SharedDownload): Promise<void> => {
    const signal = shared.controller.signal;
    const { file } = task;
    const paths = pathsOf({ repo: task.repo, revision: task.revision, file: file.path });
    await mkdir(stagingDir, { recursive: true });
    const release = await acquireLock(paths.lock, task);
    try {
      const state: StateFile = {
        repo: task.repo,
        revision: task.revision,
        file: file.path,
        size: file.size,
        sha256: file.sha256,
        gitOid: file.gitOid,
        destination: task.destination,
        updated_at: new Date().toISOString(),
      };
      const previous = await readState(paths.state);
      // A partial of other content (the file changed upstream) cannot be resumed.
      if (previous && (previous.sha256 !== state.sha256 || previous.gitOid !== state.gitOid || previous.size !== state.size))
        await rm(paths.partial, { force: true });
      await writeFile(paths.state, `${JSON.stringify(state)}\n`);

      const started = performance.now();
      const speedFloor: SpeedFloor = {
        minBytes: (minBytesPerSecond * speedWindowMs) / 1000,
        windowMs: speedWindowMs,
        tooSlow: (bytes) =>
          new TimeoutError(
            `${task.repo}/${file.path} arrived at ${Math.round((bytes * 1000) / speedWindowMs)} bytes/s over ${speedWindowMs / 1000} s, under the ${minBytesPerSecond} bytes/s floor; pulling again resumes it`,
            { details: { repo: task.repo, file: file.path, min_bytes_per_second: minBytesPerSecond } },
          ),
      };
      let sessionBytes = 0;
      let lastEmit = 0;
      const emit = (completed: number, force: boolean): void => {
        const now = performance.now();
        if (!force && now - lastEmit < progressIntervalMs) return;
        lastEmit = now;
        const seconds = (now - started) / 1000;
        const progress = { file: file.path, completed, total: file.size, bytesPerSecond: seconds > 0 ? Math.round(sessionBytes / seconds) : 0 };
        shared.last = progress;
        for (const listener of shared.listeners) listener(progress);
      };

      let verifier = createVerifier(file);
      let hashed = 0;
      for (let attempt = 0; ; attempt++) {
        let offset = (await sizeOf(paths.partial)) ?? 0;
        if (offset > file.size) {
          await rm(paths.partial, { force: true });
          offset = 0;
        }
        if (hashed !== offset) {
          verifier = createVerifier(file);
          await hashPrefix(verifier.hash, paths.partial, offset);
          hashed = offset;
        }
        emit(offset, true);
        if (offset === file.size) break;
        if (attempt === 0) {
          const free = await freeBytesOf(stagingDir);
          const needed = file.size - offset;
          if (free < needed + diskReserveBytes) {
            throw new InsufficientStorageError(
              `Not enough disk space for ${task.repo}/${file.path}: it needs ${needed} bytes (plus ${diskReserveBytes} kept free) and ${free} are free in ${stagingDir}`,
              { details: { repo: task.repo, file: file.path, needed_bytes: needed, free_bytes: free } },
            );
          }
        }
        try {
          const response = await client.openFile(task.repo, task.revision, file.path, { start: offset, signal });
          let position = offset;
          if (offset > 0 && response.status === 200) {
            // The server ignored the range: start over.
            position = 0;
            verifier = createVerifier(file);
            hashed = 0;
          } else if (response.status === 206) {
            const range = /bytes (\d+)-/u.exec(response.headers['content-range'] ?? '');
            if (Number(range?.[1]) !== offset) {
              response.body.destroy();
              throw new UpstreamError(`The Hub answered a range that starts at ${range?.[1] ?? '?'} instead of ${offset}`);
            }
          }
          const out = createWriteStream(paths.partial, { flags: position === 0 ? 'w' : 'a', highWaterMark: 1024 * 1024 });
          try {
            await copyBody(response.body, out, speedFloor, (chunk) => {
              if (position + chunk.length > file.size)
                throw new UpstreamError(`${file.path} is longer than the ${file.size} bytes the Hub lists`, { retryable: false });
              verifier.hash.update(chunk);
              position += chunk.length;
              hashed = position;
              sessionBytes += chunk.length;
              emit(position, false);
            });
          } finally {
            await closeStream(out);
          }
          if (position < file.size) throw new UpstreamError(`The connection ended after ${position} of ${file.size} bytes of ${file.path}`);
          emit(position, true);
          break;
        } catch (error) {
          if (signal.aborted) throw new CancelledError(`The download of ${file.path} was cancelled; pulling again resumes it`, { cause: error });
          if (!isRetryable(error) || attempt >= retries) {
            if (TabAgentError.isInstance(error) && !error.retryable && error.code === 'upstream_error') await rm(paths.partial, { force: true });
            throw toDownloadError(error, task);
          }
          const delay = Math.min(retryDelayMs * 2 ** attempt, 8000);
          options.logger?.warn({ err: error, file: file.path, attempt: attempt + 1, delayMs: delay }, 'Download interrupted; retrying');
          await sleep(delay, signal);
        }
      }

      const digest = verifier.hash.digest('hex');
      if (verifier.expected !== null && digest !== verifier.expected) {
        await rm(paths.partial, { force: true });
        await rm(paths.state, { force: true });
        throw new UpstreamError(
          `${task.repo}/${file.path} failed its check: the ${verifier.algorithm} of the downloaded data is ${digest}, the Hub lists ${verifier.expected}; the download was deleted`,
          { retryable: false, details: { repo: task.repo, file: file.path, expected: verifier.expected, actual: digest } },
        );
      }
      if (task.check) {
        try {
          await task.check(paths.partial);
        } catch (error) {
          await rm(paths.partial, { force: true });
          await rm(paths.state, { force: true });
          throw TabAgentError.isInstance(error)
            ? error
            : new InvalidModelError(`${task.repo}/${file.path} is not a model this server can read; the download was deleted`, {
                cause: error,
                details: { repo: task.repo, file: file.path },
              });
        }
      }
      await mkdir(path.dirname(task.destination), { recursive: true });
      await rename(paths.partial, task.destination);
      await rm(paths.state, { force: true });
    } finally {
      await release();
    }
  };

  const download: ModelDownloader['download'] = async (task, callOptions = {}) => {
    const key = keyOf({ repo: task.repo, revision: task.revision, file: task.file.path });
    if (callOptions.signal?.aborted) throw new CancelledError('The download was cancelled');
    let shared = inflight.get(key);
    if (!shared) {
      const created: SharedDownload = { promise: Promise.resolve(), controller: new AbortController(), listeners: new Set(), callers: 0, last: null };
      created.promise = transfer(task, created).finally(() => {
        if (inflight.get(key) === created) inflight.delete(key);
      });
      // A failure is reported to every caller through their own await; this only keeps it from being unhandled.
      created.promise.catch(() => undefined);
      inflight.set(key, created);
      shared = created;
    }
    const current = shared;
    current.callers++;
    const listener = callOptions.onProgress;
    if (listener) {
      current.listeners.add(listener);
      if (current.last) listener(current.last);
    }
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        current.promise.then(resolve, reject);
        if (callOptions.signal) {
          onAbort = () => reject(new CancelledError(`The download of ${task.file.path} was cancelled; pulling again resumes it`));
          callOptions.signal.addEventListener('abort', onAbort, { once: true });
        }
      });
    } finally {
      if (onAbort) callOptions.signal?.removeEventListener('abort', onAbort);
      if (listener) current.listeners.delete(listener);
      current.callers--;
      if (current.callers === 0) current.controller.abort();
    }
  };

  return {
    stagingDir,
    download,
    async partialBytes(task) {
      return (await sizeOf(pathsOf({ repo: task.repo, revision: task.revision, file: task.file.path }).partial)) ?? 0;
    },
    async partials() {
      let names: string[];
      try {
        names = (await readdir(stagingDir)).filter((name) => name.endsWith('.json')).sort();
      } catch {
        return [];
      }
      const found: PartialDownload[] = [];
      for (const name of names) {
        const read = await readState(path.join(stagingDir, name));
        if (typeof read?.repo !== 'string' || typeof read.revision !== 'string' || typeof read.file !== 'string') continue;
        const state = read as StateFile;
        const key = keyOf(state);
        const shared = inflight.get(key);
        found.push({
          repo: state.repo,
          revision: state.revision,
          file: state.file,
          destination: state.destination,
          completed: shared?.last?.completed ?? (await sizeOf(pathsOf(state).partial)) ?? 0,
          total: state.size,
          active: shared !== undefined,
          updatedAt: state.updated_at,
        });
      }
      return found;
    },
    async discard(task) {
      if (inflight.has(keyOf(task)))
        throw new ConflictError(`${task.repo}/${task.file} is downloading; cancel it first`, { details: { repo: task.repo, file: task.file } });
      const paths = pathsOf(task);
      const existed = (await sizeOf(paths.state)) !== null || (await sizeOf(paths.partial)) !== null;
      await Promise.all([rm(paths.partial, { force: true }), rm(paths.state, { force: true })]);
      return existed;
    },
    freeBytes: async () => {
      await mkdir(stagingDir, { recursive: true });
      return freeBytesOf(stagingDir);
    },
  };
}
