import { randomUUID } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ConflictError,
  ForbiddenError,
  GenerationParams as GenerationParamsSchema,
  InvalidModelError,
  InvalidRequestError,
  ModelNotFoundError,
  TabAgentError,
  safeParseJson,
  type Logger,
} from '@tabagent/values';
import type { GenerationParams, ModelInspection, ModelInspector, ModelSettings, ModelTask, RegisteredModel } from './model-types.js';

/**
 * A record's own entry: ids are chosen by callers and file names, and `toString` or `constructor`
 * must be a model's name like any other, never a member every object inherits.
 */
function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Options of `createModelRegistry`. */
export interface ModelRegistryOptions {
  /** Data directory: `models.json` and `settings.json` live here. */
  dataDir: string;
  /** Models folder (default `<dataDir>/models`). */
  modelsDir?: string;
  /** One inspector per format (each format adapter supplies one: GGUF from gguf-loader, ONNX from onnx-loader). */
  inspectors: readonly ModelInspector[];
  /** Folders besides the models folder that `register` may take paths from (`--model-dir`). */
  modelDirs?: readonly string[];
  /** Warnings about unreadable models. */
  logger?: Pick<Logger, 'warn'>;
  /**
   * How long a scan of the models folder answers later lookups, in ms (default 1000). Every
   * request that names a model looks it up; a scan reads the folder, stats every entry and reads
   * the registry file, on the event loop's time. A scan is redone sooner when this registry
   * changes, when the registry file's size or time changes (the `tabagent pull` CLI writes it) and
   * when the models folder or one of its subfolders gains or loses an entry (their times change),
   * so only a file changed in place waits this long to be seen again.
   */
  scanTtlMs?: number;
}

/**
 * The one answer to every refused registration: naming the reason (missing, not a model, a
 * header's first bytes) would let a caller probe files it cannot read. The log has the reason.
 */
const registerRefusal = 'Only a GGUF file or an ONNX model folder inside the models folder or a folder given with --model-dir can be registered';

/** The server's model registry, persisted in the data directory. */
export interface ModelRegistry {
  readonly modelsDir: string;
  /** Every model in the models folder plus every registered path (rescanned on each call). */
  list(): Promise<RegisteredModel[]>;
  /** One model; `model_not_found` when unknown, `invalid_model` when its file is broken. */
  get(id: string): Promise<RegisteredModel>;
  /** Registers an absolute path (a file or model folder); returns the model. */
  register(modelPath: string, options?: { id?: string; task?: ModelTask }): Promise<RegisteredModel>;
  /** Deletes a model inside the models folder, unregisters an outside path, or drops an alias. */
  remove(id: string): Promise<'deleted' | 'unregistered'>;
  /**
   * Makes `alias` another name of a model (Ollama's copy; also how a tool hard-coded to
   * `gpt-4o-mini` reaches a local model). `get(alias)` then gives the model itself.
   */
  setAlias(alias: string, target: string): Promise<RegisteredModel>;
  /** The model an alias names, or undefined when `id` is not an alias. */
  aliasTarget(id: string): Promise<string | undefined>;
  /** The default model id, or null. */
  defaultModel(): Promise<string | null>;
  /** Selects the default model (must exist). */
  setDefaultModel(id: string): Promise<void>;
  /** Remembers load options for a model. */
  setModelSettings(id: string, settings: ModelSettings): Promise<void>;
  /** Default sampling settings. */
  getGenerationParams(): Promise<GenerationParams>;
  /** Changes some default sampling settings; returns all of them. */
  setGenerationParams(changes: Partial<GenerationParams>): Promise<GenerationParams>;
}

/** Defaults of `GenerationParams` before anything is stored. */
export const defaultGenerationParams: GenerationParams = {
  temperature: 0.8,
  top_p: 0.95,
  top_k: 40,
  min_p: 0.05,
  repeat_penalty: 1.1,
  frequency_penalty: 0,
  presence_penalty: 0,
  // null: until the model stops or the context is full, as Ollama and llama-server do (it was 512).
  max_tokens: null,
  seed: null,
  stop: [],
  system_prompt: null,
};

interface RegisteredEntry {
  path: string;
  id?: string;
  task?: ModelTask;
  registered_at: number;
}

interface RegistryFile {
  registered: RegisteredEntry[];
  default_model: string | null;
  settings: Record<string, ModelSettings>;
  /** Alias to the id of the model it names. */
  aliases: Record<string, string>;
}

interface Candidate {
  path: string;
  stat: Stats;
  inspector: ModelInspector;
  source: RegisteredModel['source'];
  explicitId?: string;
  task?: ModelTask;
  created: number;
}

type Scanned = { ok: true; model: RegisteredModel } | { ok: false; id: string; path: string; error: TabAgentError };
interface ScanResult {
  entries: Scanned[];
  registry: RegistryFile;
}

/** Writes a file atomically: a temporary file in the same folder, then a rename. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(temporary, content, 'utf8');
  try {
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = safeParseJson(text);
  return parsed.success ? parsed.value : undefined;
}

/** A scan for one caller: models and the registry copied (callers may change them), errors kept as they are (a copy would lose their class). */
/** A scan and what it depended on, remembered for `scanTtlMs`; `done` is set once it finished. */
interface ScanEntry {
  at: number;
  result: Promise<{ scan: ScanResult; stamp: string; folders: string[] }>;
  done?: { scan: ScanResult; stamp: string; folders: string[] };
}

/** Size and modification time: what changes when a file is rewritten or a folder gains or loses an entry. */
function stampText(fileStat: Stats): string {
  return `${fileStat.size}:${fileStat.mtimeMs}`;
}

/** The stamp of a path as it is now, `-` when it is absent. */
async function stampOf(file: string): Promise<string> {
  const fileStat = await stat(file).catch(() => null);
  return fileStat === null ? '-' : stampText(fileStat);
}

function copyScan(scan: ScanResult): ScanResult {
  return {
    registry: structuredClone(scan.registry),
    entries: scan.entries.map((entry) => (entry.ok ? { ok: true, model: structuredClone(entry.model) } : entry)),
  };
}

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative.length > 0 && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/** Default implementation of `ModelRegistry` on JSON files. */
export class JsonModelRegistry implements ModelRegistry {
  readonly modelsDir: string;
  private readonly registryFile: string;
  private readonly settingsFile: string;
  private readonly inspections = new Map<string, { key: string; result: ModelInspection | TabAgentError }>();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ModelRegistryOptions) {
    this.modelsDir = path.resolve(options.modelsDir ?? path.join(options.dataDir, 'models'));
    this.registryFile = path.join(options.dataDir, 'models.json');
    this.settingsFile = path.join(options.dataDir, 'settings.json');
  }

  /** The registry file as last read or written; this object is its only writer. */
  private cachedRegistry: RegistryFile | null = null;
  private cachedStamp = '';
  private cachedParams: GenerationParams | null = null;
  private lastScan: ScanEntry | null = null;

  /** The registry file; `knownStamp` is its stamp when the caller has just taken it. */
  private async readRegistry(knownStamp?: string): Promise<RegistryFile> {
    // Another process (the `tabagent pull` CLI) may have written the file: the cache holds while its stamp does.
    const stamp = knownStamp ?? (await stampOf(this.registryFile));
    if (this.cachedRegistry && this.cachedStamp === stamp) return structuredClone(this.cachedRegistry);
    this.cachedStamp = stamp;
    const raw = (await readJson(this.registryFile)) as { [K in keyof RegistryFile]?: unknown } | undefined;
    // A hand-edited file may hold anything: keep the entries that have a path.
    const entries: unknown[] = Array.isArray(raw?.registered) ? raw.registered : [];
    this.cachedRegistry = {
      registered: entries.filter((entry): entry is RegisteredEntry => typeof (entry as { path?: unknown } | null)?.path === 'string'),
      default_model: typeof raw?.default_model === 'string' ? raw.default_model : null,
      settings: typeof raw?.settings === 'object' && raw.settings !== null ? (raw.settings as Record<string, ModelSettings>) : {},
      aliases:
        typeof raw?.aliases === 'object' && raw.aliases !== null
          ? Object.fromEntries(Object.entries(raw.aliases).filter((entry): entry is [string, string] => typeof entry[1] === 'string'))
          : {},
    };
    return structuredClone(this.cachedRegistry);
  }

  /** Serialises read-modify-write cycles so concurrent requests do not lose updates. */
  private mutate<T>(change: (registry: RegistryFile) => Promise<T> | T): Promise<T> {
    const run = this.writes.then(async () => {
      const registry = await this.readRegistry();
      const result = await change(registry);
      await writeFileAtomic(this.registryFile, `${JSON.stringify(registry, null, 2)}\n`);
      this.cachedRegistry = structuredClone(registry);
      this.forgetScan();
      return result;
    });
    this.writes = run.catch(() => undefined);
    return run;
  }

  private detect(candidatePath: string, fileStat: Stats): ModelInspector | undefined {
    return this.options.inspectors.find((inspector) => inspector.detect(candidatePath, fileStat));
  }

  /** Model files and folders in the models folder and its subfolders; each subfolder's stamp goes to `stamps` (a link to a folder counts as the folder). */
  private async folderCandidates(stamps: { path: string; stamp: string }[]): Promise<Candidate[]> {
    const found: Candidate[] = [];
    const visit = async (dir: string, depth: number): Promise<void> => {
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch {
        return;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const entryPath = path.join(dir, name);
        let entryStat: Stats;
        try {
          entryStat = await stat(entryPath);
        } catch {
          continue;
        }
        if (depth === 0 && entryStat.isDirectory()) stamps.push({ path: entryPath, stamp: stampText(entryStat) });
        const inspector = this.detect(entryPath, entryStat);
        if (inspector) found.push({ path: entryPath, stat: entryStat, inspector, source: 'models-folder', created: Math.floor(entryStat.mtimeMs / 1000) });
        else if (entryStat.isDirectory() && depth === 0) subfolders.push(entryPath);
      }
    };
    // Top-level models first, so they keep the plain file stem as their id.
    const subfolders: string[] = [];
    await visit(this.modelsDir, 0);
    for (const folder of subfolders.splice(0)) await visit(folder, 1);
    return found;
  }

  private async inspect(candidate: Candidate): Promise<ModelInspection | TabAgentError> {
    const key = `${candidate.stat.size}:${candidate.stat.mtimeMs}:${candidate.task ?? ''}`;
    const cached = this.inspections.get(candidate.path);
    if (cached?.key === key) return cached.result;
    let result: ModelInspection | TabAgentError;
    try {
      result = await candidate.inspector.inspect(candidate.path, candidate.task === undefined ? undefined : { task: candidate.task });
    } catch (error) {
      // Whatever an inspector throws on a file (a parser's RangeError on a crafted header, an I/O
      // error) makes that model invalid, never the listing: one bad file must not fail every
      // model route, or the server's start.
      result = TabAgentError.isInstance(error)
        ? error
        : new InvalidModelError(
            `${path.basename(candidate.path)} cannot be read as a ${candidate.inspector.format} model: ${error instanceof Error ? error.message : String(error)}`,
            {
              cause: error,
            },
          );
      this.options.logger?.warn({ path: candidate.path, err: result }, 'Model cannot be used');
    }
    this.inspections.set(candidate.path, { key, result });
    return result;
  }

  /** Sizes and times of what a scan depends on: the registry file, the models folder and its subfolders. */
  private async scanStamp(folders: readonly string[]): Promise<string> {
    return (await Promise.all([this.registryFile, this.modelsDir, ...folders].map(stampOf))).join('|');
  }

  /**
   * The last scan while it holds (see `scanTtlMs`), else a new one; each caller gets its own copy.
   * Lookups that miss at the same moment share one scan: it is remembered before it starts.
   */
  private async scan(): Promise<ScanResult> {
    await this.writes;
    const ttl = this.options.scanTtlMs ?? 1000;
    const previous = this.lastScan;
    if (previous !== null && Date.now() - previous.at < ttl) {
      const done = previous.done;
      // In flight: it started within the TTL and stamps what it reads as it goes.
      if (done === undefined) return copyScan((await previous.result).scan);
      if ((await this.scanStamp(done.folders)) === done.stamp) return copyScan(done.scan);
    }
    const entry: ScanEntry = { at: Date.now(), result: this.scanNow() };
    this.lastScan = entry;
    entry.result.then(
      (done) => {
        entry.done = done;
      },
      () => {
        if (this.lastScan === entry) this.lastScan = null;
      },
    );
    return copyScan((await entry.result).scan);
  }

  /** Forgets the last scan: this registry changed the folder or the registry file. */
  private forgetScan(): void {
    this.lastScan = null;
  }

  /**
   * Reads the registry file and the models folder once. Each stamp is taken before what it covers
   * is read, so a change made while the scan runs is seen by the next lookup.
   */
  private async scanNow(): Promise<{ scan: ScanResult; stamp: string; folders: string[] }> {
    const [registryStamp, folderStamp] = await Promise.all([stampOf(this.registryFile), stampOf(this.modelsDir)]);
    const registry = await this.readRegistry(registryStamp);
    const subfolders: { path: string; stamp: string }[] = [];
    const candidates = await this.folderCandidates(subfolders);
    const seenPaths = new Set(candidates.map((candidate) => candidate.path));
    for (const entry of registry.registered) {
      if (seenPaths.has(entry.path)) continue;
      let entryStat: Stats;
      try {
        entryStat = await stat(entry.path);
      } catch {
        this.options.logger?.warn({ path: entry.path }, 'Registered model path is missing');
        continue;
      }
      const inspector = this.detect(entry.path, entryStat);
      if (!inspector) continue;
      seenPaths.add(entry.path);
      candidates.push({
        path: entry.path,
        stat: entryStat,
        inspector,
        source: 'registered',
        explicitId: entry.id,
        task: entry.task,
        created: entry.registered_at,
      });
    }
    const usedIds = new Set(candidates.flatMap((candidate) => (candidate.explicitId ? [candidate.explicitId] : [])));
    const entries: Scanned[] = [];
    for (const candidate of candidates) {
      let id = candidate.explicitId;
      if (id === undefined) {
        const stem = candidate.inspector.idOf?.(candidate.path) ?? path.basename(candidate.path);
        id = stem;
        for (let suffix = 2; usedIds.has(id); suffix++) id = `${stem}-${suffix}`;
        usedIds.add(id);
      }
      const inspection = await this.inspect(candidate);
      if (TabAgentError.isInstance(inspection)) {
        entries.push({ ok: false, id, path: candidate.path, error: inspection });
        continue;
      }
      entries.push({
        ok: true,
        model: {
          id,
          format: candidate.inspector.format,
          task: candidate.task ?? inspection.task,
          path: candidate.path,
          sizeBytes: inspection.sizeBytes,
          created: candidate.created,
          details: inspection.details,
          source: candidate.source,
          settings: own(registry.settings, id) ?? {},
        },
      });
    }
    return {
      scan: { entries, registry },
      stamp: [registryStamp, folderStamp, ...subfolders.map((folder) => folder.stamp)].join('|'),
      folders: subfolders.map((folder) => folder.path),
    };
  }

  async list(): Promise<RegisteredModel[]> {
    const { entries, registry } = await this.scan();
    const models = entries.flatMap((entry) => (entry.ok ? [entry.model] : []));
    const aliases = Object.entries(registry.aliases).flatMap(([alias, target]) => {
      const model = models.find((candidate) => candidate.id === target);
      return model === undefined ? [] : [{ ...model, id: alias, aliasOf: model.id }];
    });
    return [...models, ...aliases];
  }

  async get(id: string): Promise<RegisteredModel> {
    const { entries, registry } = await this.scan();
    const target = own(registry.aliases, id) ?? id;
    const entry = entries.find((candidate) => (candidate.ok ? candidate.model.id : candidate.id) === target);
    if (!entry) throw new ModelNotFoundError(`No model with id "${id}" is registered`, { details: { model: id } });
    if (!entry.ok) throw entry.error;
    return entry.model;
  }

  async register(modelPath: string, options: { id?: string; task?: ModelTask } = {}): Promise<RegisteredModel> {
    const refuse = (reason: string, cause?: unknown): InvalidRequestError => {
      this.options.logger?.warn({ path: modelPath, reason, ...(cause === undefined ? {} : { err: cause }) }, 'models.register refused');
      return new InvalidRequestError(registerRefusal);
    };
    if (!path.isAbsolute(modelPath)) throw refuse('not absolute');
    const given = [this.modelsDir, ...(this.options.modelDirs ?? [])].map((root) => path.resolve(root));
    const roots = [...new Set([...given, ...(await Promise.all(given.map((root) => realpath(root).catch(() => root))))])];
    // Checked on the name alone before the file system is asked anything: a path outside every
    // root is refused without a realpath or stat, so neither the answer nor the log (served by
    // /v1/logs) can tell whether it exists.
    if (!roots.some((root) => isInside(path.resolve(modelPath), root))) throw refuse('outside the models folder and --model-dir folders');
    let resolved: string;
    let entryStat: Stats;
    try {
      // Symlinks are followed next, so a link in the models folder cannot point outside it.
      resolved = await realpath(path.resolve(modelPath));
      entryStat = await stat(resolved);
    } catch (error) {
      throw refuse('missing or unreadable', error);
    }
    if (!roots.some((root) => isInside(resolved, root))) throw refuse('outside the models folder and --model-dir folders');
    const inspector = this.detect(resolved, entryStat);
    if (!inspector) throw refuse('not a model of any format');
    try {
      await inspector.inspect(resolved, options.task === undefined ? undefined : { task: options.task });
    } catch (error) {
      throw refuse('the inspector refused it', error);
    }
    const { entries } = await this.scan();
    const existing = entries.find((entry) => (entry.ok ? entry.model.path : entry.path) === resolved);
    if (options.id !== undefined) {
      const clash = entries.find((entry) => (entry.ok ? entry.model.id : entry.id) === options.id && (entry.ok ? entry.model.path : entry.path) !== resolved);
      if (clash) throw new ConflictError(`Model id "${options.id}" is already used by another model`, { details: { model: options.id } });
    }
    if (!existing || !existing.ok || existing.model.source === 'registered' || options.id !== undefined || options.task !== undefined) {
      await this.mutate((registry) => {
        registry.registered = registry.registered.filter((entry) => entry.path !== resolved);
        registry.registered.push({ path: resolved, id: options.id, task: options.task, registered_at: Math.floor(Date.now() / 1000) });
      });
    }
    const after = await this.scan();
    const model = after.entries.find((entry) => (entry.ok ? entry.model.path : entry.path) === resolved);
    if (!model) throw new ModelNotFoundError(`Model at ${resolved} could not be registered`);
    if (!model.ok) throw model.error;
    return model.model;
  }

  async setAlias(alias: string, target: string): Promise<RegisteredModel> {
    const { entries, registry } = await this.scan();
    if (entries.some((entry) => (entry.ok ? entry.model.id : entry.id) === alias)) {
      throw new ConflictError(`"${alias}" is the id of a model; an alias must be a new name`, { details: { model: alias } });
    }
    // An alias of an alias names the model itself.
    const model = await this.get(own(registry.aliases, target) ?? target);
    await this.mutate((stored) => {
      stored.aliases[alias] = model.id;
    });
    return model;
  }

  async aliasTarget(id: string): Promise<string | undefined> {
    const { registry } = await this.scan();
    return own(registry.aliases, id);
  }

  async remove(id: string): Promise<'deleted' | 'unregistered'> {
    const { registry } = await this.scan();
    if (own(registry.aliases, id) !== undefined) {
      await this.mutate((stored) => {
        stored.aliases = Object.fromEntries(Object.entries(stored.aliases).filter(([alias]) => alias !== id));
      });
      return 'unregistered';
    }
    const model = await this.getEvenIfBroken(id);
    const real = await realpath(model.path).catch(() => model.path);
    const modelsReal = await realpath(this.modelsDir).catch(() => this.modelsDir);
    const inside = isInside(path.resolve(model.path), this.modelsDir);
    if (inside) {
      // A link inside the models folder that points elsewhere must not delete its target.
      if (!isInside(real, modelsReal)) throw new ForbiddenError(`Refusing to delete ${model.path}: it resolves outside the models folder`);
      await rm(real, { recursive: true, force: true });
      this.inspections.delete(model.path);
      this.forgetScan();
    }
    await this.mutate((registry) => {
      registry.registered = registry.registered.filter((entry) => path.resolve(entry.path) !== path.resolve(model.path));
      if (registry.default_model === id) registry.default_model = null;
      registry.settings = Object.fromEntries(Object.entries(registry.settings).filter(([key]) => key !== id));
      // The model's aliases go with it.
      registry.aliases = Object.fromEntries(Object.entries(registry.aliases).filter(([, target]) => target !== id));
    });
    return inside ? 'deleted' : 'unregistered';
  }

  private async getEvenIfBroken(id: string): Promise<{ path: string }> {
    const { entries } = await this.scan();
    const entry = entries.find((candidate) => (candidate.ok ? candidate.model.id : candidate.id) === id);
    if (!entry) throw new ModelNotFoundError(`No model with id "${id}" is registered`, { details: { model: id } });
    return { path: entry.ok ? entry.model.path : entry.path };
  }

  async defaultModel(): Promise<string | null> {
    await this.writes;
    return (await this.readRegistry()).default_model;
  }

  async setDefaultModel(id: string): Promise<void> {
    await this.get(id);
    await this.mutate((registry) => {
      registry.default_model = id;
    });
  }

  async setModelSettings(id: string, settings: ModelSettings): Promise<void> {
    await this.mutate((registry) => {
      registry.settings[id] = { ...own(registry.settings, id), ...settings };
    });
  }

  async getGenerationParams(): Promise<GenerationParams> {
    await this.writes;
    return this.getGenerationParamsUnlocked();
  }

  async setGenerationParams(changes: Partial<GenerationParams>): Promise<GenerationParams> {
    const run = this.writes.then(async () => {
      const current = await this.getGenerationParamsUnlocked();
      const parsed = GenerationParamsSchema.safeParse({ ...current, ...changes });
      if (!parsed.success) throw new InvalidRequestError(`Invalid generation parameters: ${parsed.error.message}`);
      const stored = await readJson(this.settingsFile);
      const rest = typeof stored === 'object' && stored !== null ? stored : {};
      await writeFileAtomic(this.settingsFile, `${JSON.stringify({ ...rest, generation: parsed.data }, null, 2)}\n`);
      this.cachedParams = parsed.data;
      return { ...parsed.data, stop: [...parsed.data.stop] };
    });
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async getGenerationParamsUnlocked(): Promise<GenerationParams> {
    if (this.cachedParams) return { ...this.cachedParams, stop: [...this.cachedParams.stop] };
    this.cachedParams = await this.readGenerationParams();
    return { ...this.cachedParams, stop: [...this.cachedParams.stop] };
  }

  private async readGenerationParams(): Promise<GenerationParams> {
    const stored = await readJson(this.settingsFile);
    const generation = typeof stored === 'object' && stored !== null ? (stored as { generation?: unknown }).generation : undefined;
    const merged = GenerationParamsSchema.safeParse({
      ...defaultGenerationParams,
      ...(typeof generation === 'object' && generation !== null ? generation : {}),
    });
    return merged.success ? merged.data : { ...defaultGenerationParams };
  }
}

/** Creates the registry (files are created on the first change). */
export function createModelRegistry(options: ModelRegistryOptions): ModelRegistry {
  return new JsonModelRegistry(options);
}
