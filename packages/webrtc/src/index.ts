export {
  createWebRtcTransport,
  weriftIsPatched,
  tabAgentChannelLabel,
  type WebRtcHandlers,
  type WebRtcRouteId,
  type WebRtcTransport,
  type WebRtcTransportOptions,
} from './webrtc-transport.js';
export { silentWebRtcLogger, type WebRtcLogger } from './logger.js';
