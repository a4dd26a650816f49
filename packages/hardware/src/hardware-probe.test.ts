import os from 'node:os';
import { createHardwareProbe } from './hardware-probe.js';

describe('createHardwareProbe (this machine)', () => {
  const probe = createHardwareProbe();

  it('reports the real CPU and RAM of this machine', async () => {
    const info = await probe.getInfo();
    expect(info.cpu.logical_cores).toBe(os.cpus().length);
    expect(info.cpu.physical_cores).toBeGreaterThanOrEqual(1);
    expect(info.cpu.physical_cores).toBeLessThanOrEqual(info.cpu.logical_cores);
    expect(info.memory.total_mb).toBe(Math.round(os.totalmem() / 1048576));
    expect(info.memory.available_mb).toBeLessThanOrEqual(info.memory.total_mb);
    expect(info.os.arch).toBe(process.arch);
    expect(info.advice.execution_providers.at(-1)).toBe('cpu');
    expect(info.advice.recommended_threads).toBe(info.cpu.physical_cores);
    expect(Array.isArray(info.gpus)).toBe(true);
  });

  it('gives free memory in bytes consistent with the MB figures', async () => {
    const [memory, available] = await Promise.all([probe.getMemory(), probe.availableMemory()]);
    expect(Math.abs(available.ramBytes / 1048576 - memory.available_mb)).toBeLessThan(512);
  });

  it('assesses feasibility against live figures', async () => {
    const tiny = await probe.assessFeasibility(1);
    expect(tiny.can_load).toBe(true);
    const huge = await probe.assessFeasibility(100_000_000);
    expect(huge.can_load).toBe(false);
  });
});

describe('createHardwareProbe GPU reads', () => {
  const controller = (memoryFree: number | null) => ({
    vendor: 'NVIDIA',
    model: 'Test GPU',
    bus: '',
    vram: 8192,
    vramDynamic: false,
    memoryTotal: 8192,
    ...(memoryFree === null ? {} : { memoryFree }),
  });

  it('reads the controllers once when none reports free memory: nothing a new read finds can change', async () => {
    let reads = 0;
    const probe = createHardwareProbe({
      gpuMemoryTtlMs: 0,
      readGraphics: () => {
        reads += 1;
        return Promise.resolve({ controllers: [controller(null)] });
      },
    });
    for (let n = 0; n < 3; n++) await probe.availableMemory();
    expect(reads).toBe(1);
    expect((await probe.getInfo()).gpus.map((gpu) => gpu.vram_free_mb)).toEqual([null]);
  });

  it('reads free GPU memory again once its figures are older than gpuMemoryTtlMs', async () => {
    let reads = 0;
    const probe = createHardwareProbe({
      gpuMemoryTtlMs: 0,
      readGraphics: () => {
        reads += 1;
        return Promise.resolve({ controllers: [controller(1000 * reads)] });
      },
    });
    expect((await probe.availableMemory()).vramBytes).toBe(1000 * 1048576);
    expect((await probe.availableMemory()).vramBytes).toBe(2000 * 1048576);
    expect(reads).toBe(2);
  });
});
