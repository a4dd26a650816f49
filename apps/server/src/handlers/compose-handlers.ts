import type { HandlerMap, RouteId } from '@tabagent/values';
import { createNotBuiltHandlers, type MissingCapability } from './not-built-handlers.js';

const webrtc: MissingCapability = {
  capability: 'webrtc',
  detail: 'the WebRTC transport (server-side peer and signalling) is not built yet; use HTTP or native messaging.',
};
const modelDownload: MissingCapability = {
  capability: 'model-download',
  detail:
    'downloading from Hugging Face is not built yet; put a .gguf file or an ONNX model folder in the models folder, or POST /v1/models/register with its path.',
};
const backendMissing = (capability: string): MissingCapability => ({
  capability,
  detail: `the ${capability} backend is not enabled in this server.`,
});

/** Names the capability a route lacks when no backend group serves it. */
export function missingCapabilityFor(id: RouteId): MissingCapability {
  if (id.startsWith('webrtc.')) return webrtc;
  if (id === 'models.pull') return modelDownload;
  return backendMissing(id.split('.')[0] ?? id);
}

/**
 * Merges backend handler groups over a map in which every route answers 501, so a route whose
 * backend is absent says so instead of failing obscurely. Later groups win.
 */
export function composeHandlers(...groups: Partial<HandlerMap>[]): HandlerMap {
  return Object.assign(createNotBuiltHandlers(missingCapabilityFor), ...groups) as HandlerMap;
}
