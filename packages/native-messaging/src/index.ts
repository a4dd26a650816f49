export { encodeFrame, encodeFrameText } from './frame-encoder.js';
export { createFrameDecoder, decodeLargeFrame, type DecodedFrame, type FrameDecoder, type FrameDecoderOptions } from './frame-decoder.js';
export { defaultMaxIncomingBytes, defaultMaxOutgoingBytes, frameHeaderBytes } from './frame-limits.js';
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
export { createRouteCaller, type RouteCaller } from './route-caller.js';
export { createNativeMessagingHost, type NativeHostExitReason, type NativeMessagingHost, type NativeMessagingHostOptions } from './native-messaging-host.js';
export { claimStdoutForFrames, type ClaimStdoutOptions } from './stdout-frame-output.js';
