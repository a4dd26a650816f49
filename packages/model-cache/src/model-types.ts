import type { Stats } from 'node:fs';
import type { RouteResponse } from '@tabagent/values';

type ListedModel = RouteResponse<'models.list'>['data'][number];

/** Header facts of a model (`ModelDetails` of the API). */
export type ModelDetails = ListedModel['details'];
/** The backend format of a model: `gguf` and `onnx` in this server; one adapter per format. */
export type ModelFormat = string;
/** What a model does. */
export type ModelTask = ListedModel['task'];
/** Default sampling settings (`GenerationParams` of the API). */
export type GenerationParams = RouteResponse<'params.get'>;

/** What an inspector learns about a model without loading it. */
export interface ModelInspection {
  task: ModelTask;
  details: ModelDetails;
  sizeBytes: number;
}

/** One file of a Hugging Face repository, as the Hub's tree listing gives it. */
export interface HubFile {
  /** Path inside the repository (`onnx/model.onnx`). */
  path: string;
  size: number;
  /** The LFS object's sha256 (hex), for files stored in LFS; null for small git files. */
  sha256: string | null;
  /** The git blob id (SHA-1 of `blob <size>\0<content>`), which checks files outside LFS. */
  gitOid: string | null;
}

/** One file of a variant and where it goes, relative to the models folder. */
export interface HubVariantFile extends HubFile {
  target: string;
}

/**
 * One downloadable variant of a repository for one format: a GGUF quantisation (one file, or
 * every part of a split GGUF), or an ONNX model file with the configuration and tokenizer
 * files it needs.
 */
export interface HubVariant {
  /** The name a pull asks for: a quantisation (`Q4_K_M`, `q4f16`, `fp32`) or a file path. */
  key: string;
  format: ModelFormat;
  /** The task, when the file names say; otherwise null (the registry inspects it after download). */
  task: ModelTask | null;
  files: HubVariantFile[];
  totalBytes: number;
  /** The path the registry detects once every file is in place (a file or a folder), relative to the models folder. */
  modelPath: string;
}

/** Reads one model format. The registry asks each inspector whether it recognises a path. */
export interface ModelInspector {
  readonly format: ModelFormat;
  /** True when `path` (a file or folder) is a model of this format (for a split model: its first part only). */
  detect(path: string, stat: Stats): boolean;
  /** Reads the header/config; throws `InvalidModelError` for a broken model. */
  inspect(path: string, options?: { task?: ModelTask }): Promise<ModelInspection>;
  /** The id a file or folder gets in the models folder (default: its name). */
  idOf?(path: string): string;
  /**
   * The variants of this format among a repository's files, in order of preference: the first
   * is what a pull that names no variant downloads when it fits (see `pickDefaultVariant`).
   */
  hubVariants?(files: readonly HubFile[], repo: string): HubVariant[];
  /**
   * Checks one pulled file of this format while it is still in the staging folder, before it is
   * renamed into the models folder (`target` is its path there, relative to the folder). Throws
   * `InvalidModelError` for a file that must not go in; does nothing for files it does not own.
   */
  checkDownload?(stagedPath: string, target: string): Promise<void>;
}

/** Load options remembered per model. */
export interface ModelSettings {
  context_size?: number;
  gpu_layers?: number | 'auto' | 'max';
  threads?: number;
  keep_alive?: number | string;
}

/** One model the registry knows. */
export interface RegisteredModel {
  id: string;
  format: ModelFormat;
  task: ModelTask;
  /** Absolute path of the file or folder. */
  path: string;
  sizeBytes: number;
  /** Unix seconds: registration time, or the file's modification time. */
  created: number;
  details: ModelDetails;
  /**
   * `models-folder` for files in `<dataDir>/models`, `registered` for paths added by register,
   * `upstream` for a model another server serves (`path` is then its base URL).
   */
  source: 'models-folder' | 'registered' | 'upstream';
  /** Who serves it, as `owned_by` lists it (an upstream's name); absent: this server. */
  ownedBy?: string;
  settings: ModelSettings;
  /** Set on the entries `list()` gives for an alias: the model the alias names. */
  aliasOf?: string;
}
