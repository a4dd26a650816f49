import type { z } from 'zod';

/** HTTP method of a route (also documents intent for the other transports). */
export type RouteMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * How a route streams:
 * - `never`: one response.
 * - `optional`: streams when the request says `stream: true` (chat, completions).
 */
export type RouteStreaming = 'never' | 'optional';

/**
 * One operation of the server: the contract every transport serves.
 *
 * `request` describes the single object a handler receives. Over HTTP it is built from path
 * parameters, query parameters and the JSON body merged together (path parameters win);
 * over native messaging and WebRTC it is the envelope's payload.
 */
export interface RouteDefinition<
  Id extends string = string,
  Request extends z.ZodType = z.ZodType,
  Response extends z.ZodType = z.ZodType,
  Chunk extends z.ZodType | undefined = z.ZodType | undefined,
> {
  /** Stable id, e.g. `chat.completions`; native messaging and WebRTC address routes by it. */
  readonly id: Id;
  readonly method: RouteMethod;
  /** OpenAPI-style path under the server root, e.g. `/v1/models/{model}`. */
  readonly path: string;
  /** Other paths that serve the same operation (e.g. `/v1/reranking`). */
  readonly aliases?: readonly string[];
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly request: Request;
  readonly response: Response;
  /** Schema of one stream chunk when the route can stream. */
  readonly chunk: Chunk;
  readonly streaming: RouteStreaming;
  /**
   * Largest request body this route takes, in bytes (default `defaultMaxBodyBytes`, 1 MiB): more
   * only where the route needs it (images in a chat, a bulk import), so a burst of concurrent
   * requests cannot make the server buffer gigabytes.
   */
  readonly maxBodyBytes?: number;
  /**
   * The wire dialect of a route whose request and answer are another API's shapes: the HTTP
   * transport frames it as that API does. Ollama's (`/api/chat`): NDJSON streams and `{"error":
   * ...}` bodies. Anthropic's (`/v1/messages`): SSE with an `event:` line per event and
   * `{type:"error", error:{type, message}}` bodies. OpenAI's Responses (`/v1/responses`): SSE with
   * an `event:` line per event and no `[DONE]`. Absent: this server's own API (SSE `data:` frames
   * ending in `[DONE]`, problem documents).
   */
  readonly dialect?: RouteDialect;
}

/** The wire dialects routes can speak besides this server's own API. */
export type RouteDialect = 'ollama' | 'anthropic' | 'openai-responses';

/** The request body limit of a route that names none: 1 MiB. */
export const defaultMaxBodyBytes = 1024 * 1024;
/** For routes that carry images or long texts (chat with images, embedding batches): 16 MiB. */
export const largeBodyBytes = 16 * 1024 * 1024;
/** For bulk imports (documents, sync): 32 MiB. */
export const bulkBodyBytes = 32 * 1024 * 1024;

/** The request body limit of a route. */
export function routeBodyLimit(route: Pick<RouteDefinition, 'maxBodyBytes'>): number {
  return route.maxBodyBytes ?? defaultMaxBodyBytes;
}

/** Declares a route while keeping its literal id and schema types. */
export function defineRoute<const Id extends string, Request extends z.ZodType, Response extends z.ZodType, Chunk extends z.ZodType | undefined = undefined>(
  definition: Omit<RouteDefinition<Id, Request, Response, Chunk>, 'chunk' | 'streaming'> & { chunk?: Chunk; streaming?: RouteStreaming },
): RouteDefinition<Id, Request, Response, Chunk> {
  return {
    ...definition,
    chunk: definition.chunk as Chunk,
    streaming: definition.streaming ?? (definition.chunk === undefined ? 'never' : 'optional'),
  };
}
