import type { Stats } from 'node:fs';
import { inspectGgufFile } from './gguf-model-info.js';

/** Header facts in the shape of the `ModelDetails` schema of @tabagent/values. */
export interface GgufModelDetails {
  architecture: string | null;
  parameters: number | null;
  context_length: number | null;
  quantization: string | null;
  embedding_length: number | null;
  has_chat_template: boolean | null;
}

/** What the registry learns about one model file. */
export interface GgufInspection {
  task: 'text-generation' | 'embedding';
  details: GgufModelDetails;
  sizeBytes: number;
}

/** A registry inspector for one model format (the server's `ModelInspector` shape). */
export interface GgufModelInspector {
  readonly format: 'gguf';
  /** True for a `.gguf` file. */
  detect(path: string, stat: Stats): boolean;
  /** Reads and validates the header; throws `InvalidModelError` for a broken file. */
  inspect(path: string): Promise<GgufInspection>;
}

/** The registry inspector for GGUF files: header only, no weights. */
export const ggufModelInspector: GgufModelInspector = {
  format: 'gguf',
  detect: (path, stat) => stat.isFile() && path.toLowerCase().endsWith('.gguf'),
  async inspect(path) {
    const info = await inspectGgufFile(path);
    return {
      task: info.embeddingOnly ? 'embedding' : 'text-generation',
      sizeBytes: info.fileSize,
      details: {
        architecture: info.architecture,
        parameters: info.parameters,
        context_length: info.contextLength,
        quantization: info.quantization,
        embedding_length: info.embeddingLength,
        has_chat_template: info.hasChatTemplate,
      },
    };
  },
};
