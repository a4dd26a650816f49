import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from './test-support/test-provider.js';

const streamBody = (model: string): string => JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] });
const post = (server: TestServer, model: string, signal?: AbortSignal): Promise<Response> =>
  fetch(`${server.baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: streamBody(model), signal });

function frames(text: string): string[] {
  return text.split('\n\n').filter((frame) => frame.length > 0);
}

describe.each([false, true])('SSE streaming (plain http.createServer: %s)', (plainNodeServer) => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer({ plainNodeServer });
  });
  afterEach(async () => {
    await server.close();
  });

  it('sends each chunk as a data frame, then [DONE], with SSE headers', async () => {
    const response = await post(server, 'test-model');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('connection')).toBe('keep-alive');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    const requestId = response.headers.get('x-request-id');
    const received = frames(await response.text());
    expect(received).toHaveLength(4);
    expect(received[3]).toBe('data: [DONE]');
    const contents = received.slice(0, 3).map((frame) => {
      expect(frame.startsWith('data: ')).toBe(true);
      const chunk = JSON.parse(frame.slice('data: '.length)) as { request_id: string; choices: Array<{ delta: { content: string } }> };
      expect(chunk.request_id).toBe(requestId);
      return chunk.choices[0]?.delta.content;
    });
    expect(contents).toEqual(['one', 'two', 'three']);
  });

  it('reports an error after the first chunk as an error frame and omits [DONE]', async () => {
    const response = await post(server, 'explode-mid-stream');
    expect(response.status).toBe(200);
    const received = frames(await response.text());
    expect(received).toHaveLength(2);
    const error = JSON.parse(received[1]?.slice('data: '.length) ?? '') as { error: Record<string, unknown> };
    // One object that reads as OpenAI's stream error and as the problem document.
    expect(error.error).toMatchObject({
      status: 503,
      code: 'model_not_loaded',
      detail: 'The model was unloaded during generation',
      retryable: true,
      message: 'The model was unloaded during generation',
      type: 'server_error',
      param: null,
    });
    expect(received).not.toContain('data: [DONE]');
  });

  it('answers a failure before the first chunk with a normal problem response', async () => {
    const response = await post(server, 'no-such-model');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
  });

  it('on shutdown (shutdownSignal) aborts the call, and the stream still ends with its last chunk and [DONE]', async () => {
    const shutdown = new AbortController();
    const stopping = await startTestServer({ plainNodeServer, shutdownSignal: shutdown.signal });
    try {
      const response = await post(stopping, 'until-stopped');
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('"content":"one"');
      shutdown.abort();
      let rest = '';
      for (let part = await reader.read(); !part.done; part = await reader.read()) rest += new TextDecoder().decode(part.value);
      expect(
        frames(rest).map((frame) =>
          frame === 'data: [DONE]' ? frame : (JSON.parse(frame.slice(6)) as { choices: { delta: { content: string } }[] }).choices[0]?.delta.content,
        ),
      ).toEqual(['stopped', 'data: [DONE]']);
      await expect(stopping.probe.aborted).resolves.toBe('chat.completions');
    } finally {
      await stopping.close();
    }
  });

  it('aborts the context signal and closes the stream when the client disconnects', async () => {
    const controller = new AbortController();
    const response = await post(server, 'slow', controller.signal);
    expect(response.status).toBe(200);
    const reader = response.body?.getReader();
    const first = await reader?.read();
    expect(new TextDecoder().decode(first?.value)).toContain('"content":"one"');
    controller.abort();
    await expect(server.probe.aborted).resolves.toBe('chat.completions');
    expect(server.probe.contexts[0]?.signal.aborted).toBe(true);
  });
});
