import { readdirSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { HubFile, HubVariant, ModelInspection, ModelInspector } from '@tabagent/model-cache';
import { readGgufHeader } from './gguf-header-reader.js';
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
export interface GgufInspection extends ModelInspection {
  task: 'text-generation' | 'embedding';
  details: GgufModelDetails;
}

/** The registry inspector for GGUF files (the model-cache `ModelInspector` of the `gguf` format). */
export interface GgufModelInspector extends ModelInspector {
  readonly format: 'gguf';
  inspect(path: string): Promise<GgufInspection>;
  idOf(path: string): string;
  hubVariants(files: readonly HubFile[], repo: string): HubVariant[];
}

/** `name-00001-of-00003.gguf`: llama.cpp's split naming (gguf-split). */
const splitPattern = /^(?<stem>.+)-(?<part>\d{5})-of-(?<count>\d{5})\.gguf$/iu;

/** Quantisation names as they appear in GGUF file names (llama.cpp's ftype names). */
const quantPattern =
  /(?:^|[-_.])(?<quant>I?Q[1-8]_(?:K_(?:XXS|XS|S|M|L|XL)|K|[01]|NL|XXS|XS|S|M)|IQ[1-4]_(?:XXS|XS|S|M|NL)|TQ[12]_0|MXFP4(?:_MOE)?|BF16|F16|F32)(?=$|[-_.])/giu;

/**
 * Quantisations a pull that names none takes, best first (the first that fits wins): Q4_K_M is
 * the size/quality point Ollama, LM Studio and llama-server default to.
 */
export const ggufDefaultQuantOrder = [
  'Q4_K_M',
  'Q4_K_S',
  'Q4_0',
  'IQ4_XS',
  'IQ4_NL',
  'Q5_K_M',
  'Q5_K_S',
  'Q5_0',
  'Q6_K',
  'Q8_0',
  'Q3_K_L',
  'Q3_K_M',
  'Q3_K_S',
  'IQ3_M',
  'IQ3_XS',
  'Q2_K',
  'BF16',
  'F16',
  'F32',
] as const;

/** The quantisation a GGUF file name carries (`Q4_K_M`), or null. */
export function quantOfFileName(fileName: string): string | null {
  const base = path.posix
    .basename(fileName)
    .replace(/\.gguf$/iu, '')
    .replace(/-\d{5}-of-\d{5}$/u, '');
  let found: string | null = null;
  for (const match of base.matchAll(quantPattern)) found = match.groups?.['quant']?.toUpperCase() ?? found;
  return found;
}

function splitOf(filePath: string): { stem: string; part: number; count: number } | null {
  const match = splitPattern.exec(path.basename(filePath));
  if (!match?.groups) return null;
  return { stem: match.groups['stem'] as string, part: Number(match.groups['part']), count: Number(match.groups['count']) };
}

/** Every part of a split model, given its first part (parts that are missing are skipped; the header check reports them). */
function splitParts(firstPart: string): string[] {
  const split = splitOf(firstPart);
  if (!split) return [firstPart];
  const folder = path.dirname(firstPart);
  const names = new Set(readdirSync(folder));
  const parts: string[] = [];
  for (let part = 1; part <= split.count; part++) {
    const name = `${split.stem}-${String(part).padStart(5, '0')}-of-${String(split.count).padStart(5, '0')}.gguf`;
    if (names.has(name)) parts.push(path.join(folder, name));
  }
  return parts;
}

const rank = (key: string): number => {
  const index = (ggufDefaultQuantOrder as readonly string[]).indexOf(key);
  return index === -1 ? ggufDefaultQuantOrder.length : index;
};

function ggufHubVariants(files: readonly HubFile[]): HubVariant[] {
  const groups = new Map<string, HubFile[]>();
  for (const file of files) {
    const base = path.posix.basename(file.path);
    if (!base.toLowerCase().endsWith('.gguf') || /mmproj/iu.test(base)) continue;
    const split = splitOf(base);
    const key = split ? `${path.posix.dirname(file.path)}/${split.stem}#${split.count}` : file.path;
    groups.set(key, [...(groups.get(key) ?? []), file]);
  }
  const variants: HubVariant[] = [];
  const usedKeys = new Set<string>();
  for (const group of groups.values()) {
    group.sort((a, b) => a.path.localeCompare(b.path));
    const first = group[0] as HubFile;
    const split = splitOf(path.posix.basename(first.path));
    // A split model with a missing part cannot load: it is not offered.
    if (split && (group.length !== split.count || split.part !== 1)) continue;
    const quant = quantOfFileName(first.path);
    const key = quant !== null && !usedKeys.has(quant) ? quant : first.path;
    usedKeys.add(key);
    const folder = split?.stem ?? '';
    const targets = group.map((file) => (split ? `${folder}/${path.posix.basename(file.path)}` : path.posix.basename(file.path)));
    variants.push({
      key,
      format: 'gguf',
      task: /embed/iu.test(first.path) ? 'embedding' : null,
      files: group.map((file, index) => ({ ...file, target: targets[index] as string })),
      totalBytes: group.reduce((sum, file) => sum + file.size, 0),
      modelPath: targets[0] as string,
    });
  }
  return variants.sort((a, b) => rank(a.key) - rank(b.key) || a.key.localeCompare(b.key));
}

/** The registry inspector for GGUF files: header only, no weights. Split models are one model, found by their first part. */
export const ggufModelInspector: GgufModelInspector = {
  format: 'gguf',
  detect: (filePath: string, stat: Stats) => {
    if (!stat.isFile() || !filePath.toLowerCase().endsWith('.gguf')) return false;
    const split = splitOf(filePath);
    return split === null || split.part === 1;
  },
  idOf: (filePath) => {
    const base = path.basename(filePath).replace(/\.gguf$/iu, '');
    return splitOf(filePath)?.stem ?? base;
  },
  async inspect(filePath) {
    const info = await inspectGgufFile(filePath);
    const parts = splitParts(filePath);
    const sizeBytes = parts.length > 1 ? parts.reduce((sum, part) => sum + statSync(part).size, 0) : info.fileSize;
    return {
      task: info.embeddingOnly ? 'embedding' : 'text-generation',
      sizeBytes,
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
  hubVariants: (files) => ggufHubVariants(files),
  async checkDownload(stagedPath, target) {
    if (!target.toLowerCase().endsWith('.gguf')) return;
    const split = splitOf(target);
    // A whole model, or a split model's first part, holds the full header; later parts hold only
    // their own tensors, so they are parsed (within the same bounds) but not validated as a model.
    if (split === null || split.part === 1) await inspectGgufFile(stagedPath);
    else await readGgufHeader(stagedPath);
  },
};
