import { z } from 'zod';
import { defineRoute } from '../route-definition.js';
import { acceptFieldAlias, EmptyRequest, ModelId, QueryBoolean } from './common-schemas.js';

/** Rust's `model_id` is accepted for the field we name `model`, as OpenAI does. */
const acceptModelIdAlias = acceptFieldAlias('model_id', 'model');

/** A model format: one backend adapter per format (`gguf` and `onnx` in this server). */
export const ModelFormat = z
  .string()
  .min(1)
  .meta({ id: 'ModelFormat', examples: ['gguf', 'onnx'] });
export const ModelTask = z.enum(['text-generation', 'embedding', 'rerank', 'token-classification']);

export const ModelDetails = z
  .object({
    architecture: z.string().nullable(),
    parameters: z.number().nullable().describe('Parameter count read from the file header.'),
    context_length: z.number().int().nullable(),
    quantization: z.string().nullable(),
    embedding_length: z.number().int().nullable(),
    has_chat_template: z.boolean().nullable(),
  })
  .meta({ id: 'ModelDetails' });

export const ModelInfo = z
  .object({
    id: z.string(),
    object: z.literal('model'),
    created: z.number().int().describe('Unix time the file was registered or last modified.'),
    owned_by: z.string(),
    format: ModelFormat,
    task: ModelTask,
    path: z.string().describe("The model's file or folder on this machine; only its last part for a caller with a pairing token."),
    size_bytes: z.number().int().nonnegative(),
    loaded: z.boolean(),
    is_default: z.boolean(),
    details: ModelDetails,
    alias_of: z.string().optional().describe('Set when this id is an alias: the model it names (see POST /v1/models/alias).'),
  })
  .meta({ id: 'ModelInfo' });

export const ModelDetailResponse = ModelInfo.extend({
  chat_template: z.string().nullable().describe("The GGUF's chat template (Jinja), as the model ships it; null for other formats."),
}).meta({ id: 'ModelDetailResponse' });

export const AliasModelRequest = z
  .object({
    model: ModelId.describe('The model to name (an alias of an alias names the model itself).'),
    alias: ModelId.describe('The new name: e.g. "gpt-4o-mini" for a tool that cannot be told another, or an Ollama name:tag.'),
  })
  .meta({ id: 'AliasModelRequest' });
export const AliasModelResponse = z.object({ status: z.literal('created'), alias: z.string(), model: z.string() }).meta({ id: 'AliasModelResponse' });

export const ModelListResponse = z.object({ object: z.literal('list'), data: z.array(ModelInfo) }).meta({ id: 'ModelListResponse' });

export const ModelRequest = z.preprocess(acceptModelIdAlias, z.object({ model: ModelId })).meta({ id: 'ModelRequest' });

export const GpuLayers = z.union([z.number().int().nonnegative(), z.literal('auto'), z.literal('max')]);

export const LoadModelRequest = z
  .preprocess(
    acceptModelIdAlias,
    z.object({
      model: ModelId,
      context_size: z.number().int().min(64).max(1_048_576).optional(),
      gpu_layers: GpuLayers.optional().describe('Layers to offload to the GPU: a number, "auto" (fit free VRAM) or "max".'),
      threads: z.number().int().min(1).max(1024).optional(),
      keep_alive: z.union([z.number(), z.string()]).optional(),
    }),
  )
  .meta({ id: 'LoadModelRequest' });

export const LoadedModel = z
  .object({
    model: z.string(),
    format: ModelFormat,
    task: ModelTask,
    loaded_at: z.string(),
    last_used_at: z.string(),
    expires_at: z.string().nullable().describe('When the keep-alive period ends (null: kept until unloaded).'),
    context_size: z.number().int().nullable(),
    gpu_layers: z.number().int().nonnegative(),
    total_layers: z.number().int().nonnegative().nullable(),
    device: z.string(),
    threads: z.number().int().nullable(),
    memory_mb: z.number().nonnegative(),
    running: z.number().int().nonnegative().optional().describe('Requests being served by this model now (where its backend tracks them).'),
    queued: z.number().int().nonnegative().optional().describe('Requests waiting for this model (for a GGUF: for a free sequence).'),
  })
  .meta({ id: 'LoadedModel' });

export const LoadModelResponse = LoadedModel.extend({ status: z.enum(['loaded', 'already_loaded']), load_time_ms: z.number().nonnegative() }).meta({
  id: 'LoadModelResponse',
});

export const UnloadModelResponse = z.object({ status: z.enum(['unloaded', 'not_loaded']), model: z.string() }).meta({ id: 'UnloadModelResponse' });

export const LoadedModelsResponse = z
  .object({ models: z.array(LoadedModel), total: z.number().int(), default_model: z.string().nullable() })
  .meta({ id: 'LoadedModelsResponse' });

export const SelectModelResponse = z.object({ status: z.literal('selected'), default_model: z.string() }).meta({ id: 'SelectModelResponse' });

export const PullModelRequest = z
  .object({
    model: ModelId.describe(
      "What to pull: `hf.co/owner/repo:Q4_K_M` (Ollama's spelling), `owner/repo[:variant]` (llama-server's `-hf`), `owner/repo@revision`, or `owner/repo:file.gguf`.",
    ),
    variant: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe(
        'Variant to fetch: a GGUF quantisation (`Q4_K_M`) or an ONNX variant (`fp32`, `quantized`, `q4f16`). Default: the most preferred one that fits.',
      ),
    file: z.string().min(1).max(1000).optional().describe('One file path in the repository (explicit `{repo, file, revision}`).'),
    revision: z.string().min(1).max(200).optional().describe('Branch, tag or commit (default `main`).'),
    stream: z.boolean().default(false).describe('Stream progress chunks (SSE over HTTP) instead of one answer at the end.'),
  })
  .meta({ id: 'PullModelRequest' });
export const PullModelResponse = z
  .object({
    status: z.literal('completed'),
    model: z.string().describe('Registry id of the pulled model.'),
    alias: z.string().describe('The `hf.co/owner/repo:VARIANT` name the model is also known by.'),
    path: z.string(),
    format: ModelFormat,
    task: ModelTask,
    variant: z.string(),
    size_bytes: z.number().int(),
    downloaded_bytes: z.number().int().describe('Bytes fetched by this pull (0 when every file was already there).'),
    files: z.array(z.object({ path: z.string(), size: z.number().int() })),
    request_id: z.string(),
  })
  .meta({ id: 'PullModelResponse' });
export const PullModelChunk = z
  .object({
    status: z.enum(['resolving', 'downloading', 'registering', 'completed']),
    file: z.string().optional(),
    completed: z.number().int().optional().describe('Bytes of `file` on disk so far.'),
    total: z.number().int().optional().describe('Bytes of `file`.'),
    bytes_per_second: z.number().optional(),
    request_id: z.string(),
  })
  .extend(PullModelResponse.omit({ status: true, request_id: true }).partial().shape)
  .meta({ id: 'PullModelChunk' });

const HubVariantInfo = z.object({
  key: z.string(),
  format: ModelFormat,
  task: ModelTask.nullable(),
  files: z.array(z.object({ path: z.string(), size: z.number().int() })),
  total_bytes: z.number().int(),
  fits: z.boolean().describe("Whether it fits in this machine's free memory (weights plus room for a context), by the hardware advice."),
  default: z.boolean().describe('The variant a pull that names none downloads.'),
});
export const ScanModelRequest = z
  .object({ model: ModelId.describe('Repository: `owner/repo` or `hf.co/owner/repo`.'), revision: z.string().min(1).max(200).optional() })
  .meta({ id: 'ScanModelRequest' });
export const ScanModelResponse = z
  .object({ repo: z.string(), revision: z.string(), variants: z.array(HubVariantInfo), default_variant: z.string().nullable() })
  .meta({ id: 'ScanModelResponse' });

export const RecommendedModelsRequest = z
  .object({ all: QueryBoolean.default(false).describe('Include models that do not fit this machine.'), task: ModelTask.optional() })
  .meta({ id: 'RecommendedModelsRequest' });
export const RecommendedModelsResponse = z
  .object({
    models: z.array(
      z.object({
        name: z.string(),
        pull: z.string().describe('What to pass to models.pull (`tabagent pull <this>`).'),
        repo: z.string(),
        variant: z.string(),
        format: ModelFormat,
        task: ModelTask,
        size_bytes: z.number().int().describe('Approximate download size, as checked by hand when the catalogue was written.'),
        description: z.string(),
        fits: z.boolean(),
      }),
    ),
    total: z.number().int(),
  })
  .meta({ id: 'RecommendedModelsResponse' });

const DownloadInfo = z.object({
  repo: z.string(),
  revision: z.string(),
  file: z.string(),
  destination: z.string(),
  completed: z.number().int(),
  total: z.number().int(),
  active: z.boolean().describe('True while a pull is transferring it; false for a partial left to resume.'),
  updated_at: z.string(),
});
export const DownloadsResponse = z.object({ downloads: z.array(DownloadInfo), total: z.number().int() }).meta({ id: 'DownloadsResponse' });
export const DiscardDownloadRequest = z
  .object({ repo: z.string().min(1).max(200), file: z.string().min(1).max(1000), revision: z.string().min(1).max(200).default('main') })
  .meta({ id: 'DiscardDownloadRequest' });
export const DiscardDownloadResponse = z
  .object({ status: z.enum(['deleted', 'not_found']), repo: z.string(), file: z.string() })
  .meta({ id: 'DiscardDownloadResponse' });

export const RegisterModelRequest = z
  .object({
    path: z.string().min(1).describe('Absolute path of a .gguf file or an ONNX model folder.'),
    id: ModelId.optional(),
    task: ModelTask.optional().describe('Task of an ONNX model when its config does not say.'),
  })
  .meta({ id: 'RegisterModelRequest' });

export const DeleteModelResponse = z.object({ status: z.enum(['deleted', 'unregistered']), model: z.string() }).meta({ id: 'DeleteModelResponse' });

/** Printable ASCII without spaces: a token goes into an HTTP header, where a newline or a control character would fail every pull. */
export const hfTokenPattern = /^[\x21-\x7e]+$/u;
export const HfTokenRequest = z
  .object({ token: z.string().min(8).max(4096).regex(hfTokenPattern, 'A Hugging Face token is printable ASCII without spaces or control characters') })
  .meta({ id: 'HfTokenRequest' });
export const HfTokenStatusResponse = z.object({ has_token: z.boolean(), message: z.string() }).meta({ id: 'HfTokenStatusResponse' });
export const MessageResponse = z.object({ message: z.string() }).meta({ id: 'MessageResponse' });

export const modelsListRoute = defineRoute({
  id: 'models.list',
  method: 'GET',
  path: '/v1/models',
  summary: 'Every registered model (OpenAI list shape)',
  description: 'OpenAI\'s `{object:"list", data}` (Python\'s shape; Rust used `models`), with format, task, size and header details.',
  tags: ['models'],
  request: EmptyRequest,
  response: ModelListResponse,
});

export const modelsGetRoute = defineRoute({
  id: 'models.get',
  method: 'GET',
  path: '/v1/models/{model}',
  summary: 'One registered model, with its chat template',
  tags: ['models'],
  request: ModelRequest,
  response: ModelDetailResponse,
});

export const modelsLoadRoute = defineRoute({
  id: 'models.load',
  method: 'POST',
  path: '/v1/models/load',
  aliases: ['/v1/load'],
  summary: 'Load a model into memory',
  tags: ['models'],
  request: LoadModelRequest,
  response: LoadModelResponse,
});

export const modelsUnloadRoute = defineRoute({
  id: 'models.unload',
  method: 'POST',
  path: '/v1/models/unload',
  aliases: ['/v1/unload'],
  summary: 'Unload a model',
  tags: ['models'],
  request: ModelRequest,
  response: UnloadModelResponse,
});

export const modelsLoadedRoute = defineRoute({
  id: 'models.loaded',
  method: 'GET',
  path: '/v1/models/loaded',
  aliases: ['/v1/resources/loaded-models'],
  summary: 'Models in memory',
  tags: ['models'],
  request: EmptyRequest,
  response: LoadedModelsResponse,
});

export const modelsSelectRoute = defineRoute({
  id: 'models.select',
  method: 'POST',
  path: '/v1/models/select',
  summary: 'Choose the default model (used when a request names none)',
  tags: ['models'],
  request: ModelRequest,
  response: SelectModelResponse,
});

export const modelsPullRoute = defineRoute({
  id: 'models.pull',
  method: 'POST',
  path: '/v1/models/pull',
  aliases: ['/v1/pull'],
  summary: 'Download a model from Hugging Face (resumable, verified; progress chunks when stream is true)',
  description:
    'Lists the repository with the Hub API (`HF_ENDPOINT`, default https://huggingface.co), downloads the chosen variant to a partial file, resumes with Range after a cancel, a drop or a crash, checks the sha256, and registers the model. Cancel with POST /v1/generation/stop and the request id.',
  tags: ['models'],
  request: PullModelRequest,
  response: PullModelResponse,
  chunk: PullModelChunk,
});

export const modelsScanRoute = defineRoute({
  id: 'models.scan',
  method: 'GET',
  path: '/v1/models/scan',
  summary: "A Hugging Face repository's variants (quantisations), with files, sizes and whether each fits",
  tags: ['models'],
  request: ScanModelRequest,
  response: ScanModelResponse,
});

export const modelsRecommendedRoute = defineRoute({
  id: 'models.recommended',
  method: 'GET',
  path: '/v1/models/recommended',
  summary: 'A small catalogue of models to start with, filtered by what fits this machine',
  tags: ['models'],
  request: RecommendedModelsRequest,
  response: RecommendedModelsResponse,
});

export const modelsDownloadsRoute = defineRoute({
  id: 'models.downloads',
  method: 'GET',
  path: '/v1/models/downloads',
  summary: 'Downloads in progress and partials left to resume',
  tags: ['models'],
  request: EmptyRequest,
  response: DownloadsResponse,
});

export const modelsDownloadsDiscardRoute = defineRoute({
  id: 'models.downloads.discard',
  method: 'DELETE',
  path: '/v1/models/downloads',
  summary: 'Delete a partial download',
  tags: ['models'],
  request: DiscardDownloadRequest,
  response: DiscardDownloadResponse,
});

export const modelsRegisterRoute = defineRoute({
  id: 'models.register',
  method: 'POST',
  path: '/v1/models/register',
  summary: 'Register a model file or folder by absolute path',
  tags: ['models'],
  request: RegisterModelRequest,
  response: ModelInfo,
});

export const modelsDeleteRoute = defineRoute({
  id: 'models.delete',
  method: 'DELETE',
  path: '/v1/models/{model}',
  summary: 'Delete a model (files inside the models folder only; registered paths are only unregistered)',
  tags: ['models'],
  request: ModelRequest,
  response: DeleteModelResponse,
});

export const modelsAliasRoute = defineRoute({
  id: 'models.alias',
  method: 'POST',
  path: '/v1/models/alias',
  summary: 'Give a model another name (Ollama copy); DELETE /v1/models/{alias} removes the name only',
  tags: ['models'],
  request: AliasModelRequest,
  response: AliasModelResponse,
});

export const hfTokenSetRoute = defineRoute({
  id: 'hf.token.set',
  method: 'POST',
  path: '/v1/hf/token',
  summary: 'Store a Hugging Face token',
  tags: ['models'],
  request: HfTokenRequest,
  response: MessageResponse,
});

export const hfTokenStatusRoute = defineRoute({
  id: 'hf.token.status',
  method: 'GET',
  path: '/v1/hf/token/status',
  summary: 'Whether a Hugging Face token is stored',
  tags: ['models'],
  request: EmptyRequest,
  response: HfTokenStatusResponse,
});

export const hfTokenClearRoute = defineRoute({
  id: 'hf.token.clear',
  method: 'DELETE',
  path: '/v1/hf/token',
  summary: 'Remove the stored Hugging Face token',
  tags: ['models'],
  request: EmptyRequest,
  response: MessageResponse,
});
