import { assessFeasibility, deriveAdvice, recommendModelSizes, recommendedThreads, totalFreeVramMb } from './hardware-advice.js';
import { simdFromCpuFlags } from './simd-flags.js';

const nvidia = { index: 0, vendor: 'NVIDIA', name: 'NVIDIA H100', vram_total_mb: 81559, vram_free_mb: 80000, driver: '550.54' };
const intel = { index: 1, vendor: 'Intel Corporation', name: 'UHD Graphics 630', vram_total_mb: null, vram_free_mb: null, driver: null };

describe('deriveAdvice', () => {
  it('is CPU only without GPUs', () => {
    expect(deriveAdvice({ platform: 'linux', arch: 'x64', physicalCores: 2, gpus: [] })).toEqual({
      recommended_threads: 2,
      execution_providers: ['cpu'],
      llama_gpu_backends: [],
    });
  });
  it('prefers CUDA with an NVIDIA GPU on Linux', () => {
    expect(deriveAdvice({ platform: 'linux', arch: 'x64', physicalCores: 16, gpus: [nvidia] })).toEqual({
      recommended_threads: 16,
      execution_providers: ['cuda', 'cpu'],
      llama_gpu_backends: ['cuda', 'vulkan'],
    });
  });
  it('uses DirectML on Windows and Vulkan for non-NVIDIA GPUs', () => {
    expect(deriveAdvice({ platform: 'win32', arch: 'x64', physicalCores: 4, gpus: [intel] })).toEqual({
      recommended_threads: 4,
      execution_providers: ['dml', 'cpu'],
      llama_gpu_backends: ['vulkan'],
    });
  });
  it('uses CoreML and Metal on Apple silicon', () => {
    expect(deriveAdvice({ platform: 'darwin', arch: 'arm64', physicalCores: 8, gpus: [] })).toEqual({
      recommended_threads: 8,
      execution_providers: ['coreml', 'cpu'],
      llama_gpu_backends: ['metal'],
    });
  });
  it('never recommends fewer than one thread', () => {
    expect(recommendedThreads(0)).toBe(1);
  });
});

describe('assessFeasibility', () => {
  it('fits a small model in RAM without a GPU', () => {
    expect(assessFeasibility(1000, 8000, 0)).toEqual({
      can_load: true,
      model_size_mb: 1000,
      available_ram_mb: 8000,
      available_vram_mb: 0,
      fits_in_ram: true,
      fits_in_vram: false,
      suggested_gpu_layers_fraction: 0,
      recommendation: 'Fits in RAM: run on the CPU.',
    });
  });
  it('splits between VRAM and RAM', () => {
    const result = assessFeasibility(10000, 16000, 6000);
    expect(result.fits_in_vram).toBe(false);
    expect(result.suggested_gpu_layers_fraction).toBeCloseTo(0.45, 10);
    expect(result.recommendation).toBe('Split: offload about 45% of layers to the GPU, the rest in RAM.');
  });
  it('refuses what fits nowhere', () => {
    const result = assessFeasibility(50000, 8000, 0);
    expect(result.can_load).toBe(false);
    expect(result.recommendation).toBe('Does not fit: needs about 60000 MB, 8000 MB RAM and 0 MB VRAM are free. Choose a smaller or more quantised model.');
  });
  it('sums free VRAM over GPUs that report it', () => {
    expect(totalFreeVramMb([nvidia, intel])).toBe(80000);
  });
});

describe('recommendModelSizes', () => {
  it('lists sizes that fit at 4-bit', () => {
    const result = recommendModelSizes(16000, 0, 4);
    expect(result.safe_ram_mb).toBe(11200);
    expect(result.recommended_sizes).toEqual(['14B', '13B', '8B', '7B', '4B', '3B', '1.5B', '1B', '0.5B']);
    expect(result.recommendation).toBe('Models up to 14B parameters at 4-bit quantisation fit in RAM.');
  });
});

describe('simdFromCpuFlags', () => {
  it('picks the SIMD flags', () => {
    expect(simdFromCpuFlags('fpu sse4_1 sse4_2 avx avx2 fma f16c aes', 'x64')).toEqual(['sse4_1', 'sse4_2', 'avx', 'avx2', 'fma', 'f16c']);
    expect(simdFromCpuFlags('', 'arm64')).toEqual(['neon']);
  });
});
