import { readFileSync } from 'node:fs';
import { InternalError, safeParseJson } from '@tabagent/values';
import type { ModelFormat, ModelTask } from './model-types.js';

/** One entry of the shipped catalogue of models to start with. */
export interface RecommendedModel {
  name: string;
  repo: string;
  variant: string;
  format: ModelFormat;
  task: ModelTask;
  /** Approximate download size, checked by hand when the catalogue was written. */
  sizeBytes: number;
  description: string;
}

interface CatalogueFile {
  models: Array<{ name: string; repo: string; variant: string; format: string; task: ModelTask; size_bytes: number; description: string }>;
}

/** The catalogue shipped with this package (`recommended-models.json`, beside `dist/`). */
export function loadRecommendedModels(): RecommendedModel[] {
  const parsed = safeParseJson(readFileSync(new URL('../recommended-models.json', import.meta.url), 'utf8'));
  // The file is package data written by us: a parse failure is a packaging bug.
  if (!parsed.success) throw new InternalError('recommended-models.json of @tabagent/model-cache is not valid JSON', { cause: parsed.error });
  const file = parsed.value as CatalogueFile;
  return file.models.map((model) => ({
    name: model.name,
    repo: model.repo,
    variant: model.variant,
    format: model.format,
    task: model.task,
    sizeBytes: model.size_bytes,
    description: model.description,
  }));
}
