import type { HandlerMap, RouteId } from '@tabagent/values';
import { createNotBuiltHandlers, type MissingCapability } from './not-built-handlers.js';

const webrtc: MissingCapability = {
  capability: 'webrtc',
  detail: 'the WebRTC transport is off in this server: it runs in the http and all modes unless started with --webrtc off.',
};
const backendMissing = (capability: string): MissingCapability => ({
  capability,
  detail: `the ${capability} backend is not enabled in this server.`,
});

/** Names the capability a route lacks when no backend group serves it. */
export function missingCapabilityFor(id: RouteId): MissingCapability {
  if (id.startsWith('webrtc.')) return webrtc;
  return backendMissing(id.split('.')[0] ?? id);
}

/**
 * Merges backend handler groups over a map in which every route answers 501, so a route whose
 * backend is absent says so instead of failing obscurely. Later groups win.
 */
export function composeHandlers(...groups: Partial<HandlerMap>[]): HandlerMap {
  return Object.assign(createNotBuiltHandlers(missingCapabilityFor), ...groups) as HandlerMap;
}
