import { z } from 'zod';
import { defineRoute } from '../route-definition.js';
import { acceptFieldAlias, EmptyRequest, ModelId } from './common-schemas.js';

export const GpuInfo = z
  .object({
    index: z.number().int().nonnegative(),
    vendor: z.string(),
    name: z.string(),
    vram_total_mb: z.number().nonnegative().nullable(),
    vram_free_mb: z.number().nonnegative().nullable(),
    driver: z.string().nullable(),
  })
  .meta({ id: 'GpuInfo' });

export const CpuInfo = z
  .object({
    manufacturer: z.string(),
    brand: z.string(),
    architecture: z.string(),
    physical_cores: z.number().int().positive(),
    logical_cores: z.number().int().positive(),
    speed_ghz: z.number().nonnegative().nullable(),
    simd: z.array(z.string()).describe('SIMD extensions found in the CPU flags (sse4_2, avx, avx2, avx512f, fma, f16c, neon, ...).'),
  })
  .meta({ id: 'CpuInfo' });

export const MemoryInfo = z
  .object({
    total_mb: z.number().nonnegative(),
    available_mb: z.number().nonnegative(),
    used_mb: z.number().nonnegative(),
  })
  .meta({ id: 'MemoryInfo' });

export const OsInfo = z
  .object({ platform: z.string(), distro: z.string(), release: z.string(), arch: z.string(), hostname: z.string() })
  .meta({ id: 'OsInfo' });

export const HardwareAdvice = z
  .object({
    recommended_threads: z.number().int().positive(),
    execution_providers: z
      .array(z.enum(['cuda', 'dml', 'coreml', 'cpu']))
      .describe('ONNX Runtime execution providers that apply, best first; always ends with cpu.'),
    llama_gpu_backends: z.array(z.enum(['cuda', 'vulkan', 'metal'])).describe('llama.cpp GPU backends that apply, best first; empty means CPU only.'),
  })
  .meta({ id: 'HardwareAdvice' });

export const SystemInfoResponse = z
  .object({
    os: OsInfo,
    cpu: CpuInfo,
    memory: MemoryInfo,
    gpus: z.array(GpuInfo),
    node_version: z.string(),
    server_version: z.string(),
  })
  .meta({ id: 'SystemInfoResponse' });

export const HardwareInfoResponse = z
  .object({ cpu: CpuInfo, memory: MemoryInfo, gpus: z.array(GpuInfo), advice: HardwareAdvice })
  .meta({ id: 'HardwareInfoResponse' });

export const FeasibilityRequest = z
  .object({ model_size_mb: z.number().positive().describe('Size of the model weights in MB.') })
  .meta({ id: 'FeasibilityRequest' });

export const FeasibilityResponse = z
  .object({
    can_load: z.boolean(),
    model_size_mb: z.number(),
    available_ram_mb: z.number(),
    available_vram_mb: z.number(),
    fits_in_ram: z.boolean(),
    fits_in_vram: z.boolean(),
    suggested_gpu_layers_fraction: z.number().min(0).max(1).describe('Fraction of layers that fit in free VRAM (0 without a GPU).'),
    recommendation: z.string(),
  })
  .meta({ id: 'FeasibilityResponse' });

export const RecommendationsResponse = z
  .object({
    available_ram_mb: z.number(),
    available_vram_mb: z.number(),
    safe_ram_mb: z.number().describe('70% of available RAM.'),
    safe_vram_mb: z.number().describe('90% of free VRAM.'),
    recommended_sizes: z.array(z.string()).describe('Parameter counts that fit at 4-bit quantisation, largest first (e.g. "7B").'),
    recommended_threads: z.number().int().positive(),
    recommendation: z.string(),
  })
  .meta({ id: 'RecommendationsResponse' });

export const LoadedModelResources = z.object({
  model_id: z.string(),
  memory_mb: z.number().nonnegative(),
  device: z.string().describe('cpu, cuda, metal or vulkan.'),
});

export const ResourcesResponse = z
  .object({
    cpu_ram: MemoryInfo,
    gpus: z.array(GpuInfo),
    loaded_models: z.array(LoadedModelResources),
  })
  .meta({ id: 'ResourcesResponse' });

export const EstimateRequest = z
  .object({
    model: ModelId.describe("Registered model id (Rust name; Python's `model_path` is accepted too)."),
    context_size: z.number().int().positive().optional(),
    gpu_layers: z.union([z.number().int().nonnegative(), z.literal('auto'), z.literal('max')]).optional(),
  })
  .meta({ id: 'EstimateRequest' });

export const EstimateResponse = z
  .object({
    model: z.string(),
    estimated_mb: z.number().nonnegative(),
    estimated_ram_mb: z.number().nonnegative(),
    estimated_vram_mb: z.number().nonnegative(),
    available_ram_mb: z.number().nonnegative(),
    available_vram_mb: z.number().nonnegative(),
    fits_in_ram: z.boolean(),
    fits_in_vram: z.boolean(),
    can_load: z.boolean(),
    reason: z.string().nullable(),
  })
  .meta({ id: 'EstimateResponse' });

export const CompatibilityRequest = EstimateRequest.meta({ id: 'CompatibilityRequest' });

export const CompatibilityResponse = z
  .object({
    model: z.string(),
    compatible: z.boolean(),
    message: z.string(),
    estimated_memory_mb: z.number().nonnegative(),
    available_memory_mb: z.number().nonnegative(),
    recommended_device: z.enum(['gpu', 'cpu', 'none']),
  })
  .meta({ id: 'CompatibilityResponse' });

export const GenerationStats = z
  .object({
    model: z.string(),
    request_id: z.string(),
    time_to_first_token_ms: z.number().nonnegative().nullable(),
    tokens_per_second: z.number().nonnegative().nullable(),
    prompt_tokens: z.number().int().nonnegative(),
    completion_tokens: z.number().int().nonnegative(),
    total_time_ms: z.number().nonnegative(),
    finish_reason: z.string(),
    finished_at: z.string(),
  })
  .meta({ id: 'GenerationStats' });

export const StatsResponse = z
  .object({
    last: GenerationStats.nullable(),
    models: z.array(
      z.object({
        model: z.string(),
        generations: z.number().int().nonnegative(),
        mean_time_to_first_token_ms: z.number().nonnegative().nullable(),
        mean_tokens_per_second: z.number().nonnegative().nullable(),
        recent: z.array(GenerationStats),
      }),
    ),
  })
  .meta({ id: 'StatsResponse' });

export const systemInfoRoute = defineRoute({
  id: 'system.info',
  method: 'GET',
  path: '/v1/system/info',
  aliases: ['/v1/system-info'],
  summary: 'OS, CPU, RAM and GPUs of this machine',
  tags: ['system'],
  request: EmptyRequest,
  response: SystemInfoResponse,
});

export const hardwareInfoRoute = defineRoute({
  id: 'hardware.info',
  method: 'GET',
  path: '/v1/hardware/info',
  summary: 'Hardware with derived advice (threads, execution providers, GPU backends)',
  tags: ['system'],
  request: EmptyRequest,
  response: HardwareInfoResponse,
});

export const hardwareFeasibilityRoute = defineRoute({
  id: 'hardware.feasibility',
  method: 'POST',
  path: '/v1/hardware/feasibility',
  summary: 'Whether a model of N MB fits in RAM/VRAM',
  tags: ['system'],
  request: FeasibilityRequest,
  response: FeasibilityResponse,
});

export const hardwareRecommendationsRoute = defineRoute({
  id: 'hardware.recommendations',
  method: 'GET',
  path: '/v1/hardware/recommendations',
  summary: 'Model sizes this machine can run',
  tags: ['system'],
  request: EmptyRequest,
  response: RecommendationsResponse,
});

export const resourcesRoute = defineRoute({
  id: 'resources.get',
  method: 'GET',
  path: '/v1/resources',
  summary: 'RAM, VRAM and what the loaded models use',
  tags: ['system'],
  request: EmptyRequest,
  response: ResourcesResponse,
});

export const resourcesEstimateRoute = defineRoute({
  id: 'resources.estimate',
  method: 'POST',
  path: '/v1/resources/estimate',
  summary: 'Memory a registered model needs, and whether it fits',
  tags: ['system'],
  request: z.preprocess(acceptFieldAlias('model_path', 'model'), EstimateRequest),
  response: EstimateResponse,
});

export const resourcesCompatibilityRoute = defineRoute({
  id: 'resources.compatibility',
  method: 'POST',
  path: '/v1/resources/compatibility',
  summary: 'Whether a registered model can run here, and on which device',
  tags: ['system'],
  request: CompatibilityRequest,
  response: CompatibilityResponse,
});

export const statsRoute = defineRoute({
  id: 'stats.get',
  method: 'GET',
  path: '/v1/stats',
  summary: 'Time to first token, tokens per second and token counts of recent generations, per model',
  tags: ['generation'],
  request: EmptyRequest,
  response: StatsResponse,
});
