import type { z } from 'zod';
import type { FeasibilityResponse, GpuInfo, HardwareAdvice, RecommendationsResponse } from '@tabagent/values';

type Gpu = z.infer<typeof GpuInfo>;
type Advice = z.infer<typeof HardwareAdvice>;

/** Facts the advice is derived from. */
export interface AdviceInput {
  platform: string;
  arch: string;
  physicalCores: number;
  gpus: readonly Gpu[];
}

const isNvidia = (gpu: Gpu): boolean => /nvidia/i.test(gpu.vendor) || /nvidia|geforce|quadro|tesla|rtx/i.test(gpu.name);
const isDiscreteOrIntegratedGpu = (gpu: Gpu): boolean => /nvidia|amd|advanced micro|ati|intel/i.test(`${gpu.vendor} ${gpu.name}`);

/**
 * Threads for inference: one per physical core. Hyper-threads share execution units, and
 * llama.cpp's own default (all logical cores and more) was measured at ~500x slower per token
 * on a 2-core machine.
 */
export function recommendedThreads(physicalCores: number): number {
  return Math.max(1, Math.floor(physicalCores));
}

/** ONNX Runtime execution providers and llama.cpp GPU backends that apply, best first. */
export function deriveAdvice(input: AdviceInput): Advice {
  const nvidia = input.gpus.some(isNvidia);
  const executionProviders: Advice['execution_providers'] = [];
  if (nvidia && (input.platform === 'linux' || input.platform === 'win32')) executionProviders.push('cuda');
  if (input.platform === 'win32') executionProviders.push('dml');
  if (input.platform === 'darwin') executionProviders.push('coreml');
  executionProviders.push('cpu');

  const llamaGpuBackends: Advice['llama_gpu_backends'] = [];
  if (input.platform === 'darwin') {
    if (input.arch === 'arm64') llamaGpuBackends.push('metal');
  } else {
    if (nvidia) llamaGpuBackends.push('cuda');
    if (input.gpus.some(isDiscreteOrIntegratedGpu)) llamaGpuBackends.push('vulkan');
  }
  return {
    recommended_threads: recommendedThreads(input.physicalCores),
    execution_providers: executionProviders,
    llama_gpu_backends: llamaGpuBackends,
  };
}

/** Free VRAM over every GPU that reports it, in MB. */
export function totalFreeVramMb(gpus: readonly Gpu[]): number {
  return gpus.reduce((sum, gpu) => sum + (gpu.vram_free_mb ?? 0), 0);
}

/**
 * Whether a model of `modelSizeMb` fits. Weights need about 1.2x their file size once loaded
 * (context, scratch buffers); VRAM keeps a 10% margin for the driver.
 */
export function assessFeasibility(modelSizeMb: number, availableRamMb: number, availableVramMb: number): z.input<typeof FeasibilityResponse> {
  const neededMb = modelSizeMb * 1.2;
  const usableVramMb = availableVramMb * 0.9;
  const fitsInRam = neededMb <= availableRamMb;
  const fitsInVram = usableVramMb > 0 && neededMb <= usableVramMb;
  const fraction = usableVramMb <= 0 ? 0 : Math.min(1, usableVramMb / neededMb);
  const canLoad = fitsInRam || fitsInVram || neededMb <= availableRamMb + usableVramMb;
  let recommendation: string;
  if (fitsInVram) recommendation = 'Fits entirely in VRAM: offload all layers to the GPU.';
  else if (canLoad && fraction > 0) recommendation = `Split: offload about ${Math.round(fraction * 100)}% of layers to the GPU, the rest in RAM.`;
  else if (fitsInRam) recommendation = 'Fits in RAM: run on the CPU.';
  else
    recommendation = `Does not fit: needs about ${Math.round(neededMb)} MB, ${Math.round(availableRamMb)} MB RAM and ${Math.round(availableVramMb)} MB VRAM are free. Choose a smaller or more quantised model.`;
  return {
    can_load: canLoad,
    model_size_mb: modelSizeMb,
    available_ram_mb: availableRamMb,
    available_vram_mb: availableVramMb,
    fits_in_ram: fitsInRam,
    fits_in_vram: fitsInVram,
    suggested_gpu_layers_fraction: fraction,
    recommendation,
  };
}

/** Parameter counts (in billions) of common open models, largest first. */
const commonModelSizes = [70, 34, 14, 13, 8, 7, 4, 3, 1.5, 1, 0.5] as const;

/** MB one billion parameters take at 4-bit quantisation (Q4_K_M is ~4.8 bits per weight). */
const mbPerBillionAt4Bit = 600;

/** Which model sizes fit this machine at 4-bit quantisation, with the margins of `assessFeasibility`. */
export function recommendModelSizes(availableRamMb: number, availableVramMb: number, physicalCores: number): z.input<typeof RecommendationsResponse> {
  const safeRamMb = Math.floor(availableRamMb * 0.7);
  const safeVramMb = Math.floor(availableVramMb * 0.9);
  const budgetMb = Math.max(safeRamMb, safeVramMb);
  const sizes = commonModelSizes.filter((billions) => billions * mbPerBillionAt4Bit * 1.2 <= budgetMb).map((billions) => `${billions}B`);
  const recommendation =
    sizes.length === 0
      ? 'Less memory is free than the smallest common model needs; close other programs.'
      : `Models up to ${sizes[0]} parameters at 4-bit quantisation fit ${safeVramMb >= safeRamMb && safeVramMb > 0 ? 'in VRAM' : 'in RAM'}.`;
  return {
    available_ram_mb: availableRamMb,
    available_vram_mb: availableVramMb,
    safe_ram_mb: safeRamMb,
    safe_vram_mb: safeVramMb,
    recommended_sizes: sizes,
    recommended_threads: recommendedThreads(physicalCores),
    recommendation,
  };
}
