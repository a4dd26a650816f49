export { connectNodePeer, connectNodePeerToServerOffer, type NodePeerClient, type SignalledSdp } from './node-peer-client.js';
