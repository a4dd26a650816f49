// The baseline of bench/webrtc: werift alone, configured as the server's peer is (ICE-lite, no
// STUN, loopback), behind a minimal HTTP signalling endpoint. It echoes each channel message and,
// for `bulk <bytes>`, sends that many bytes in 256 KiB messages. Prints its port on stdout.
import http from 'node:http';
import { RTCPeerConnection } from 'werift';

const chunkBytes = 256 * 1024;

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => pc.iceGatheringStateChange.subscribe((state) => state === 'complete' && resolve()));
}

async function sendBulk(channel, total) {
  const chunk = 'x'.repeat(chunkBytes);
  channel.bufferedAmountLowThreshold = 256 * 1024;
  for (let sent = 0; sent < total; sent += chunkBytes) {
    if (channel.bufferedAmount > 1024 * 1024) await new Promise((resolve) => channel.bufferedAmountLow.once(resolve));
    channel.send(sent + chunkBytes <= total ? chunk : chunk.slice(0, total - sent));
  }
}

const server = http.createServer(async (request, response) => {
  let body = '';
  for await (const part of request) body += part;
  const pc = new RTCPeerConnection({
    iceServers: [],
    iceLite: true,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    maxMessageSize: 262_144,
  });
  pc.onDataChannel.subscribe((channel) => {
    channel.onMessage.subscribe((message) => {
      const text = String(message);
      if (text.startsWith('bulk ')) void sendBulk(channel, Number(text.slice(5)));
      else channel.send(message);
    });
  });
  await pc.setRemoteDescription({ type: 'offer', sdp: JSON.parse(body).sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ session_id: pc.id, type: 'answer', sdp: pc.localDescription.sdp }));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
