import { callerKeyOf, type CallContext } from '@tabagent/values';
import { createRunningRequests } from './running-requests.js';

const contextOf = (requestId: string, origin: string, signal = new AbortController().signal): CallContext => ({
  requestId,
  signal,
  transport: 'http',
  caller: { origin },
});

describe('createRunningRequests', () => {
  it('stops a request only for its own caller, refuses a second live one under the same id, and halts generations but not pulls', () => {
    const running = createRunningRequests();
    const a = contextOf('r1', 'http://a.test');
    const chat = running.register(a, 'generation');
    const pull = running.register(contextOf('r2', 'http://a.test'), 'pull');
    const other = running.register(contextOf('r1', 'http://b.test'), 'generation');
    expect(() => running.register(a, 'generation')).toThrow('A request with id r1 is already running; give each request its own id');
    expect(running.list('generation').map((entry) => entry.requestId)).toEqual(['r1', 'r1']);
    expect(running.cancel('r1', callerKeyOf(contextOf('x', 'http://c.test')))).toBe(false);
    expect(running.cancel('r2', callerKeyOf(a))).toBe(true);
    expect(pull.signal.aborted).toBe(true);
    expect(running.abortAll('generation')).toEqual(['r1', 'r1']);
    expect([chat.signal.aborted, other.signal.aborted]).toEqual([true, true]);
    chat.release();
    chat.release();
    expect(running.list('generation')).toEqual([{ requestId: 'r1', caller: callerKeyOf(contextOf('r1', 'http://b.test')), kind: 'generation' }]);
    // Released: the id is free again for its caller.
    expect(running.register(a, 'generation').signal.aborted).toBe(false);
  });

  it('aborts with the call: a client that goes away aborts the registered signal', () => {
    const running = createRunningRequests();
    const client = new AbortController();
    const handle = running.register(contextOf('r1', 'http://a.test', client.signal), 'pull');
    client.abort();
    expect(handle.signal.aborted).toBe(true);
  });
});
