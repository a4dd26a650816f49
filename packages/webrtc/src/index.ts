export {
  createWebRtcTransport,
  weriftIsPatched,
  tabAgentChannelLabel,
  type WebRtcHandlers,
  type WebRtcRouteId,
  type WebRtcTransport,
  type WebRtcTransportOptions,
} from './webrtc-transport.js';
