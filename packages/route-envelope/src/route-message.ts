import { splitIntoContinuations } from './continuation.js';

/** A route-envelope message from the server: a reply, a stream chunk, the end of a stream or an error. */
export type RouteMessage = { request_id: string | number | null } & Record<string, unknown>;

/**
 * The JSON texts that carry one route-envelope message over a transport whose messages are at
 * most `maxBytes` bytes: the message itself when it fits, else its continuation parts in order.
 * A transport writes the texts of one message consecutively.
 */
export function encodeRouteMessage(message: RouteMessage, maxBytes: number): string[] {
  const json = JSON.stringify(message);
  if (Buffer.byteLength(json, 'utf8') <= maxBytes) return [json];
  return splitIntoContinuations(json, message.request_id, maxBytes).map((part) => JSON.stringify(part));
}
