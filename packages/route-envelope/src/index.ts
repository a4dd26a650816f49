export {
  createContinuationReassembler,
  isContinuationMessage,
  splitIntoContinuations,
  type ContinuationMessage,
  type ContinuationReassembler,
} from './continuation.js';
export { encodeRouteMessage, type RouteMessage } from './route-message.js';
export {
  createEnvelopeSession,
  isJsonObject,
  maxRequestIdLength,
  type EnvelopeSession,
  type EnvelopeSessionOptions,
  type JsonObject,
} from './envelope-session.js';
export { createEnvelopeClient, RouteCallError, type EnvelopeClient, type EnvelopeClientOptions } from './envelope-client.js';
