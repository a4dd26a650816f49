import * as ort from 'onnxruntime-node';
import { InvalidModelError } from '@tabagent/values';
import type { Logger } from '@tabagent/values';

/** Execution provider names as the hardware package advises them. */
export type ExecutionProviderName = 'cuda' | 'dml' | 'coreml' | 'cpu' | (string & {});

/** Session options every loader takes. */
export interface OnnxSessionOptions {
  /** Providers to try in order (e.g. `['cuda', 'cpu']` from the hardware package); CPU is always tried last. Default `['cpu']`. */
  executionProviders?: readonly ExecutionProviderName[];
  /** Intra-op threads (physical cores from the hardware package; 1 in tests). Default: ONNX Runtime's choice. */
  threads?: number;
  logger?: Logger;
}

/** A created session and the provider that took it. */
export interface CreatedSession {
  session: ort.InferenceSession;
  executionProvider: string;
}

/**
 * Creates an inference session with the first provider that works: a GPU provider that is not
 * available (no driver, a build without it) fails at session creation, so each is tried alone
 * and CPU is the last resort. A file ONNX Runtime cannot parse is an `InvalidModelError`.
 */
export async function createOnnxSession(modelPath: string, options: OnnxSessionOptions = {}): Promise<CreatedSession> {
  const requested = [...(options.executionProviders ?? ['cpu'])];
  if (!requested.includes('cpu')) requested.push('cpu');
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    logSeverityLevel: 4,
    ...(options.threads === undefined ? {} : { intraOpNumThreads: options.threads, interOpNumThreads: 1 }),
  };
  let lastError: unknown;
  for (const provider of requested) {
    try {
      const session = await ort.InferenceSession.create(modelPath, { ...base, executionProviders: [provider] });
      return { session, executionProvider: provider };
    } catch (error) {
      lastError = error;
      if (provider !== 'cpu') {
        options.logger?.warn({ provider, error: (error as Error).message }, 'execution provider unavailable; falling back');
      }
    }
  }
  throw new InvalidModelError(`ONNX Runtime could not load ${modelPath}: ${(lastError as Error | undefined)?.message ?? 'unknown error'}`, {
    cause: lastError,
  });
}

/** Rank-n shape of a graph input or output from the session's metadata, or null when unknown. */
export function valueShape(session: ort.InferenceSession, name: string, kind: 'input' | 'output'): readonly (number | string)[] | null {
  const metadata = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const entry = metadata.find((m) => m.name === name);
  return entry && entry.isTensor ? entry.shape : null;
}

/** Element type of a graph input or output, or null when it is not a tensor. */
export function valueType(session: ort.InferenceSession, name: string, kind: 'input' | 'output'): string | null {
  const metadata = kind === 'input' ? session.inputMetadata : session.outputMetadata;
  const entry = metadata.find((m) => m.name === name);
  return entry && entry.isTensor ? entry.type : null;
}
