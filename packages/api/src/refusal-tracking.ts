import type { IncomingMessage } from 'node:http';
import { problemStatusOf } from './problem-response.js';

/** A request answered with an error before any route handler (the provider) saw it. */
export interface RequestRefusal {
  /** The route id when the path matched one, else `unmatched`. */
  route: string;
  status: number;
  code: string;
}

const reachedKey = Symbol('tabagent.api.reachedProvider');

/** Marks a request as handed to the provider: errors after this are the provider's to count. */
export function markReachedProvider(request: IncomingMessage): void {
  (request as IncomingMessage & { [reachedKey]?: true })[reachedKey] = true;
}

/** True once the request was handed to the provider. */
export function reachedProvider(request: IncomingMessage): boolean {
  return (request as IncomingMessage & { [reachedKey]?: true })[reachedKey] === true;
}

/** Reports a refusal of `route` with the status and code its error is answered with. */
export function reportRefusal(onRefused: ((refusal: RequestRefusal) => void) | undefined, route: string, error: unknown): void {
  if (onRefused === undefined) return;
  onRefused({ route, ...problemStatusOf(error) });
}
