export { encodeFrame, encodeFrameText } from './frame-encoder.js';
export { createFrameDecoder, decodeLargeFrame, type DecodedFrame, type FrameDecoder, type FrameDecoderOptions } from './frame-decoder.js';
export { defaultMaxIncomingBytes, defaultMaxOutgoingBytes, frameHeaderBytes } from './frame-limits.js';
// The envelope's continuation parts live in @tabagent/route-envelope (WebRTC uses them too); kept here for existing importers.
export {
  createContinuationReassembler,
  isContinuationMessage,
  splitIntoContinuations,
  type ContinuationMessage,
  type ContinuationReassembler,
} from '@tabagent/route-envelope';
export { mapInferenceSettings, type MappedInferenceSettings } from './inference-settings.js';
export {
  formatMegabytes,
  getLegacyAction,
  immediateLegacyActions,
  legacyActionTable,
  spreadRouteData,
  toLegacySystemInfo,
  type LegacyActionInput,
  type LegacyActionSpec,
  type LegacyReplyFields,
  type LegacySystemInfo,
} from './legacy-actions.js';
export { parseNativeHostArguments, type NativeHostArguments } from './host-arguments.js';
export { silentLogger, type NativeMessagingLogger } from './logger.js';
export { createRouteCaller, type RouteCaller } from './route-caller.js';
export { createNativeMessagingHost, type NativeHostExitReason, type NativeMessagingHost, type NativeMessagingHostOptions } from './native-messaging-host.js';
export { claimStdoutForFrames, type ClaimStdoutOptions } from './stdout-frame-output.js';
