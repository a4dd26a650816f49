import os from 'node:os';
import si from 'systeminformation';
import type { z } from 'zod';
import type { CpuInfo, GpuInfo, HardwareInfoResponse, MemoryInfo, OsInfo } from '@tabagent/values';
import { assessFeasibility, deriveAdvice, recommendModelSizes, totalFreeVramMb } from './hardware-advice.js';
import { simdFromCpuFlags } from './simd-flags.js';

type Cpu = z.infer<typeof CpuInfo>;
type Gpu = z.infer<typeof GpuInfo>;
type Memory = z.infer<typeof MemoryInfo>;
type Os = z.infer<typeof OsInfo>;

/** Everything the probe knows; figures in MB. */
export type HardwareInfo = z.input<typeof HardwareInfoResponse> & { os: Os };

/** Options of `createHardwareProbe`. */
export interface HardwareProbeOptions {
  /** How long GPU free-memory figures are reused before asking the driver again (ms). Default 2000. */
  gpuMemoryTtlMs?: number;
  /** Reads the graphics controllers (default systeminformation's `graphics()`, which spawns lspci and nvidia-smi). */
  readGraphics?: () => Promise<Pick<si.Systeminformation.GraphicsData, 'controllers'>>;
}

/** Reads this machine's hardware once and its free memory cheaply on demand. */
export interface HardwareProbe {
  /** OS, CPU, RAM (fresh), GPUs (VRAM free refreshed within the TTL) and advice. */
  getInfo(): Promise<HardwareInfo>;
  /** Fresh RAM figures (from the kernel; cheap). */
  getMemory(): Promise<Memory>;
  /** Free bytes in RAM and VRAM, for model-loading checks. */
  availableMemory(): Promise<{ ramBytes: number; vramBytes: number }>;
  /** Whether a model of N MB fits in RAM/VRAM and how much to offload. */
  assessFeasibility(modelSizeMb: number): Promise<ReturnType<typeof assessFeasibility>>;
  /** Model sizes this machine can run. */
  recommendations(): Promise<ReturnType<typeof recommendModelSizes>>;
}

const bytesToMb = (bytes: number): number => Math.round(bytes / 1048576);

interface StaticFacts {
  os: Os;
  cpu: Cpu;
}

class SystemHardwareProbe implements HardwareProbe {
  private staticFacts: Promise<StaticFacts> | undefined;
  /**
   * `static`: no GPU reports its free memory (no GPU, or none nvidia-smi knows), so nothing a new
   * probe reads can change. A probe spawns lspci and nvidia-smi: each spawn forks the server and
   * holds its event loop for tens to hundreds of milliseconds, once per model load otherwise.
   */
  private gpuCache: { at: number; gpus: Promise<Gpu[]>; static: boolean } | undefined;

  constructor(
    private readonly gpuMemoryTtlMs: number,
    private readonly readGraphics: () => Promise<Pick<si.Systeminformation.GraphicsData, 'controllers'>>,
  ) {}

  private loadStaticFacts(): Promise<StaticFacts> {
    this.staticFacts ??= (async () => {
      const [osData, cpu, flags] = await Promise.all([si.osInfo(), si.cpu(), si.cpuFlags().catch(() => '')]);
      const logicalCores = cpu.cores || os.cpus().length || 1;
      return {
        os: {
          platform: osData.platform || process.platform,
          distro: osData.distro,
          release: osData.release,
          arch: osData.arch || process.arch,
          hostname: osData.hostname,
        },
        cpu: {
          manufacturer: cpu.manufacturer,
          brand: cpu.brand,
          architecture: process.arch,
          physical_cores: cpu.physicalCores || logicalCores,
          logical_cores: logicalCores,
          speed_ghz: cpu.speed > 0 ? cpu.speed : null,
          simd: simdFromCpuFlags(flags, process.arch),
        },
      };
    })();
    return this.staticFacts;
  }

  private loadGpus(): Promise<Gpu[]> {
    const now = Date.now();
    if (this.gpuCache && (this.gpuCache.static || now - this.gpuCache.at < this.gpuMemoryTtlMs)) return this.gpuCache.gpus;
    // systeminformation finds no controllers on machines without lspci/nvidia-smi; zero GPUs is a valid answer.
    const gpus = this.readGraphics()
      .then((data) =>
        data.controllers.map((controller, index): Gpu => {
          const total = controller.memoryTotal ?? (controller.vram && !controller.vramDynamic ? controller.vram : null);
          return {
            index,
            vendor: controller.vendor || 'unknown',
            name: controller.model || controller.name || 'unknown',
            vram_total_mb: total ?? null,
            vram_free_mb: controller.memoryFree ?? null,
            driver: controller.driverVersion || null,
          };
        }),
      )
      .catch((): Gpu[] => []);
    const entry = { at: now, gpus, static: false };
    this.gpuCache = entry;
    void gpus.then((found) => {
      entry.static = found.every((gpu) => gpu.vram_free_mb === null);
    });
    return gpus;
  }

  async getMemory(): Promise<Memory> {
    const mem = await si.mem();
    const total = mem.total || os.totalmem();
    const available = mem.available || os.freemem();
    return { total_mb: bytesToMb(total), available_mb: bytesToMb(available), used_mb: bytesToMb(total - available) };
  }

  async getInfo(): Promise<HardwareInfo> {
    const [facts, memory, gpus] = await Promise.all([this.loadStaticFacts(), this.getMemory(), this.loadGpus()]);
    return {
      os: facts.os,
      cpu: facts.cpu,
      memory,
      gpus,
      advice: deriveAdvice({ platform: facts.os.platform, arch: facts.os.arch, physicalCores: facts.cpu.physical_cores, gpus }),
    };
  }

  async availableMemory(): Promise<{ ramBytes: number; vramBytes: number }> {
    const [memory, gpus] = await Promise.all([this.getMemory(), this.loadGpus()]);
    return { ramBytes: memory.available_mb * 1048576, vramBytes: totalFreeVramMb(gpus) * 1048576 };
  }

  async assessFeasibility(modelSizeMb: number): Promise<ReturnType<typeof assessFeasibility>> {
    const [memory, gpus] = await Promise.all([this.getMemory(), this.loadGpus()]);
    return assessFeasibility(modelSizeMb, memory.available_mb, totalFreeVramMb(gpus));
  }

  async recommendations(): Promise<ReturnType<typeof recommendModelSizes>> {
    const [facts, memory, gpus] = await Promise.all([this.loadStaticFacts(), this.getMemory(), this.loadGpus()]);
    return recommendModelSizes(memory.available_mb, totalFreeVramMb(gpus), facts.cpu.physical_cores);
  }
}

/** Creates a probe over systeminformation. Static facts are read once; memory on each call. */
export function createHardwareProbe(options: HardwareProbeOptions = {}): HardwareProbe {
  return new SystemHardwareProbe(options.gpuMemoryTtlMs ?? 2000, options.readGraphics ?? (() => si.graphics()));
}
