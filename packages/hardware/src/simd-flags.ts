/** SIMD extensions llama.cpp and ONNX Runtime care about, in the spelling /proc/cpuinfo uses. */
const simdFlagNames = [
  'sse4_1',
  'sse4_2',
  'avx',
  'avx2',
  'avx512f',
  'avx512bw',
  'avx512vl',
  'avx512_vnni',
  'avx_vnni',
  'fma',
  'f16c',
  'amx_tile',
  'neon',
  'asimd',
  'sve',
];

/** The SIMD extensions present in a space-separated CPU flag list. */
export function simdFromCpuFlags(flags: string, arch: string): string[] {
  const present = new Set(flags.toLowerCase().split(/\s+/).filter(Boolean));
  const found = simdFlagNames.filter((name) => present.has(name));
  // AArch64 always has Advanced SIMD (NEON), even where the flag list is empty (macOS).
  if (arch === 'arm64' && !found.includes('neon')) found.unshift('neon');
  return found;
}
