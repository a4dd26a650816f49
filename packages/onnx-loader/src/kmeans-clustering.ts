import { kmeans } from 'ml-kmeans';
import { euclideanDistance } from './embedding-math.js';

/** Result of `clusterVectors`. */
export interface ClusteringResult {
  /** Cluster of each vector, 0-based. */
  labels: number[];
  iterations: number;
  /** Mean silhouette (euclidean); null when undefined (one cluster, or one vector per cluster). */
  silhouetteScore: number | null;
}

/** k-means with k-means++ initialisation (ml-kmeans), deterministic for a seed. */
export function clusterVectors(vectors: readonly Float32Array[], k: number, options: { seed: number; maxIterations: number }): ClusteringResult {
  const data = vectors.map((v) => Array.from(v));
  const result = kmeans(data, k, { initialization: 'kmeans++', seed: options.seed, maxIterations: options.maxIterations });
  const labels = result.clusters;
  return { labels, iterations: result.iterations, silhouetteScore: silhouetteScore(vectors, labels) };
}

/**
 * Mean silhouette coefficient: for each point, (b - a) / max(a, b) with a its mean distance to
 * its own cluster and b the smallest mean distance to another cluster; a point alone in its
 * cluster scores 0 (scikit-learn's convention).
 */
export function silhouetteScore(vectors: readonly Float32Array[], labels: readonly number[]): number | null {
  const clusterCount = new Set(labels).size;
  if (clusterCount < 2 || clusterCount >= vectors.length) return null;
  let total = 0;
  vectors.forEach((v, i) => {
    const sums = new Map<number, { sum: number; count: number }>();
    vectors.forEach((w, j) => {
      if (i === j) return;
      const label = labels[j] as number;
      const entry = sums.get(label) ?? { sum: 0, count: 0 };
      entry.sum += euclideanDistance(v, w);
      entry.count += 1;
      sums.set(label, entry);
    });
    const own = sums.get(labels[i] as number);
    if (own === undefined || own.count === 0) return;
    const a = own.sum / own.count;
    let b = Infinity;
    for (const [label, entry] of sums) if (label !== labels[i]) b = Math.min(b, entry.sum / entry.count);
    const denominator = Math.max(a, b);
    total += denominator === 0 ? 0 : (b - a) / denominator;
  });
  return total / vectors.length;
}
