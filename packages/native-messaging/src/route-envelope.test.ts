import { splitIntoContinuations } from '@tabagent/route-envelope';
import { createTestProvider } from '@tabagent/route-envelope/test-support';
import { startHostHarness, type HostHarness } from './test-support/host-harness.js';

describe('route envelope {id, request_id, payload}', () => {
  let harness: HostHarness;

  beforeEach(() => {
    harness = startHostHarness(createTestProvider().provider);
  });

  afterEach(async () => {
    harness.host.close();
    await harness.host.done;
  });

  it('answers {request_id, ok: true, data}', async () => {
    harness.send({ id: 'health', request_id: 'r1', payload: null });
    expect(await harness.next()).toEqual({
      request_id: 'r1',
      ok: true,
      data: { status: 'ok', service: 'tabagent-server', version: '1.2.3', uptime_seconds: 5, timestamp: '2026-01-01T00:00:00.000Z' },
    });
  });

  it("accepts Rust's `route` key and numeric request ids", async () => {
    harness.send({ route: 'stats.get', request_id: 7, payload: {} });
    expect(await harness.next()).toEqual({ request_id: 7, ok: true, data: { last: null, models: [] } });
  });

  it('answers validation failures with a problem document', async () => {
    harness.send({ id: 'models.load', request_id: 'r2', payload: { model: '' } });
    expect(await harness.next()).toEqual({
      request_id: 'r2',
      ok: false,
      error: {
        type: 'https://tabagent.dev/errors/invalid-request',
        title: 'Invalid request',
        status: 400,
        code: 'invalid_request',
        detail: 'Invalid request for models.load: model: Too small: expected string to have >=1 characters',
        issues: [{ path: 'model', message: 'Too small: expected string to have >=1 characters' }],
      },
    });
  });

  it('takes a large request as continuation parts, as it sends large replies', async () => {
    const content = 'ü'.repeat(5000);
    const request = JSON.stringify({ id: 'chat.completions', request_id: 'parts-1', payload: { messages: [{ role: 'user', content }] } });
    for (const part of splitIntoContinuations(request, 'parts-1', 2000)) harness.send(part);
    expect(await harness.next()).toMatchObject({ request_id: 'parts-1', ok: true, data: { choices: [{ message: { content: `echo: ${content}` } }] } });
  });

  it('answers unknown routes, missing request ids and 501 backends with errors', async () => {
    harness.send({ id: 'nope', request_id: 'r3', payload: null });
    expect(await harness.next()).toMatchObject({
      request_id: 'r3',
      ok: false,
      error: { code: 'not_found', status: 404, detail: 'Unknown route id: nope', route: 'nope' },
    });
    harness.send({ id: 'health', payload: null });
    expect(await harness.next()).toMatchObject({
      request_id: null,
      ok: false,
      error: { code: 'invalid_request', detail: 'request_id is required (a non-empty string or a number)' },
    });
    harness.send({ id: 'models.pull', request_id: 'r4', payload: { model: 'a/b' } });
    expect(await harness.next()).toEqual({
      request_id: 'r4',
      ok: false,
      error: {
        type: 'https://tabagent.dev/errors/not-implemented',
        title: 'Not implemented',
        status: 501,
        code: 'not_implemented',
        detail: 'models.pull is not available: no backend in this test',
        capability: 'test',
        route: 'models.pull',
      },
    });
  });

  it('streams chunks with seq and ends with done', async () => {
    harness.send({ id: 'chat.completions', request_id: 's1', payload: { messages: [{ role: 'user', content: 'hi' }], stream: true } });
    const replies = [await harness.next(), await harness.next(), await harness.next(), await harness.next()];
    expect(
      replies.map((reply) => [reply.seq, (reply.chunk as { choices: Array<{ delta: { content: string } }> } | undefined)?.choices[0]?.delta.content]),
    ).toEqual([
      [0, 'one '],
      [1, 'two '],
      [2, 'three'],
      [undefined, undefined],
    ]);
    expect(replies[0]).toMatchObject({ request_id: 's1', chunk: { object: 'chat.completion.chunk', request_id: 's1' } });
    expect(replies[3]).toEqual({ request_id: 's1', done: true });
  });

  it('splits a reply larger than 1 MB into continuation parts that reassemble to the reply', async () => {
    harness.send({ id: 'system.logs', request_id: 'big', payload: { lines: 10000 } });
    const reply = await harness.next();
    const parts = harness.rawReplies.filter((raw) => (raw as { request_id?: string }).request_id === 'big');
    expect(parts.length).toBeGreaterThan(1);
    for (const [index, part] of parts.entries()) {
      expect(part).toMatchObject({ request_id: 'big', part: index, parts: parts.length });
      expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThanOrEqual(1_048_576);
    }
    expect(reply.ok).toBe(true);
    const data = reply.data as { lines: string; total_lines: number };
    expect(data.lines.split('\n')).toHaveLength(10000);
    expect(data.lines.split('\n')[0]).toBe(`2026-01-01T00:00:00.000Z INFO line 10000 ${'x'.repeat(100)}`);
    expect(data.total_lines).toBe(20000);
  });

  it('answers a message that is neither envelope, and a non-object, with a protocol error', async () => {
    harness.send({ hello: 'world', messageId: 'odd' });
    expect(await harness.next()).toMatchObject({
      request_id: null,
      messageId: 'odd',
      ok: false,
      status: 'error',
      message: 'A message needs `action` (legacy envelope) or `id` (route envelope)',
    });
    harness.send([1, 2]);
    expect(await harness.next()).toMatchObject({ ok: false, status: 'error', error: { code: 'invalid_request' } });
  });
});
