import { InvalidRequestError } from './errors.js';

/**
 * The extension's `InferenceSettings` (its legacy `generate` and settings actions) in this server's
 * names: used by native messaging for `params.set` and by the legacy generate codec (services).
 */

/** Sampling fields of our routes (`params.set`, `legacy.generate`) built from extension settings. */
export interface MappedInferenceSettings {
  temperature?: unknown;
  max_tokens?: unknown;
  top_k?: unknown;
  top_p?: unknown;
  min_p?: unknown;
  repeat_penalty?: unknown;
  frequency_penalty?: unknown;
  presence_penalty?: unknown;
  seed?: unknown;
  stop?: unknown;
  system_prompt?: unknown;
}

/** Extension (Hugging Face generation-config) key -> our key. Keys not listed are ignored. */
export const inferenceSettingNames: ReadonlyArray<readonly [string, keyof MappedInferenceSettings]> = [
  ['temperature', 'temperature'],
  ['max_new_tokens', 'max_tokens'],
  ['max_tokens', 'max_tokens'],
  ['top_k', 'top_k'],
  ['top_p', 'top_p'],
  ['min_p', 'min_p'],
  ['repetition_penalty', 'repeat_penalty'],
  ['repeat_penalty', 'repeat_penalty'],
  ['frequency_penalty', 'frequency_penalty'],
  ['presence_penalty', 'presence_penalty'],
  ['seed', 'seed'],
  ['stop', 'stop'],
  ['system_prompt', 'system_prompt'],
];

/**
 * Maps the extension's `InferenceSettings` (snake_case Hugging Face names: `max_new_tokens`,
 * `repetition_penalty`, ...) onto our sampling names. Values are passed on unchanged, so the
 * route schema validates them and reports bad ones by field. HF-only keys (`do_sample`,
 * `num_beams`, `max_length`, ...) have no llama.cpp meaning and are ignored.
 */
export function mapInferenceSettings(settings: unknown): MappedInferenceSettings {
  if (settings === undefined || settings === null) return {};
  if (typeof settings !== 'object' || Array.isArray(settings))
    throw new InvalidRequestError('settings must be an object', { issues: [{ path: 'settings', message: 'Expected an object' }] });
  const source = settings as Record<string, unknown>;
  const mapped: MappedInferenceSettings = {};
  for (const [from, to] of inferenceSettingNames) {
    const value = source[from];
    if (value !== undefined && mapped[to] === undefined) mapped[to] = value;
  }
  return mapped;
}
