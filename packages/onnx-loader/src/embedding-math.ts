/** Vector helpers shared by the embedding operations. Vectors are Float32Array or number[]. */
export type Vector = ArrayLike<number>;

/** L2-normalises in place and returns the same array; a zero vector stays zero. */
export function l2NormalizeInPlace(vector: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += (vector[i] as number) ** 2;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] as number) / norm;
  return vector;
}

/** The first `dimensions` values, renormalised (Matryoshka-style truncation as OpenAI does it). */
export function truncateDimensions(vector: Float32Array, dimensions: number): Float32Array {
  if (dimensions >= vector.length) return vector;
  return l2NormalizeInPlace(vector.slice(0, dimensions));
}

export function dotProduct(a: Vector, b: Vector): number {
  let sum = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) sum += (a[i] as number) * (b[i] as number);
  return sum;
}

export function cosineSimilarity(a: Vector, b: Vector): number {
  const denominator = Math.sqrt(dotProduct(a, a)) * Math.sqrt(dotProduct(b, b));
  return denominator === 0 ? 0 : dotProduct(a, b) / denominator;
}

export function euclideanDistance(a: Vector, b: Vector): number {
  let sum = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) sum += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(sum);
}

/** Similarity metric of the similarity and search routes. */
export type SimilarityMetricName = 'cosine' | 'dot_product' | 'euclidean';

/**
 * Score by metric, higher is closer for every metric: euclidean becomes `1 / (1 + distance)` so
 * that sorting and thresholds work the same way as for the other two.
 */
export function similarityScore(a: Vector, b: Vector, metric: SimilarityMetricName): number {
  switch (metric) {
    case 'cosine':
      return cosineSimilarity(a, b);
    case 'dot_product':
      return dotProduct(a, b);
    case 'euclidean':
      return 1 / (1 + euclideanDistance(a, b));
  }
}

/** Little-endian float32 bytes in base64, as OpenAI's `encoding_format: "base64"` sends them. */
export function encodeFloat32Base64(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i] as number, i * 4);
  return bytes.toString('base64');
}

/** Inverse of `encodeFloat32Base64`. */
export function decodeFloat32Base64(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const vector = new Float32Array(Math.floor(bytes.length / 4));
  for (let i = 0; i < vector.length; i++) vector[i] = bytes.readFloatLE(i * 4);
  return vector;
}

/** Logistic function: a cross-encoder logit to a relevance score in (0, 1). */
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
