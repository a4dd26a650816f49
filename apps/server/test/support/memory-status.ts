/** What `GET /v1/memory/status` says about the weaver's queue. */
interface QueueStatus {
  queue_depth: number;
  in_progress: number;
  failed: number;
  last_error: string | null;
}

/**
 * Waits until the weaver has processed everything saved so far (its own queue, not a time budget:
 * on a busy machine indexing took longer than the 10 s a loop once allowed), and expects nothing
 * to have failed on the way.
 */
export async function waitUntilIndexed(base: string): Promise<void> {
  for (;;) {
    const status = (await (await fetch(`${base}/v1/memory/status`)).json()) as QueueStatus;
    expect([status.failed, status.last_error]).toEqual([0, null]);
    if (status.queue_depth === 0 && status.in_progress === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
