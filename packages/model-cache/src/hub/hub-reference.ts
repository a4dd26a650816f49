import { InvalidRequestError } from '@tabagent/values';
import { unsafePathReason } from './hub-path.js';

/** What a pull names: a repository, a revision, and optionally a variant (quantisation) or one file. */
export interface HubReference {
  /** `owner/name`. */
  repo: string;
  /** Branch, tag or commit; `main` unless named. */
  revision: string;
  /** A variant key such as `Q4_K_M` or `q4f16`; null for the default. */
  variant: string | null;
  /** One file path in the repository; null unless named. */
  file: string | null;
}

const repoPattern = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/u;

/**
 * Parses the spellings peers use: `hf.co/owner/repo:Q4_K_M` (Ollama), `owner/repo:Q4_K_M`
 * (llama-server's `-hf`), `huggingface.co/owner/repo` and `https://huggingface.co/owner/repo`,
 * with `@revision` before the tag. A tag that ends in `.gguf` or `.onnx` names a file; Ollama's
 * `latest` means the default variant.
 */
export function parseHubReference(
  input: string,
  overrides: { variant?: string | undefined; file?: string | undefined; revision?: string | undefined } = {},
): HubReference {
  let rest = input.trim().replace(/^https?:\/\//u, '');
  rest = rest.replace(/^(?:www\.)?(?:hf\.co|huggingface\.co)\//u, '');
  let tag: string | null = null;
  const colon = rest.indexOf(':');
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  let revision: string | null = null;
  const at = rest.indexOf('@');
  if (at !== -1) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const repo = rest.replace(/\/+$/u, '');
  if (!repoPattern.test(repo)) {
    throw new InvalidRequestError(`"${input}" is not a Hugging Face repository: use owner/name, hf.co/owner/name:Q4_K_M or owner/name@revision`, {
      details: { model: input },
    });
  }
  if (tag === '' || tag?.toLowerCase() === 'latest') tag = null;
  const tagIsFile = tag !== null && /\.(?:gguf|onnx)$/iu.test(tag);
  const file = overrides.file ?? (tagIsFile ? tag : null);
  const variant = overrides.variant ?? (tagIsFile ? null : tag);
  const resolvedRevision = overrides.revision ?? revision ?? 'main';
  if (!/^[\w.\-/]+$/u.test(resolvedRevision) || resolvedRevision.includes('..')) {
    throw new InvalidRequestError(`"${resolvedRevision}" is not a revision (a branch, tag or commit)`, { details: { revision: resolvedRevision } });
  }
  const fileProblem = file === null ? null : unsafePathReason(file);
  if (file !== null && fileProblem !== null) {
    throw new InvalidRequestError(`"${file}" is not a file path inside the repository: ${fileProblem}`, { details: { file } });
  }
  return { repo, revision: resolvedRevision, variant: variant ?? null, file };
}

/** The id a pulled model is also known by: `hf.co/owner/repo:KEY` (Ollama's name for it). */
export function hubAlias(repo: string, key: string): string {
  return `hf.co/${repo}:${key}`;
}
