import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The endurance run of bench/soak, shortened to 40 s for CI: the same mixed load (streaming chat
// with history and disconnects, embeddings, saves and searches, health, bad requests, stop and
// halt, native messaging on the child's stdio, WebRTC) against one `serve --mode all` process,
// with model load/unload cycles. The 30-minute run (`npm run bench:soak -- --duration-s 1800`) is
// where the floors are judged (RSS and heap slopes <= 0.5 MB/min over the last third, event-loop
// p99 < 20 ms throughout). 30 s after a
// 10 s warm-up (sampled every 3 s: a sample must finish before the next, and the first model load
// holds the server for seconds; at 30 s in all, a burdened run once saw a kind of request not come
// round at all), on a 2-core CI machine running other test projects beside this one, cannot judge
// those; this test holds the exact ones (no 5xx, nothing stuck, no crash, only expected statuses,
// flat file descriptors) and catches gross regressions of the others. The event-loop delay is
// judged against a baseline measured in the same run (an idle Node process beside the server), so
// a busy machine (other test projects, another job on the cores) moves both alike. Any failure
// prints the run's own output (its samples, figures and the first errors it met).
const repositoryRoot = fileURLToPath(new URL('../../..', import.meta.url));

interface Slope {
  slope: number;
  standard_error: number;
}

interface SoakFigures {
  requests: number;
  rss_slope_warmup_mb_per_min: Slope;
  rss_slope_after_warmup_mb_per_min: Slope;
  heap_slope_warmup_mb_per_min: Slope;
  heap_slope_after_warmup_mb_per_min: Slope;
  weaver_indexed_chunks: number;
  stream_error_frames: number;
  streams_truncated: number;
  stream_failures: string[];
  event_loop_p99_excess_max_after_warmup_ms: number;
  rss_growth_mb: number;
  heap_growth_mb: number;
  fd_range: [number, number];
  fd_low_growth: number;
  event_loop_p99_max_ms: number;
  five_xx: number;
  webrtc_errors: string[];
  native_errors: string[];
  stuck: number;
  stuck_where: string[];
  connection_errors: string[];
  sample_failures: string[];
  event_loop_p99_excess_max_ms: number;
  crashed: unknown;
  worker_failures: string[];
  unexpected_statuses: Record<string, string>;
  statuses: Record<string, Record<string, number>>;
}

let out: string;
beforeAll(() => {
  out = mkdtempSync(path.join(tmpdir(), 'soak-test-'));
});
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
});

function runSoak(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repositoryRoot, 'bench', 'soak', 'run.mjs'), ...args], {
      cwd: repositoryRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/** Runs the checks; a failing one is reported with the soak's output, which names what went wrong. */
async function withTail(output: string, checks: () => void | Promise<void>): Promise<void> {
  try {
    await checks();
  } catch (error) {
    if (error instanceof Error) error.message += `\n\n--- the soak's output (last 6000 characters) ---\n${output.slice(-6000)}`;
    throw error;
  }
}

const warmUpS = 10;

describe('soak (40 s)', () => {
  it('stays up under a mixed load with load/unload cycles: no 5xx, nothing stuck, no crash, flat file descriptors, bounded memory', async () => {
    const run = await runSoak(['--duration-s', '40', '--warmup-s', String(warmUpS), '--sample-s', '3', '--cycles', '10', '--out', out]);
    await withTail(run.output, () => {
      expect(run.code).toBe(0);
      const figures = JSON.parse(readFileSync(path.join(out, 'figures.json'), 'utf8')) as SoakFigures;
      expect(figures.crashed).toBeNull();
      expect(figures.worker_failures).toEqual([]);
      // On a 5xx, which kind of request got it (and the errors the soak's clients saw).
      expect({
        five_xx: figures.five_xx,
        statuses: figures.five_xx === 0 ? {} : figures.statuses,
        webrtc: figures.five_xx === 0 ? [] : figures.webrtc_errors,
        native: figures.five_xx === 0 ? [] : figures.native_errors,
      }).toEqual({
        five_xx: 0,
        statuses: {},
        webrtc: [],
        native: [],
      });
      expect({ stuck: figures.stuck, where: figures.stuck_where }).toEqual({ stuck: 0, where: [] });
      // Every stream ended with its terminator and no error frame (the status line said 200).
      expect({ errorFrames: figures.stream_error_frames, truncated: figures.streams_truncated, failures: figures.stream_failures }).toEqual({
        errorFrames: 0,
        truncated: 0,
        failures: [],
      });
      // The weaver made progress under the load: it is not starved by interactive work.
      expect(figures.weaver_indexed_chunks).toBeGreaterThan(0);
      // Every kind of request got only the statuses it should (e.g. bad JSON 400, unknown model 404);
      // a request that got no status at all (refused, reset) is an unexpected status 0 of its kind.
      for (const [kind, unexpected] of Object.entries(figures.unexpected_statuses)) expect([kind, unexpected.split('/')[0]]).toEqual([kind, '0']);
      expect(figures.connection_errors).toEqual([]);
      // Every kind of request came round at least once (the failure names the kind).
      for (const kind of ['chat', 'embeddings', 'memory', 'health', 'bad', 'stop', 'native', 'webrtc', 'cycle'])
        expect({ kind, answered: Object.values(figures.statuses[kind] ?? {}).reduce((sum, n) => sum + n, 0) > 0 }).toEqual({ kind, answered: true });
      // Every sample was taken: /metrics answered each time, and none was skipped.
      expect(figures.sample_failures).toEqual([]);
      const csv = readFileSync(path.join(out, 'samples.csv'), 'utf8');
      const [header, ...rows] = csv.trim().split('\n');
      expect(header).toBe(
        't_s,rss_mb,heap_used_mb,external_mb,array_buffers_mb,open_fds,event_loop_p99_ms,event_loop_utilization,probe_event_loop_p99_ms,indexed_chunks,unindexed,requests_per_s,errors_per_s',
      );
      const afterWarmUp = rows.map((row) => row.split(',').map(Number)).filter((row) => (row[0] ?? 0) >= warmUpS);
      expect(afterWarmUp.length).toBeGreaterThanOrEqual(6);
      // File descriptors flat: the low-water mark within ± 5 after the warm-up. A sample taken while
      // LanceDB compacts (it opens every fragment at once) can show a few hundred for a moment; a
      // leak raises the lows.
      if (Math.abs(figures.fd_low_growth) > 5) throw new Error(`open file descriptors ${figures.fd_range.join('..')}, lows +${figures.fd_low_growth}:\n${csv}`);
      // Memory: the 30-minute run judges the slope of its last third against 0.5 MB/min; 40 s cannot
      // reach a level. This run judges its slope after the warm-up against its own warm-up's (the
      // baseline of this run), with the noise of both fits: memory that climbs faster once the load
      // runs than while the server warmed up (more than three standard errors) fails. The heap's
      // garbage-collection sawtooth makes its fits wide; RSS's are narrow.
      for (const [what, warmUp, afterWarmUp] of [
        ['RSS', figures.rss_slope_warmup_mb_per_min, figures.rss_slope_after_warmup_mb_per_min],
        ['heap', figures.heap_slope_warmup_mb_per_min, figures.heap_slope_after_warmup_mb_per_min],
      ] as const) {
        const noise = 3 * Math.hypot(warmUp.standard_error, afterWarmUp.standard_error);
        if (!(afterWarmUp.slope < warmUp.slope + noise))
          throw new Error(
            `${what} climbs ${afterWarmUp.slope.toFixed(1)} ± ${afterWarmUp.standard_error.toFixed(1)} MB/min after the warm-up, ${warmUp.slope.toFixed(1)} ± ${warmUp.standard_error.toFixed(1)} MB/min during it:\n${csv}`,
          );
      }
      // Event-loop delay after the warm-up, judged per sample against the idle probe's delay in the
      // same window: what the machine's other work costs any Node process is not the server's. The
      // floor (p99 < 20 ms) is judged by the 30-minute run on a quiet machine; here, beside other
      // test projects on 2 busy cores, the server (which works) loses more to them than the idle
      // probe does (35.5 ms beyond it was seen with a CPU burner running), so this run holds the
      // bound it held before: no request blocks the loop for 150 ms. The warm-up (the first model
      // loads) is reported, not judged: a GGUF's first load resolves its chat template on the loop.
      if (figures.event_loop_p99_excess_max_after_warmup_ms >= 150)
        throw new Error(`event-loop p99 ${figures.event_loop_p99_excess_max_after_warmup_ms.toFixed(1)} ms beyond the idle probe's after the warm-up:\n${csv}`);
      expect(readFileSync(path.join(out, 'chart.svg'), 'utf8')).toContain('<svg');
    });
  }, 180_000);
});
