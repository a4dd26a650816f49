import { clusterVectors, silhouetteScore } from './kmeans-clustering.js';

const points = (...values: number[][]) => values.map((v) => Float32Array.from(v));

describe('silhouetteScore', () => {
  it('matches a hand computation on four points in two clusters', () => {
    // Clusters {0, 1} at x = 0, 1 and {2, 3} at x = 4, 5 (one dimension).
    const vectors = points([0], [1], [4], [5]);
    const s0 = (4.5 - 1) / 4.5; // a = 1, b = (4 + 5) / 2
    const s1 = (3.5 - 1) / 3.5; // a = 1, b = (3 + 4) / 2
    expect(silhouetteScore(vectors, [0, 0, 1, 1])).toBeCloseTo((s0 + s1 + s1 + s0) / 4, 6);
  });

  it('scores a point alone in its cluster as 0 and is null for one cluster or one point per cluster', () => {
    const vectors = points([0], [1], [10]);
    const s0 = (10 - 1) / 10;
    const s1 = (9 - 1) / 9;
    expect(silhouetteScore(vectors, [0, 0, 1])).toBeCloseTo((s0 + s1 + 0) / 3, 6);
    expect(silhouetteScore(vectors, [0, 0, 0])).toBeNull();
    expect(silhouetteScore(vectors, [0, 1, 2])).toBeNull();
  });
});

describe('clusterVectors', () => {
  it('separates two well-apart groups the same way for the same seed', () => {
    const vectors = points([0, 0], [0.1, 0], [0, 0.1], [5, 5], [5.1, 5], [5, 5.1]);
    const result = clusterVectors(vectors, 2, { seed: 3, maxIterations: 50 });
    expect(result.labels.slice(0, 3).every((l) => l === result.labels[0])).toBe(true);
    expect(result.labels.slice(3).every((l) => l === result.labels[3])).toBe(true);
    expect(result.labels[0]).not.toBe(result.labels[3]);
    expect(clusterVectors(vectors, 2, { seed: 3, maxIterations: 50 })).toEqual(result);
  });
});
