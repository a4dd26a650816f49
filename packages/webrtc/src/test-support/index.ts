export {
  connectNodePeer,
  connectNodePeerToServerOffer,
  patientCheckRetransmissions,
  weriftCheckRetransmissions,
  type NodePeerClient,
  type NodePeerOptions,
  type SignalledSdp,
} from './node-peer-client.js';
