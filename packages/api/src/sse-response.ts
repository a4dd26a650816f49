import type { ServerResponse } from 'node:http';
import type { Logger } from '@tabagent/values';
import { streamFramingOf, type StreamFraming } from './dialect-framing.js';
import { problemFromError } from './problem-response.js';

/** Headers of every Server-Sent Events response (`X-Accel-Buffering` stops proxy buffering). */
const sseHeaders = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
} as const;

/** What `sendChunkStream` needs besides the stream. */
export interface ChunkStreamTarget {
  response: ServerResponse;
  requestId: string;
  /** Path of the request, the problem's `instance`. */
  instance: string;
  logger: Logger;
  /** How frames, the end and a late error are written (default: OpenAI's `data:` frames and `[DONE]`). */
  framing?: StreamFraming;
}

/**
 * Streams chunks as SSE in the route's framing: by default `data: <json>\n\n` per chunk, then
 * `data: [DONE]\n\n`; for Anthropic's and the Responses API's events an `event:` line each.
 *
 * The first chunk is awaited before the headers go out, so a generation that fails before
 * producing anything (unknown model, not loaded) still gets a proper problem response with its
 * status: that error is rethrown to the caller. A failure after the first chunk is sent as
 * `data: {"error": <problem with OpenAI's message/type/param>}\n\n` and the stream ends without `[DONE]`. When the client goes
 * away the iterator is closed with `return()` (the caller aborts the context signal).
 */
export async function sendChunkStream(stream: AsyncIterable<unknown>, target: ChunkStreamTarget): Promise<void> {
  const { response } = target;
  const framing = target.framing ?? streamFramingOf(undefined);
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
      const frame = framing.frame(next.value);
      if (!response.write(frame)) await waitForDrain(response);
      if (isGone(response)) return;
      next = await iterator.next();
    }
  } catch (error) {
    finished = true;
    const problem = problemFromError(error, target.instance, target.requestId, target.logger);
    if (!isGone(response)) response.end(framing.errorFrame(problem));
    return;
  }
  finished = true;
  if (!isGone(response)) response.end(framing.end);
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
