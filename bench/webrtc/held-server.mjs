#!/usr/bin/env node
// How long a server may be held (its process stopped, as an event loop busy with a first model
// load would hold it) right after answering a WebRTC offer, and the peer still connect: the
// Node test peer (@tabagent/webrtc/test-support, which the tests and the soak use in place of the
// browser) with werift's own check retransmissions (the baseline: 4, 1.55 s in all) and with the
// test peer's (9, as patient as a browser), against Chromium, the real client, in the same run.
// Every attempt is listed with its outcome; a failed one names where the connection stopped.
//
//   npm run bench:webrtc-held -- [--holds 500,1000,2000,4000,8000] [--timeout-ms 30000] [--out file.json]
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { chromium } from 'playwright-core';
import { connectNodePeer, patientCheckRetransmissions, weriftCheckRetransmissions } from '@tabagent/webrtc/test-support';
import { findChromium, installHint } from '../../apps/server/test/browser/chromium/find-chromium.mjs';
import { option, startTabagent } from '../support/bench-support.mjs';

const holds = option('holds', '500,1000,2000,4000,8000').split(',').map(Number);
const timeoutMs = Number(option('timeout-ms', '30000'));
const out = option('out', '');

const chromiumPath = findChromium();
if (chromiumPath === null) throw new Error(`No Chromium or Chrome found: ${installHint}`);
const pages = http.createServer((_request, response) => {
  response.setHeader('content-type', 'text/html');
  response.end('<!doctype html><title>held server</title>');
});
await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
const pageOrigin = `http://127.0.0.1:${pages.address().port}`;
const server = await startTabagent({ args: ['--mode', 'http', '--allowed-origin', pageOrigin] });
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  // A loopback-only machine needs these two for Chromium to check 127.0.0.1; a user's Chrome needs none.
  args: ['--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'],
});

/** Stops the server's process for `ms`, then lets it go. */
function hold(ms) {
  process.kill(server.pid, 'SIGSTOP');
  setTimeout(() => process.kill(server.pid, 'SIGCONT'), ms);
}

async function offer(sdp, origin) {
  const response = await fetch(`${server.baseUrl}/v1/webrtc/offer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) },
    body: JSON.stringify({ sdp }),
  });
  if (response.status !== 200) throw new Error(`offer refused: ${response.status} ${await response.text()}`);
  return response.json();
}

async function nodePeer(holdMs, checkRetransmissions) {
  const started = performance.now();
  try {
    const peer = await connectNodePeer(
      async (sdp) => {
        const answer = await offer(sdp);
        hold(holdMs);
        return answer;
      },
      timeoutMs,
      { checkRetransmissions, attempts: 1 },
    );
    const health = await peer.client.call('health', null);
    await peer.close();
    return { ok: health.status === 'ok', ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, ms: Math.round(performance.now() - started), error: String(error?.message ?? error) };
  }
}

async function chromiumPeer(holdMs) {
  const page = await browser.newPage();
  try {
    await page.goto(pageOrigin);
    await page.exposeFunction('signal', async (sdp) => {
      const answer = await offer(sdp, pageOrigin);
      hold(holdMs);
      return answer;
    });
    const started = performance.now();
    const result = await page.evaluate(async (timeout) => {
      const pc = new globalThis.RTCPeerConnection();
      const channel = pc.createDataChannel('tabagent');
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        setTimeout(resolve, 2000);
      });
      const answer = await globalThis.signal(pc.localDescription.sdp);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      try {
        await new Promise((resolve, reject) => {
          channel.addEventListener('open', resolve);
          setTimeout(() => reject(new Error(`the data channel did not open within ${timeout} ms`)), timeout);
        });
        const reply = new Promise((resolve) => channel.addEventListener('message', (event) => resolve(JSON.parse(event.data)), { once: true }));
        channel.send(JSON.stringify({ id: 'health', request_id: 'h1', payload: null }));
        const health = await reply;
        pc.close();
        return { ok: health.ok === true };
      } catch (error) {
        return { ok: false, error: `${error.message} (ice ${pc.iceConnectionState}, connection ${pc.connectionState})` };
      }
    }, timeoutMs);
    return { ...result, ms: Math.round(performance.now() - started) };
  } finally {
    await page.close();
  }
}

const rows = [];
try {
  for (const holdMs of holds) {
    const row = {
      hold_ms: holdMs,
      node_peer_werift_default: await nodePeer(holdMs, weriftCheckRetransmissions),
      node_peer: await nodePeer(holdMs, patientCheckRetransmissions),
      chromium: await chromiumPeer(holdMs),
    };
    rows.push(row);
    const cell = (result) => (result.ok ? `connected in ${result.ms} ms` : `FAILED after ${result.ms} ms`);
    process.stdout.write(
      `hold ${String(holdMs).padStart(5)} ms | node peer, werift's checks: ${cell(row.node_peer_werift_default)} | node peer: ${cell(row.node_peer)} | chromium: ${cell(row.chromium)}\n`,
    );
  }
} finally {
  await browser.close();
  await server.stop();
  pages.close();
}
const failed = (key) => rows.filter((row) => !row[key].ok);
for (const key of ['node_peer_werift_default', 'node_peer', 'chromium'])
  process.stdout.write(
    `${key}: ${rows.length - failed(key).length} of ${rows.length} connected${failed(key)
      .map((row) => `; hold ${row.hold_ms} ms: ${row[key].error}`)
      .join('')}\n`,
  );
if (out) writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), timeout_ms: timeoutMs, rows }, null, 2)}\n`);
// The baseline is expected to fail long holds; the test peer and Chromium must not.
process.exitCode = failed('node_peer').length + failed('chromium').length === 0 ? 0 : 1;
