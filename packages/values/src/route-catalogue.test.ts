import { routeCatalogue, routeIds, routeList, getRoute, isRouteId } from './route-catalogue.js';
import { parseRouteRequest } from './request-validation.js';
import { TabAgentError } from './errors.js';

describe('route catalogue', () => {
  it('has unique ids', () => {
    expect(new Set(routeIds).size).toBe(routeList.length);
  });

  it('has one operation per method and path, aliases included', () => {
    const keys = routeList.flatMap((route) => [route.path, ...(route.aliases ?? [])].map((path) => `${route.method} ${path}`));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('marks exactly chat completions, completions, model pulls, Ollama chat and generate, Anthropic messages and Responses as streaming', () => {
    expect(routeList.filter((route) => route.streaming !== 'never').map((route) => route.id)).toEqual([
      'chat.completions',
      'completions',
      'models.pull',
      'ollama.chat',
      'ollama.generate',
      'anthropic.messages',
      'responses.create',
    ]);
  });

  it('covers the groups the foundation issue lists', () => {
    const expected = [
      'GET /v1/health',
      'GET /v1/routes',
      'GET /v1/system/info',
      'GET /v1/hardware/info',
      'POST /v1/hardware/feasibility',
      'GET /v1/hardware/recommendations',
      'GET /v1/resources',
      'POST /v1/resources/estimate',
      'POST /v1/resources/compatibility',
      'GET /v1/stats',
      'POST /v1/chat/completions',
      'POST /v1/completions',
      'POST /v1/generation/stop',
      'GET /v1/halt',
      'POST /v1/halt',
      'GET /v1/params',
      'POST /v1/params',
      'GET /v1/models',
      'GET /v1/models/{model}',
      'POST /v1/models/load',
      'POST /v1/models/unload',
      'GET /v1/models/loaded',
      'POST /v1/models/select',
      'POST /v1/models/pull',
      'DELETE /v1/models/{model}',
      'POST /v1/hf/token',
      'GET /v1/hf/token/status',
      'DELETE /v1/hf/token',
      'POST /v1/embeddings',
      'POST /v1/rerank',
      'POST /v1/similarity',
      'POST /v1/semantic-search',
      'POST /v1/evaluate-embeddings',
      'POST /v1/cluster',
      'POST /v1/recommend',
      'GET /v1/embedding-models',
      'POST /v1/rag/query',
      'GET /v1/sessions/{session_id}/history',
      'POST /v1/sessions/{session_id}/messages',
      'POST /v1/conversations',
      'GET /v1/conversations',
      'GET /v1/conversations/{conversation_id}',
      'POST /v1/conversations/{conversation_id}/messages',
      'POST /v1/conversations/search',
      'POST /v1/sync/push',
      'POST /v1/sync/pull',
      'POST /v1/documents',
      'POST /v1/webrtc/offer',
      'POST /v1/webrtc/answer',
      'POST /v1/webrtc/ice',
      'GET /v1/webrtc/session/{session_id}',
    ];
    const present = new Set(routeList.map((route) => `${route.method} ${route.path}`));
    expect(expected.filter((key) => !present.has(key))).toEqual([]);
  });

  it('looks routes up by id', () => {
    expect(getRoute('models.load').path).toBe('/v1/models/load');
    expect(routeCatalogue['chat.completions'].method).toBe('POST');
    expect(isRouteId('chat.completions')).toBe(true);
    expect(isRouteId('toString')).toBe(false);
    expect(isRouteId(42)).toBe(false);
  });
});

describe('parseRouteRequest', () => {
  it('applies defaults and accepts the Rust field name model_id', () => {
    expect(parseRouteRequest('models.load', { model_id: 'tiny' })).toEqual({ model: 'tiny' });
    expect(parseRouteRequest('chat.completions', { messages: [{ role: 'user', content: 'hi' }] })).toEqual({
      messages: [{ role: 'user', content: 'hi' }],
      stream: false,
    });
  });

  it("accepts the original servers' field names for the same fields", () => {
    expect(parseRouteRequest('resources.estimate', { model_path: 'tiny' })).toEqual({ model: 'tiny' });
    expect(parseRouteRequest('rerank', { query: 'q', documents: ['a'], top_k: 1 })).toMatchObject({ top_n: 1 });
    expect(parseRouteRequest('cluster', { documents: ['a', 'b'] })).toMatchObject({ texts: ['a', 'b'], n_clusters: 2 });
    expect(parseRouteRequest('recommend', { query: 'q', items: ['a'] })).toMatchObject({ candidates: ['a'], top_n: 10 });
    expect(parseRouteRequest('conversations.create', { conversation_id: 'c1', title: 't' })).toMatchObject({ id: 'c1', user_id: 'default' });
    expect(parseRouteRequest('rerank', { query: 'q', documents: ['a'], top_n: 2, top_k: 1 })).toMatchObject({ top_n: 2 });
  });

  it('accepts null and {} for routes that take nothing', () => {
    expect(parseRouteRequest('health', null)).toEqual({});
    expect(parseRouteRequest('health', {})).toEqual({});
  });

  it('coerces query-string numbers', () => {
    expect(parseRouteRequest('system.logs', { lines: '20' })).toEqual({ lines: 20 });
  });

  it('takes a pairing origin only as an exact scheme://host[:port] or "*"', () => {
    for (const origin of ['http://localhost:5173', 'https://app.example', 'chrome-extension://abcdefghijklmnopabcdefghijklmnop', '*'])
      expect(parseRouteRequest('pairing.create', { label: 'app', origin })).toEqual({ label: 'app', scope: 'chat', origin });
    for (const origin of ['null', 'http://localhost:5173/app', 'https://*.example', 'http://user@host', 'localhost:5173', ''])
      expect(() => parseRouteRequest('pairing.create', { label: 'app', origin })).toThrow(/origin/u);
  });

  it('lists every bad field', () => {
    let thrown: unknown;
    try {
      parseRouteRequest('chat.completions', { messages: [{ role: 'robot', content: 'x' }], temperature: 5 });
    } catch (error) {
      thrown = error;
    }
    expect(TabAgentError.isInstance(thrown)).toBe(true);
    const error = thrown as TabAgentError;
    expect(error.code).toBe('invalid_request');
    const issues = (error.details?.['issues'] as { path: string }[]).map((issue) => issue.path).sort();
    expect(issues).toEqual(['messages.0.role', 'temperature']);
  });
});
