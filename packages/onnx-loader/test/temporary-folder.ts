import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary folder per test file, removed by `remove()`. */
export async function createTemporaryFolder(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `tabagent-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** L2-normalised copy, in float64 (the hand computations' reference). */
export function normalized(values: readonly number[]): number[] {
  const norm = Math.sqrt(values.reduce((a, v) => a + v * v, 0));
  return values.map((v) => v / norm);
}

/** Row `id` of a row-major matrix with `width` columns. */
export function row(matrix: Float32Array, id: number, width: number): number[] {
  return Array.from(matrix.subarray(id * width, (id + 1) * width));
}

/** Asserts two vectors agree to float32 precision. */
export function expectVectorClose(actual: ArrayLike<number>, expected: readonly number[], digits = 5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i] as number, digits);
}
