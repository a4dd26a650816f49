// Test-only service worker: speaks to the native host exactly as the TabAgent extension's
// NativeHostManager does (persistent port, {action, messageId} messages, handshake first), plus one
// route-envelope call and one one-shot sendNativeMessage (as src/version.ts does).
const hostName = 'com.tabagent.host';

function runPortSession(timeoutMs) {
  return new Promise((resolve) => {
    const results = {};
    const waiting = new Map();
    let settled = false;
    const finish = (extra) => {
      if (settled) return;
      settled = true;
      resolve({ ...results, ...extra });
    };
    const port = chrome.runtime.connectNative(hostName);
    port.onMessage.addListener((message) => {
      const key = message.messageId ?? message.request_id;
      const resolveReply = waiting.get(key);
      if (resolveReply) {
        waiting.delete(key);
        resolveReply(message);
      }
    });
    port.onDisconnect.addListener(() => finish({ disconnected: chrome.runtime.lastError ? chrome.runtime.lastError.message : 'disconnected' }));
    const send = (message, key) =>
      new Promise((resolveReply) => {
        waiting.set(key, resolveReply);
        port.postMessage(message);
      });
    setTimeout(() => finish({ timedOut: true }), timeoutMs);
    (async () => {
      results.handshake = await send({ action: 'handshake', source: 'extension', messageId: 'msg_1_handshake' }, 'msg_1_handshake');
      results.ping = await send({ action: 'ping', messageId: 'msg_2_ping' }, 'msg_2_ping');
      results.systemInfo = await send({ action: 'get_system_info', messageId: 'msg_3_system' }, 'msg_3_system');
      results.health = await send({ id: 'health', request_id: 'x', payload: null }, 'x');
      port.disconnect();
      finish({});
    })();
  });
}

function oneShotVersion() {
  return new Promise((resolve) => {
    chrome.runtime.sendNativeMessage(hostName, { action: 'get_version' }, (reply) => {
      resolve(chrome.runtime.lastError ? { error: chrome.runtime.lastError.message } : reply);
    });
  });
}

globalThis.runNativeMessagingTest = async (timeoutMs = 20000) => {
  const session = await runPortSession(timeoutMs);
  const version = await oneShotVersion();
  return { ...session, oneShotVersion: version };
};
