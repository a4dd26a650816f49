import { PassThrough, Writable } from 'node:stream';
import { createNativeMessagingHost } from './native-messaging-host.js';
import { encodeFrame } from './frame-encoder.js';
import { createTestProvider } from '@tabagent/route-envelope/test-support';
import { rawFrame, startHostHarness } from './test-support/host-harness.js';

describe('native messaging host session', () => {
  it('answers bad UTF-8 and bad JSON with an error and keeps the session', async () => {
    const harness = startHostHarness(createTestProvider().provider);
    harness.sendBytes(rawFrame(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])));
    expect(await harness.next()).toEqual({
      request_id: null,
      ok: false,
      status: 'error',
      message: 'Malformed frame: the message is not valid UTF-8',
      error: {
        type: 'https://tabagent.dev/errors/invalid-request',
        title: 'Invalid request',
        status: 400,
        code: 'invalid_request',
        detail: 'Malformed frame: the message is not valid UTF-8',
      },
    });
    harness.sendBytes(rawFrame(Buffer.from('{"action": "ping",', 'utf8')));
    const badJson = await harness.next();
    expect(badJson).toMatchObject({ ok: false, status: 'error', error: { code: 'invalid_request' } });
    expect(String(badJson.message).startsWith('Malformed JSON: ')).toBe(true);
    harness.send({ action: 'ping', messageId: 'after' });
    expect(await harness.next()).toEqual({ messageId: 'after', status: 'success', response: 'pong', version: '1.2.3' });
    expect(harness.logs.filter((line) => line.level === 'warn')).toHaveLength(2);
    harness.host.close();
    expect(await harness.host.done).toBe('closed');
  });

  it('answers busy, at once, to calls past the concurrency cap instead of running 5,000 at a time', async () => {
    let running = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const provider = {
      handle: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => release.push(resolve));
        running--;
        return { status: 'ok', service: 'tabagent-server', version: '1', uptime_seconds: 1, timestamp: '2026-01-01T00:00:00.000Z' };
      },
    } as unknown as Parameters<typeof startHostHarness>[0];
    const harness = startHostHarness(provider, { maxConcurrentCalls: 8 });
    for (let index = 0; index < 5000; index++) harness.send({ id: 'health', request_id: `f${index}`, payload: {} });
    const busy: unknown[] = [];
    while (busy.length < 4992) busy.push(await harness.next());
    expect(peak).toBe(8);
    expect(busy.every((reply) => (reply as { ok: boolean; error: { code: string; status: number } }).error.code === 'busy')).toBe(true);
    expect((busy[0] as { error: { status: number } }).error.status).toBe(503);
    for (const resolve of release.splice(0)) resolve();
    const done = [];
    while (done.length < 8) done.push(await harness.next());
    expect(done.every((reply) => (reply as { ok: boolean }).ok)).toBe(true);
    harness.host.close();
    await harness.host.done;
  });

  it('decodes frames over 256 KiB in slices and still handles every frame in the order it came', async () => {
    const harness = startHostHarness(createTestProvider().provider);
    const big = 'b'.repeat(600_000);
    // Bad UTF-8 and bad JSON in large frames, then a ping: three replies, in that order.
    harness.sendBytes(rawFrame(Buffer.concat([Buffer.from(`{"action":"ping","pad":"${big}`, 'utf8'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])));
    harness.sendBytes(rawFrame(Buffer.from(`{"action":"ping","pad":"${big}",}`, 'utf8')));
    harness.send({ action: 'ping', messageId: 'after-large' });
    const replies = [await harness.next(), await harness.next(), await harness.next()];
    expect(replies.map((reply) => reply.messageId ?? String(reply.message).split(':')[0])).toEqual(['Malformed frame', 'Malformed JSON', 'after-large']);
    // A large frame that is valid is handled like any other.
    harness.send({ action: 'ping', messageId: 'large-ping', pad: big });
    expect(await harness.next()).toEqual({ messageId: 'large-ping', status: 'success', response: 'pong', version: '1.2.3' });
    // Input that ends right after a large frame: the frame is answered before the session ends.
    harness.send({ action: 'ping', messageId: 'last-words', pad: big });
    harness.input.end();
    expect(await harness.next()).toEqual({ messageId: 'last-words', status: 'success', response: 'pong', version: '1.2.3' });
    expect(await harness.host.done).toBe('input-ended');
  });

  it('accepts a 5 MB request', async () => {
    const harness = startHostHarness(createTestProvider().provider);
    const prompt = 'p'.repeat(5 * 1024 * 1024);
    harness.send({ action: 'generate', messages: [{ role: 'user', content: prompt }], messageId: 'huge' });
    const reply = await harness.next();
    expect(reply.status).toBe('error');
    expect(reply.message).toMatch(/^The reply \(\d+ bytes\) exceeds the 1 MB native messaging limit/);
    harness.send({ id: 'chat.completions', request_id: 'huge-route', payload: { messages: [{ role: 'user', content: prompt }] } });
    const routeReply = await harness.next();
    expect((routeReply.data as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content).toBe(`echo: ${prompt}`);
    harness.host.close();
    await harness.host.done;
  });

  it('writes an error frame, logs, and ends the session on an oversize declared length', async () => {
    const harness = startHostHarness(createTestProvider().provider, { maxIncomingBytes: 1024 });
    harness.send({ action: 'ping', messageId: 'first' });
    harness.sendBytes(rawFrame(Buffer.alloc(8), 2048));
    expect(await harness.host.done).toBe('protocol-error');
    const first = await harness.replyTo('first');
    const failure = await harness.next();
    expect(first).toMatchObject({ messageId: 'first', status: 'success' });
    expect(failure).toMatchObject({
      request_id: null,
      ok: false,
      status: 'error',
      message: 'A message declares 2048 bytes, more than the 1024-byte limit; the stream can no longer be read, so the host exits (the browser reconnects).',
      error: { code: 'payload_too_large', status: 413, declared_bytes: 2048, max_bytes: 1024 },
    });
    expect(harness.logs.filter((line) => line.level === 'error').map((line) => line.message)).toEqual([
      'native messaging stream is no longer trustworthy: A message declares 2048 bytes, more than the 1024-byte limit; the stream can no longer be read, so the host exits (the browser reconnects).',
    ]);
    expect(harness.input.destroyed).toBe(true);
    expect(harness.leftoverBytes()).toBe(0);
  });

  it('handles requests concurrently: stop_generation reaches a running generate', async () => {
    const { provider, state } = createTestProvider();
    const harness = startHostHarness(provider);
    harness.send({ action: 'generate', messages: [{ role: 'user', content: 'slow' }], messageId: 'gen' });
    harness.send({ action: 'ping', messageId: 'p' });
    expect(await harness.next()).toMatchObject({ messageId: 'p', status: 'success' });
    while (!state.generations.has('gen')) await new Promise((resolve) => setTimeout(resolve, 5));
    harness.send({ action: 'stop_generation', messageId: 'stop' });
    const replies = [await harness.next(), await harness.next()];
    const byId = new Map(replies.map((reply) => [reply['messageId'], reply] as const));
    expect(byId.get('stop')).toMatchObject({ status: 'success', stopped: 1, stopped_request_ids: ['gen'] });
    expect(byId.get('gen')).toMatchObject({ status: 'error', code: 'cancelled', message: 'Generation stopped' });
    harness.host.close();
    await harness.host.done;
  });

  it('stops one route-envelope stream by request id through generation.stop', async () => {
    const { provider, state } = createTestProvider();
    const harness = startHostHarness(provider);
    harness.send({ id: 'chat.completions', request_id: 'slow-1', payload: { messages: [{ role: 'user', content: 'slow' }] } });
    while (!state.generations.has('slow-1')) await new Promise((resolve) => setTimeout(resolve, 5));
    harness.send({ id: 'generation.stop', request_id: 'stopper', payload: { request_id: 'slow-1' } });
    expect(await harness.replyTo('stopper')).toEqual({ request_id: 'stopper', ok: true, data: { status: 'stopped', request_id: 'slow-1', stopped: 1 } });
    expect(await harness.replyTo('slow-1')).toMatchObject({ request_id: 'slow-1', ok: false, error: { code: 'cancelled' } });
    harness.host.close();
    await harness.host.done;
  });

  it('aborts in-flight work when stdin ends and resolves done promptly', async () => {
    const { provider, state } = createTestProvider();
    const harness = startHostHarness(provider, { shutdownGraceMs: 10_000 });
    harness.send({ action: 'generate', messages: [{ role: 'user', content: 'slow' }], messageId: 'gen' });
    harness.send({ id: 'chat.completions', request_id: 'stream', payload: { messages: [{ role: 'user', content: 'x' }], stream: true } });
    while (!state.generations.has('gen')) await new Promise((resolve) => setTimeout(resolve, 5));
    const started = performance.now();
    harness.input.end();
    expect(await harness.host.done).toBe('input-ended');
    expect(performance.now() - started).toBeLessThan(500);
    expect(state.contexts.every((context) => context.signal.aborted)).toBe(true);
    expect(state.contexts).toHaveLength(2);
    expect(state.generations.size).toBe(0);
    expect(harness.leftoverBytes()).toBe(0);
  });

  it('never interleaves frames: every byte written decodes into whole messages', async () => {
    const harness = startHostHarness(createTestProvider().provider);
    for (let index = 0; index < 30; index += 1) {
      harness.send({ id: 'system.logs', request_id: `l${index}`, payload: { lines: index % 3 === 0 ? 9000 : 5 } });
      harness.send({ action: 'ping', messageId: `p${index}` });
    }
    const seen = new Set<unknown>();
    for (let index = 0; index < 60; index += 1) {
      const reply = await harness.next();
      seen.add(reply.request_id ?? reply.messageId);
    }
    expect(seen.size).toBe(60);
    expect(harness.leftoverBytes()).toBe(0);
    harness.host.close();
    await harness.host.done;
  });

  it('ends the session when the output fails instead of dropping replies silently', async () => {
    const input = new PassThrough();
    const output = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const errors: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (_object: object | string, message?: string) => errors.push(message ?? ''),
    };
    const host = createNativeMessagingHost({ input, output, provider: createTestProvider().provider, logger, version: '1.2.3' });
    input.write(encodeFrame({ action: 'ping', messageId: 'p' }));
    expect(await host.done).toBe('output-error');
    expect(errors).toEqual(['native messaging output failed; replies can no longer reach the browser, ending the session']);
    expect(input.destroyed).toBe(true);
  });
});
