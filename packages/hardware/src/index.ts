export { createHardwareProbe, type HardwareInfo, type HardwareProbe, type HardwareProbeOptions } from './hardware-probe.js';
export { assessFeasibility, deriveAdvice, recommendModelSizes, recommendedThreads, totalFreeVramMb, type AdviceInput } from './hardware-advice.js';
export { simdFromCpuFlags } from './simd-flags.js';
