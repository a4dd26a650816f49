import type { ServerResponse } from 'node:http';
import type { Logger } from '@tabagent/values';
import { problemFromError } from './problem-response.js';

/** Headers of every Server-Sent Events response (`X-Accel-Buffering` stops proxy buffering). */
const sseHeaders = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
} as const;

const doneFrame = 'data: [DONE]\n\n';

/** What `sendChunkStream` needs besides the stream. */
export interface ChunkStreamTarget {
  response: ServerResponse;
  requestId: string;
  /** Path of the request, the problem's `instance`. */
  instance: string;
  logger: Logger;
}

/**
 * Streams chunks as SSE: `data: <json>\n\n` per chunk, then `data: [DONE]\n\n`.
 *
 * The first chunk is awaited before the headers go out, so a generation that fails before
 * producing anything (unknown model, not loaded) still gets a proper problem response with its
 * status: that error is rethrown to the caller. A failure after the first chunk is sent as
 * `data: {"error": <problem with OpenAI's message/type/param>}\n\n` and the stream ends without `[DONE]`. When the client goes
 * away the iterator is closed with `return()` (the caller aborts the context signal).
 */
export async function sendChunkStream(stream: AsyncIterable<unknown>, target: ChunkStreamTarget): Promise<void> {
  const { response } = target;
  const iterator = stream[Symbol.asyncIterator]();
  let finished = false;
  const onClose = (): void => {
    if (finished) return;
    finished = true;
    if (typeof iterator.return === 'function') {
      iterator.return().then(
        () => undefined,
        (error: unknown) => target.logger.debug({ err: error, requestId: target.requestId }, 'Stream iterator failed while closing'),
      );
    }
  };
  response.once('close', onClose);

  let next: IteratorResult<unknown>;
  try {
    next = await iterator.next();
  } catch (error) {
    finished = true;
    response.off('close', onClose);
    if (isGone(response)) return;
    throw error;
  }
  if (isGone(response)) return;
  response.writeHead(200, sseHeaders);
  response.flushHeaders();

  try {
    while (next.done !== true) {
      if (isGone(response)) return;
      const frame = `data: ${JSON.stringify(next.value)}\n\n`;
      if (!response.write(frame)) await waitForDrain(response);
      if (isGone(response)) return;
      next = await iterator.next();
    }
  } catch (error) {
    finished = true;
    // One object that reads as OpenAI's stream error (`error.message`, `type`, `code`, `param`)
    // and as the problem document (`status`, `title`, `detail`, ...).
    const { error: openAi, ...problem } = problemFromError(error, target.instance, target.requestId, target.logger);
    if (!isGone(response)) response.end(`data: ${JSON.stringify({ error: { ...problem, ...(openAi as object) } })}\n\n`);
    return;
  }
  finished = true;
  if (!isGone(response)) response.end(doneFrame);
}

function isGone(response: ServerResponse): boolean {
  return response.destroyed || response.writableEnded;
}

function waitForDrain(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}
