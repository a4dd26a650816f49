import { availableParallelism } from 'node:os';

// Workaround for lancedb/lancedb#3568: Lance's full-text index builder deadlocks (0% CPU, forever)
// once its input spans more than one posting-list batch when the Lance CPU pool has a single
// blocking thread, which is what it gets on machines with two cores or fewer. Seen here: the FTS
// step of `optimize()` hung at 100k chunks on a 2-core machine and finished in 2 s with more
// threads. This must run before @lancedb/lancedb starts its runtime, so it is imported first.
if (process.env['LANCE_CPU_THREADS'] === undefined && availableParallelism() <= 2) {
  process.env['LANCE_CPU_THREADS'] = '4';
}
