import { ServerResponse } from 'node:http';

/**
 * Headers the guard gives every response (the request id, the security headers, CORS), kept
 * aside and written with the status line by `writeHead` instead of one `setHeader` each: Node
 * validates and stores each `setHeader`, and a response with any takes `writeHead`'s slow path,
 * which together cost about a tenth of a small request's CPU time (bench/http). Only responses
 * made by `createApiHttpServer` have the slot; any other gets plain `setHeader`s.
 */
const deferredKey = Symbol('tabagent.api.deferredHeaders');

type DeferringResponse = ServerResponse & { [deferredKey]?: string[] };

/** Gives the response a slot for deferred headers (called as it is constructed). */
export function enableDeferredHeaders(response: ServerResponse): void {
  (response as DeferringResponse)[deferredKey] = [];
}

/** Sets a header now, or, on a response with the slot, when its head is written. */
export function deferHeader(response: ServerResponse, name: string, value: string): void {
  const deferred = (response as DeferringResponse)[deferredKey];
  if (deferred === undefined) response.setHeader(name, value);
  else deferred.push(name, value);
}

/** Node's own `writeHead`, with its overloads as one signature. */
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(this) below, on a ServerResponse.
const nodeWriteHead = ServerResponse.prototype.writeHead as (this: ServerResponse, ...args: unknown[]) => ServerResponse;

type HeaderValue = string | number | readonly string[] | undefined;
type WriteHeadHeaders = Record<string, HeaderValue> | (string | readonly string[])[] | undefined;

/**
 * `writeHead` that writes the deferred headers too: those the writer gave (in `writeHead` or by
 * `setHeader`) win over deferred ones of the same name. Installed on the app's response prototype.
 */
export function writeHeadWithDeferred(
  this: ServerResponse,
  statusCode: number,
  reasonOrHeaders?: string | WriteHeadHeaders,
  maybeHeaders?: WriteHeadHeaders,
): ServerResponse {
  const deferred = (this as DeferringResponse)[deferredKey];
  const reason = typeof reasonOrHeaders === 'string' ? reasonOrHeaders : undefined;
  const headers = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
  if (deferred === undefined || deferred.length === 0) {
    return reason === undefined ? nodeWriteHead.call(this, statusCode, headers) : nodeWriteHead.call(this, statusCode, reason, headers);
  }
  const flat: (string | readonly string[])[] = [];
  const given = new Set<string>();
  if (Array.isArray(headers)) {
    for (let index = 0; index + 1 < headers.length; index += 2) {
      given.add(String(headers[index]).toLowerCase());
      flat.push(headers[index] as string, headers[index + 1] as string | readonly string[]);
    }
  } else if (headers !== undefined) {
    for (const name of Object.keys(headers)) {
      const value = headers[name];
      if (value === undefined) continue;
      given.add(name.toLowerCase());
      flat.push(name, typeof value === 'number' ? String(value) : value);
    }
  }
  for (let index = 0; index + 1 < deferred.length; index += 2) {
    const name = deferred[index] as string;
    if (!given.has(name.toLowerCase()) && !this.hasHeader(name)) flat.push(name, deferred[index + 1] as string);
  }
  deferred.length = 0;
  return reason === undefined ? nodeWriteHead.call(this, statusCode, flat) : nodeWriteHead.call(this, statusCode, reason, flat);
}
