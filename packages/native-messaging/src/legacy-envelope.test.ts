import { createAppStateProvider } from '@tabagent/values';
import { createNotImplementedHandlers, createTestProvider, type TestBackendState } from '@tabagent/route-envelope/test-support';
import { startHostHarness, type HostHarness } from './test-support/host-harness.js';

describe('legacy envelope {action, messageId, ...}', () => {
  let harness: HostHarness;
  let state: TestBackendState;

  beforeEach(() => {
    const test = createTestProvider();
    state = test.state;
    harness = startHostHarness(test.provider);
  });

  afterEach(async () => {
    harness.host.close();
    await harness.host.done;
  });

  async function call(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    harness.send(message);
    return harness.replyTo(message.messageId as string);
  }

  it('answers handshake at once without touching the provider', async () => {
    const calls: string[] = [];
    const provider = {
      handle: async (id: string) => {
        calls.push(id);
        throw new Error('must not be called');
      },
    };
    const lone = startHostHarness(provider as never);
    lone.send({ action: 'handshake', source: 'extension', messageId: 'msg_1_1700000000000' });
    expect(await lone.next()).toEqual({ messageId: 'msg_1_1700000000000', status: 'success', message: 'TabAgent host ready', version: '1.2.3' });
    lone.send({ action: 'ping', messageId: 'msg_2' });
    expect(await lone.next()).toEqual({ messageId: 'msg_2', status: 'success', response: 'pong', version: '1.2.3' });
    lone.send({ action: 'get_version', messageId: 'msg_3' });
    expect(await lone.next()).toEqual({ messageId: 'msg_3', status: 'success', version: '1.2.3' });
    expect(calls).toEqual([]);
    lone.host.close();
    await lone.host.done;
  });

  it('answers a one-shot request without messageId (sendNativeMessage)', async () => {
    harness.send({ action: 'get_version' });
    expect(await harness.next()).toEqual({ status: 'success', version: '1.2.3' });
  });

  it('maps get_system_info to display strings at top level and under data', async () => {
    const display = {
      os: 'Debian GNU/Linux 12 (x64)',
      cpu: 'EPYC 7B13 (2 cores, 4 threads)',
      ram: '24 GB',
      gpu: 'None',
      vram: 'N/A',
      available_backends: ['cpu', 'vulkan'],
    };
    expect(await call({ action: 'get_system_info', messageId: 'm1' })).toEqual({ messageId: 'm1', status: 'success', ...display, data: display });
  });

  it('maps get_logs to system.logs (lines string, log_file, total_lines)', async () => {
    const reply = await call({ action: 'get_logs', lines: 3, messageId: 'm2' });
    const lines = [19997, 19998, 19999].map((index) => `2026-01-01T00:00:00.000Z INFO line ${index} ${'x'.repeat(100)}`).join('\n');
    const data = { lines, log_file: '/data/logs/tabagent.log', total_lines: 20000 };
    expect(reply).toEqual({ messageId: 'm2', status: 'success', ...data });
  });

  it('answers a legacy reply larger than 1 MB with a clear error', async () => {
    const reply = await call({ action: 'get_logs', lines: 10000, messageId: 'big' });
    expect(reply.status).toBe('error');
    expect(reply.code).toBe('payload_too_large');
    expect(reply.message).toMatch(/^The reply \(\d+ bytes\) exceeds the 1 MB native messaging limit \(1048576 bytes\)/);
  });

  it('loads a registered model by id, accepting model_path and modelPath', async () => {
    const reply = await call({ action: 'load_model', model_path: 'tiny-llama', messageId: 'm3' });
    const loaded = {
      model: 'tiny-llama',
      format: 'gguf',
      task: 'text-generation',
      loaded_at: '2026-01-01T00:00:00.000Z',
      last_used_at: '2026-01-01T00:00:00.000Z',
      expires_at: null,
      context_size: 512,
      gpu_layers: 0,
      total_layers: 2,
      device: 'cpu',
      threads: 1,
      memory_mb: 12,
    };
    expect(reply).toEqual({
      messageId: 'm3',
      status: 'success',
      ...loaded,
      route_status: 'loaded',
      load_time_ms: 3,
      message: 'Model tiny-llama loaded',
      isReady: true,
      modelPath: 'tiny-llama',
    });
    const again = await call({ action: 'load_model', modelPath: 'tiny-llama', messageId: 'm4' });
    expect(again).toMatchObject({ status: 'success', route_status: 'already_loaded', modelPath: 'tiny-llama' });
  });

  it('registers then loads a model given by absolute path', async () => {
    const reply = await call({ action: 'load_model', model_path: '/models/extra/other-model.gguf', messageId: 'm5' });
    expect(reply).toMatchObject({ status: 'success', model: 'other-model', isReady: true, modelPath: 'other-model' });
    expect(state.registered.get('other-model')).toBe('/models/extra/other-model.gguf');
    expect(state.loaded.has('other-model')).toBe(true);
  });

  it('reports a missing model and a missing model_path as errors carrying messageId', async () => {
    expect(await call({ action: 'load_model', model_path: 'nope', messageId: 'm6' })).toEqual({
      messageId: 'm6',
      status: 'error',
      message: 'Model nope is not registered',
      code: 'model_not_found',
      error: {
        type: 'https://tabagent.dev/errors/model-not-found',
        title: 'Model not found',
        status: 404,
        detail: 'Model nope is not registered',
        code: 'model_not_found',
      },
    });
    expect(await call({ action: 'load_model', messageId: 'm7' })).toMatchObject({
      messageId: 'm7',
      status: 'error',
      code: 'invalid_request',
      message: 'model_path is required (a non-empty string)',
    });
  });

  it('reports model state from models.loaded and stats.get', async () => {
    expect(await call({ action: 'get_model_state', messageId: 's0' })).toEqual({ messageId: 's0', status: 'success', isReady: false });
    await call({ action: 'load_model', model_path: 'tiny-llama', messageId: 's1' });
    await call({ action: 'generate', messages: [{ role: 'user', content: 'hi' }], messageId: 's2' });
    expect(await call({ action: 'get_model_state', messageId: 's3' })).toEqual({
      messageId: 's3',
      status: 'success',
      isReady: true,
      backend: 'native_llama',
      modelPath: 'tiny-llama',
      time_to_first_token: 12,
      tokens_per_second: 50,
      input_tokens: 7,
      output_tokens: 3,
      total_time: 60,
    });
  });

  it('unloads every loaded text model when no model is named, or the named one', async () => {
    await call({ action: 'load_model', model_path: 'tiny-llama', messageId: 'u1' });
    await call({ action: 'load_model', model_path: 'tiny-embedder', messageId: 'u2' });
    expect(await call({ action: 'unload_model', messageId: 'u3' })).toEqual({
      messageId: 'u3',
      status: 'success',
      message: 'Unloaded tiny-llama',
      unloaded: ['tiny-llama'],
    });
    expect([...state.loaded.keys()]).toEqual(['tiny-embedder']);
    expect(await call({ action: 'unload_model', model_id: 'tiny-embedder', messageId: 'u4' })).toEqual({
      messageId: 'u4',
      status: 'success',
      message: 'Unloaded tiny-embedder',
      unloaded: ['tiny-embedder'],
    });
    expect(await call({ action: 'unload_model', messageId: 'u5' })).toEqual({
      messageId: 'u5',
      status: 'success',
      message: 'No model was loaded',
      unloaded: [],
    });
  });

  it('passes generate to legacy.generate as it came (the legacy codec maps the settings) and replies with its fields', async () => {
    const fields = {
      stream: false,
      messages: [{ role: 'user', content: 'hello there' }],
      settings: { temperature: 0.2, max_new_tokens: 64, repetition_penalty: 1.3, do_sample: true, system_prompt: 'Be brief.' },
    };
    const reply = await call({ action: 'generate', messageId: 'g1', ...fields });
    expect(reply).toEqual({
      messageId: 'g1',
      status: 'success',
      text: 'echo: hello there',
      stats: { time_to_first_token: 12, tokens_per_second: 50, input_tokens: 7, output_tokens: 3, total_time: 60 },
      finish_reason: 'stop',
      model: 'tiny-llama',
      request_id: 'g1',
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    });
    expect(state.lastChatRequest).toEqual(fields);
    expect(state.contexts[0]).toMatchObject({
      requestId: 'g1',
      transport: 'native-messaging',
      caller: { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop/' },
    });
  });

  it('rejects a generate without messages with the route schema, naming the field', async () => {
    const reply = await call({ action: 'generate', settings: {}, messageId: 'g2' });
    expect(reply).toMatchObject({ messageId: 'g2', status: 'error', code: 'invalid_request' });
    expect(reply.message).toMatch(/^Invalid request for legacy\.generate: messages: /);
  });

  it('maps update_settings onto params.set with the same names', async () => {
    const reply = await call({
      action: 'update_settings',
      settings: { temperature: 0.1, max_new_tokens: 99, repetition_penalty: 1.05, system_prompt: 'S' },
      messageId: 'p1',
    });
    const params = {
      temperature: 0.1,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      repeat_penalty: 1.05,
      frequency_penalty: 0,
      presence_penalty: 0,
      max_tokens: 99,
      seed: null,
      stop: [],
      system_prompt: 'S',
    };
    expect(reply).toEqual({ messageId: 'p1', status: 'success', ...params });
  });

  it('maps stop_generation to generation.halt, or generation.stop with a request id', async () => {
    expect(await call({ action: 'stop_generation', messageId: 'h1' })).toEqual({
      messageId: 'h1',
      status: 'success',
      route_status: 'halted',
      was_generating: false,
      stopped: 0,
      stopped_request_ids: [],
    });
    expect(await call({ action: 'stop_generation', request_id: 'none', messageId: 'h2' })).toEqual({
      messageId: 'h2',
      status: 'success',
      route_status: 'not_found',
      request_id: 'none',
      stopped: 0,
    });
  });

  it('maps pull_model and delete_model by model_id; a 501 backend is an error reply with its message', async () => {
    expect(await call({ action: 'pull_model', model_id: 'owner/repo', messageId: 'd1' })).toEqual({
      messageId: 'd1',
      status: 'error',
      code: 'not_implemented',
      message: 'models.pull is not available: no backend in this test',
      error: {
        type: 'https://tabagent.dev/errors/not-implemented',
        title: 'Not implemented',
        status: 501,
        detail: 'models.pull is not available: no backend in this test',
        code: 'not_implemented',
        capability: 'test',
        route: 'models.pull',
      },
    });
    expect(await call({ action: 'delete_model', model_id: 'tiny-llama', messageId: 'd2' })).toEqual({
      messageId: 'd2',
      status: 'success',
      route_status: 'unregistered',
      model: 'tiny-llama',
    });
  });

  it('refuses execute_command: the host never runs shell commands', async () => {
    expect(await call({ action: 'execute_command', command: 'rm -rf /', messageId: 'x1' })).toMatchObject({
      messageId: 'x1',
      status: 'error',
      code: 'invalid_request',
      message: 'execute_command is refused: the TabAgent host never runs shell commands',
    });
  });

  it('answers unknown and malformed actions with an error that still carries messageId', async () => {
    expect(await call({ action: 'check_lmstudio', messageId: 'x2' })).toMatchObject({
      messageId: 'x2',
      status: 'error',
      code: 'not_found',
      message: 'Unknown action: check_lmstudio',
    });
    expect(await call({ action: 'toString', messageId: 'x3' })).toMatchObject({ messageId: 'x3', status: 'error', message: 'Unknown action: toString' });
    expect(await call({ action: 42, messageId: 'x4' })).toMatchObject({ messageId: 'x4', status: 'error', message: 'action must be a string' });
  });

  it('maps the declared-only actions onto their routes', async () => {
    expect(await call({ action: 'get_params', messageId: 'r1' })).toEqual({ messageId: 'r1', status: 'success', ...state.params });
    expect(await call({ action: 'set_params', params: { temperature: 0.3 }, messageId: 'r2' })).toMatchObject({ status: 'success', temperature: 0.3 });
    expect(await call({ action: 'get_registered_models', messageId: 'r3' })).toEqual({ messageId: 'r3', status: 'success', object: 'list', data: [] });
    expect(await call({ action: 'list_loaded_models', messageId: 'r4' })).toEqual({
      messageId: 'r4',
      status: 'success',
      models: [],
      total: 0,
      default_model: null,
    });
    expect(await call({ action: 'get_hf_token_status', messageId: 'r5' })).toEqual({
      messageId: 'r5',
      status: 'success',
      has_token: false,
      hasToken: false,
      message: 'No token stored',
    });
    expect(await call({ action: 'get_hardware_info', messageId: 'r6' })).toMatchObject({ status: 'success', advice: { llama_gpu_backends: ['vulkan'] } });
    for (const [action, route, fields] of [
      ['generate_embeddings', 'embeddings', { texts: ['a'] }],
      ['rerank_documents', 'rerank', { query: 'q', documents: ['a'], top_k: 1 }],
      ['semantic_search', 'semantic_search', { query: 'q', documents: ['a'] }],
      ['compute_similarity', 'similarity', { text1: 'a', text2: 'b' }],
      ['cluster_texts', 'cluster', { texts: ['a', 'b'] }],
      ['recommend_items', 'recommend', { query: 'q', items: ['a'] }],
      ['select_active_model', 'models.select', { model_id: 'tiny-llama' }],
      ['query_resources', 'resources.get', {}],
      ['estimate_model_size', 'resources.estimate', { model_path: 'tiny-llama' }],
      ['check_model_feasibility', 'hardware.feasibility', { modelSizeMb: 100 }],
      ['get_recommended_models', 'hardware.recommendations', {}],
      ['set_hf_token', 'hf.token.set', { token: 'hf_abcdefgh' }],
      ['clear_hf_token', 'hf.token.clear', {}],
    ] as const) {
      const reply = await call({ action, ...fields, messageId: action });
      expect(reply).toMatchObject({
        messageId: action,
        status: 'error',
        code: 'not_implemented',
        message: `${route} is not available: no backend in this test`,
      });
    }
  });

  it('validates declared-only action fields through the route schema', async () => {
    expect(await call({ action: 'compute_similarity', text1: 'a', messageId: 'v1' })).toMatchObject({
      status: 'error',
      code: 'invalid_request',
      message: 'Invalid request for similarity: text2: Invalid input: expected string, received undefined',
    });
  });

  it("works with the server's all-501 handler map: handshake succeeds, routed actions say what is missing", async () => {
    const bare = startHostHarness(createAppStateProvider(createNotImplementedHandlers()));
    bare.send({ action: 'handshake', source: 'extension', messageId: 'a' });
    bare.send({ action: 'get_system_info', messageId: 'b' });
    expect(await bare.replyTo('a')).toMatchObject({ status: 'success' });
    expect(await bare.replyTo('b')).toMatchObject({ status: 'error', message: 'system.info is not available: no backend in this test' });
    bare.host.close();
    await bare.host.done;
  });
});
