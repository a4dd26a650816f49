import { createAppStateProvider, isChunkStream, type CallContext, type HandlerMap } from './app-state-provider.js';
import { routeIds } from './route-catalogue.js';
import { NotImplementedError } from './errors.js';

const context: CallContext = { requestId: 'r1', signal: new AbortController().signal, transport: 'in-process', caller: {} };

function handlersAnswering(): HandlerMap {
  const notBuilt = async (): Promise<never> => {
    throw new NotImplementedError('not built');
  };
  const entries = Object.fromEntries(routeIds.map((id) => [id, notBuilt])) as unknown as HandlerMap;
  return {
    ...entries,
    health: async () => ({ status: 'ok', service: 'tabagent-server', version: '0.1.0', uptime_seconds: 1, timestamp: '2026-01-01T00:00:00.000Z' }),
  };
}

describe('createAppStateProvider', () => {
  it('dispatches to the handler of the route', async () => {
    const provider = createAppStateProvider(handlersAnswering());
    await expect(provider.handle('health', {}, context)).resolves.toEqual({
      status: 'ok',
      service: 'tabagent-server',
      version: '0.1.0',
      uptime_seconds: 1,
      timestamp: '2026-01-01T00:00:00.000Z',
    });
    await expect(provider.handle('models.list', {}, context)).rejects.toThrow('not built');
  });

  it('rejects unknown ids with not_found', async () => {
    const provider = createAppStateProvider(handlersAnswering());
    await expect(provider.handle('nope' as 'health', {}, context)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('makes a missing handler a compile error', () => {
    const { health: _omitted, ...withoutHealth } = handlersAnswering();
    // @ts-expect-error -- `health` is missing from the map
    const incomplete: HandlerMap = withoutHealth;
    expect(Object.keys(incomplete)).not.toContain('health');
  });

  it('tells streams from responses', () => {
    async function* chunks() {
      yield 1;
    }
    expect(isChunkStream(chunks())).toBe(true);
    expect(isChunkStream({ a: 1 })).toBe(false);
    expect(isChunkStream(null)).toBe(false);
  });
});
