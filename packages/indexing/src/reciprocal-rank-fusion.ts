/**
 * Reciprocal rank fusion (Cormack et al. 2009): each list contributes `1 / (k + rank)` (rank from
 * 1) to every id it contains; ids are returned by total, best first, ties broken by first
 * appearance. `k` = 60 is the paper's constant.
 */
export function reciprocalRankFusion(lists: readonly (readonly string[])[], k = 60): { id: string; score: number }[] {
  const scores = new Map<string, number>();
  for (const list of lists) {
    list.forEach((id, index) => {
      scores.set(id, (scores.get(id) ?? 0) + 1 / (k + index + 1));
    });
  }
  return [...scores.entries()].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
}
