import { ForbiddenError, safeParseJson, type CallerIdentity } from '@tabagent/values';
import { createContinuationReassembler, splitIntoContinuations } from './continuation.js';
import { RouteCallError, createEnvelopeClient, type EnvelopeClient } from './envelope-client.js';
import { createEnvelopeSession, type EnvelopeSession, type EnvelopeSessionOptions } from './envelope-session.js';
import { createTestProvider, type TestBackendState } from './test-support/test-handlers.js';

interface Pair {
  session: EnvelopeSession;
  client: EnvelopeClient;
  state: TestBackendState;
  /** Every text the session sent, in order. */
  sent: string[];
  /** Sends a raw message value to the session, as a transport would after parsing it. */
  raw: (value: unknown) => void;
}

function parse(text: string): unknown {
  const parsed = safeParseJson(text);
  if (!parsed.success) throw parsed.error;
  return parsed.value;
}

const caller: CallerIdentity = { origin: 'chrome-extension://abc/', peerId: 'p1' };

function connect(options: Partial<EnvelopeSessionOptions> = {}): Pair {
  const { provider, state } = createTestProvider();
  const sent: string[] = [];
  let client: EnvelopeClient | undefined;
  const session = createEnvelopeSession({
    provider,
    transport: 'webrtc',
    caller,
    maxMessageBytes: 4096,
    send: async (texts) => {
      for (const text of texts) {
        sent.push(text);
        client?.receive(text);
      }
    },
    ...options,
  });
  client = createEnvelopeClient({ send: (text) => session.receive(parse(text)) });
  return { session, client, state, sent, raw: (value) => session.receive(value) };
}

describe('route envelope session', () => {
  it('serves a call with the transport and caller in its context', async () => {
    const { client, state } = connect();
    await expect(client.call('health', null)).resolves.toEqual({
      status: 'ok',
      service: 'tabagent-server',
      version: '1.2.3',
      uptime_seconds: 5,
      timestamp: '2026-01-01T00:00:00.000Z',
    });
    await client.call('chat.completions', { messages: [{ role: 'user', content: 'hi' }] }, 'r-7');
    expect(state.contexts.map(({ requestId, transport, caller: who }) => ({ requestId, transport, caller: who }))).toEqual([
      { requestId: 'r-7', transport: 'webrtc', caller },
    ]);
  });

  it('streams chunks with seq numbers, then done', async () => {
    const { client, sent } = connect();
    const words: unknown[] = [];
    for await (const chunk of client.stream('chat.completions', { stream: true, messages: [{ role: 'user', content: 'hi' }] }, 's1')) {
      words.push(chunk.choices[0]?.delta.content);
    }
    expect(words).toEqual(['one ', 'two ', 'three']);
    expect(sent.map((text) => parse(text) as Record<string, unknown>).map(({ seq, done }) => ({ seq, done }))).toEqual([
      { seq: 0, done: undefined },
      { seq: 1, done: undefined },
      { seq: 2, done: undefined },
      { seq: undefined, done: true },
    ]);
  });

  it('splits a reply over the message limit into continuation parts within it', async () => {
    const { client, sent } = connect();
    const logs = await client.call('system.logs', { lines: 2000 });
    expect(logs.lines.split('\n')).toHaveLength(2000);
    expect(logs.lines.split('\n')[1999]).toBe(`2026-01-01T00:00:00.000Z INFO line 19999 ${'x'.repeat(100)}`);
    expect(sent.length).toBeGreaterThan(50);
    expect(sent.every((text) => Buffer.byteLength(text) <= 4096)).toBe(true);
    const parts = sent.map((text) => parse(text) as { part: number; parts: number });
    expect(parts.map(({ part }) => part)).toEqual(Array.from({ length: sent.length }, (_unused, index) => index));
  });

  it('reassembles a request sent as continuation parts, and refuses one over the limit', async () => {
    const { client, raw, state, sent } = connect({ maxReassembledBytes: 20_000 });
    const content = 'ü'.repeat(3000);
    const request = JSON.stringify({ id: 'chat.completions', request_id: 'big', payload: { messages: [{ role: 'user', content }] } });
    for (const part of splitIntoContinuations(request, 'big', 1000)) raw(part);
    await client.call('health', null);
    expect(state.lastChatRequest).toMatchObject({ messages: [{ role: 'user', content }] });
    // A reassembled request is parsed asynchronously: its reply may come after the health call's.
    const reassembler = createContinuationReassembler();
    const whole = sent.map((text) => reassembler.accept(parse(text))).filter((message) => message !== undefined);
    expect(whole.find((message) => (message as { request_id?: unknown }).request_id === 'big')).toMatchObject({
      request_id: 'big',
      ok: true,
      data: { choices: [{ message: { content: `echo: ${content}` } }] },
    });

    const tooBig = JSON.stringify({ id: 'chat.completions', request_id: 'huge', payload: { messages: [{ role: 'user', content: 'x'.repeat(30_000) }] } });
    for (const part of splitIntoContinuations(tooBig, 'huge', 1000)) raw(part);
    await client.call('health', null);
    const replies = sent.map((text) => parse(text) as Record<string, unknown>).filter((message) => message.request_id === 'huge');
    expect(replies).toEqual([
      {
        request_id: 'huge',
        ok: false,
        error: expect.objectContaining({ code: 'payload_too_large', status: 413, detail: 'Requests split into continuation parts exceed 20000 bytes' }),
      },
    ]);
  });

  it('parses a request reassembled from parts over 256 KiB in slices, and answers one that is not JSON with a 400', async () => {
    const { client, raw, state, sent } = connect();
    const content = 'a "quoted" line with é\n'.repeat(20_000);
    const request = JSON.stringify({ id: 'chat.completions', request_id: 'large', payload: { messages: [{ role: 'user', content }] } });
    expect(request.length).toBeGreaterThan(256 * 1024);
    for (const part of splitIntoContinuations(request, 'large', 4000)) raw(part);
    while (state.lastChatRequest === undefined) await new Promise((resolve) => setImmediate(resolve));
    expect(state.lastChatRequest).toMatchObject({ messages: [{ role: 'user', content }] });
    for (const part of splitIntoContinuations(`${request.slice(0, -2)},}`, 'broken', 4000)) raw(part);
    await client.call('health', null);
    while (!sent.some((text) => text.includes('"broken"'))) await new Promise((resolve) => setImmediate(resolve));
    const replies = sent.map((text) => parse(text) as Record<string, unknown>).filter((message) => message.request_id === 'broken');
    expect(replies).toEqual([{ request_id: 'broken', ok: false, error: expect.objectContaining({ code: 'invalid_request', status: 400 }) }]);
  });

  it('answers busy past the concurrency limit and aborts in-flight calls on close', async () => {
    const { client, session, state } = connect({ maxConcurrentCalls: 2 });
    const slow = [1, 2].map((n) => client.call('chat.completions', { messages: [{ role: 'user', content: 'slow' }] }, `slow-${n}`));
    const settled = slow.map((call) => call.catch((error: unknown) => error));
    await expect(client.call('health', null)).rejects.toMatchObject({ problem: { code: 'busy', status: 503, retryable: true } });
    expect(state.generations.size).toBe(2);
    session.close();
    const errors = await Promise.all(settled);
    expect(errors.map((error) => error instanceof RouteCallError && error.problem.code)).toEqual(['cancelled', 'cancelled']);
    await session.settle(1000);
    expect(session.inFlight).toBe(0);
  });

  it('refuses what authorize refuses and what is not an envelope', async () => {
    const { client, raw, sent } = connect({
      authorize: (id) => {
        if (id !== 'health') throw new ForbiddenError(`${id} is not open to this caller`);
      },
    });
    await expect(client.call('params.get', null)).rejects.toMatchObject({ problem: { code: 'forbidden', detail: 'params.get is not open to this caller' } });
    raw([1, 2]);
    raw({ hello: 'x', request_id: 'q' });
    await client.call('health', null);
    const errors = sent.map((text) => parse(text) as Record<string, unknown>).filter((message) => message.ok === false && message.request_id !== 'c1');
    expect(errors).toEqual([
      {
        request_id: null,
        ok: false,
        error: expect.objectContaining({ code: 'invalid_request', detail: 'A message must be a JSON object {id, request_id, payload}' }),
      },
      {
        request_id: 'q',
        ok: false,
        error: expect.objectContaining({ code: 'invalid_request', detail: 'A message must be a JSON object {id, request_id, payload}' }),
      },
    ]);
  });
});
