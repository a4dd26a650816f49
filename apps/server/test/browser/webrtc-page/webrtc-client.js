// A small browser client of TabAgent's WebRTC transport, as a web app or an extension's offscreen
// document would write it: REST signalling, then the route envelope on the `tabagent` channel,
// with continuation parts both ways.

function iceGathered(pc, timeoutMs) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
    setTimeout(resolve, timeoutMs);
  });
}

function channelOpened(channel, timeoutMs) {
  return new Promise((resolve, reject) => {
    if (channel.readyState === 'open') resolve();
    channel.addEventListener('open', () => resolve());
    setTimeout(() => reject(new Error(`the channel did not open within ${timeoutMs} ms`)), timeoutMs);
  });
}

/** The route envelope over one channel: calls, streams, continuation parts. */
function envelopeClient(channel, maxMessageSize) {
  const handlers = new Map();
  const partial = new Map();
  let partsReceived = 0;
  channel.addEventListener('message', (event) => {
    let message = JSON.parse(event.data);
    if (typeof message.data_chunk === 'string') {
      partsReceived += 1;
      const slices = partial.get(message.request_id) ?? [];
      slices.push(message.data_chunk);
      if (slices.length < message.parts) {
        partial.set(message.request_id, slices);
        return;
      }
      partial.delete(message.request_id);
      message = JSON.parse(slices.join(''));
    }
    handlers.get(String(message.request_id))?.(message);
  });
  const send = (id, requestId, payload) => {
    const text = JSON.stringify({ id, request_id: requestId, payload });
    if (new TextEncoder().encode(text).length <= maxMessageSize) {
      channel.send(text);
      return 1;
    }
    // Large requests go as parts; a UTF-16 slice of a quarter of the limit stays under it in UTF-8.
    const size = Math.floor(maxMessageSize / 4);
    const count = Math.ceil(text.length / size);
    for (let part = 0; part < count; part += 1) {
      channel.send(JSON.stringify({ request_id: requestId, part, parts: count, data_chunk: text.slice(part * size, (part + 1) * size) }));
    }
    return count;
  };
  let counter = 0;
  let lastSentParts = 0;
  return {
    get lastSentParts() {
      return lastSentParts;
    },
    get partsReceived() {
      return partsReceived;
    },
    call(id, payload, requestId = `b${(counter += 1)}`) {
      return new Promise((resolve) => {
        handlers.set(requestId, (message) => {
          handlers.delete(requestId);
          resolve(message);
        });
        lastSentParts = send(id, requestId, payload);
      });
    },
    /** Streams a route; `onMessage` sees each message; resolves with the last (done or error). */
    stream(id, payload, requestId, onMessage) {
      return new Promise((resolve) => {
        handlers.set(requestId, (message) => {
          onMessage(message);
          if ('chunk' in message) return;
          handlers.delete(requestId);
          resolve(message);
        });
        send(id, requestId, payload);
      });
    },
  };
}

/** Runs the whole browser scenario against a server at `base`; returns what it saw. */
window.runWebRtcTest = async (base, model) => {
  const pc = new RTCPeerConnection();
  const channel = pc.createDataChannel('tabagent');
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc, 3000);
  const response = await fetch(`${base}/v1/webrtc/offer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, peer_id: 'chromium' }),
  });
  const answer = await response.json();
  if (!response.ok) return { offerStatus: response.status, offerError: answer };
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  await channelOpened(channel, 15000);
  const peer = envelopeClient(channel, answer.max_message_size);

  const health = await peer.call('health', null, 'h1');

  const chat = [];
  let stopReply;
  let stopSent;
  const chatPayload = { model, messages: [{ role: 'user', content: 'hello' }], stream: true, max_tokens: 1500, ignore_eos: true };
  const chatEnd = await peer.stream('chat.completions', chatPayload, 'chat-1', (message) => {
    chat.push(message);
    if ('chunk' in message && chat.length === 2) {
      stopSent = peer.call('generation.stop', { request_id: 'chat-1' }, 'stop-1').then((reply) => {
        stopReply = reply;
      });
    }
  });
  await stopSent;

  // A request over 1 MB goes out as continuation parts; the reply comes back as parts too.
  const created = await peer.call('conversations.create', { id: 'large-1', title: 'Large' }, 'conv-1');
  const content = (n) => `message ${n} `.repeat(70_000).slice(0, 700_000);
  const added = await peer.call(
    'conversations.add_messages',
    {
      conversation_id: 'large-1',
      messages: [
        { role: 'user', content: content(1) },
        { role: 'assistant', content: content(2) },
      ],
    },
    'add-1',
  );
  const addParts = peer.lastSentParts;
  const partsBefore = peer.partsReceived;
  const fetched = await peer.call('conversations.get', { conversation_id: 'large-1' }, 'get-1');
  const session = await (await fetch(`${base}/v1/webrtc/session/${answer.session_id}`)).json();
  const result = {
    answerType: answer.type,
    maxMessageSize: answer.max_message_size,
    health,
    chatChunks: chat.filter((message) => 'chunk' in message).length,
    chatEnd,
    stopReply,
    addParts,
    created: created.ok,
    added: added.ok ? added.data.count : added.error,
    largeReply: {
      ok: fetched.ok,
      bytes: new TextEncoder().encode(JSON.stringify(fetched)).length,
      parts: peer.partsReceived - partsBefore,
      contents: fetched.ok ? fetched.data.messages.map((message) => message.content.length) : [],
      contentsMatch: fetched.ok && fetched.data.messages[0].content === content(1) && fetched.data.messages[1].content === content(2),
    },
    session,
  };
  channel.close();
  pc.close();
  return result;
};
