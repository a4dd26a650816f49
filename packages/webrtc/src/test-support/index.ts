export {
  connectNodePeer,
  connectNodePeerToServerOffer,
  ChannelOpenTimeoutError,
  patientCheckRetransmissions,
  weriftCheckRetransmissions,
  type NodePeerClient,
  type NodePeerOptions,
  type SignalledSdp,
} from './node-peer-client.js';
