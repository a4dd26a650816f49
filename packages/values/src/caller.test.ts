import { assertPairingScope, callerKeyOf, runningKeyOf } from './caller.js';
import { ForbiddenError } from './errors.js';

describe('callerKeyOf', () => {
  it('tells callers apart by transport, origin, peer, pairing token and key, and ignores a trailing slash of the origin', () => {
    const http = { transport: 'http' as const, caller: { origin: 'chrome-extension://abc/' } };
    expect(callerKeyOf(http)).toBe(callerKeyOf({ transport: 'http', caller: { origin: 'chrome-extension://abc' } }));
    expect(callerKeyOf(http)).not.toBe(callerKeyOf({ transport: 'native-messaging', caller: { origin: 'chrome-extension://abc' } }));
    expect(callerKeyOf(http)).not.toBe(callerKeyOf({ transport: 'http', caller: { origin: 'chrome-extension://abc', pairing: { id: 'p1', scope: 'chat' } } }));
    expect(callerKeyOf({ transport: 'http', caller: {} })).not.toBe(callerKeyOf({ transport: 'http', caller: { apiKey: true } }));
    expect(callerKeyOf({ transport: 'webrtc', caller: { peerId: 'a' } })).not.toBe(callerKeyOf({ transport: 'webrtc', caller: { peerId: 'b' } }));
    expect(runningKeyOf('k', 'r1')).toBe('k\u0000r1');
  });
});

describe('assertPairingScope', () => {
  it('lets a chat token reach the chat routes only, and a full token or no token everything', () => {
    expect(() => assertPairingScope({ scope: 'chat' }, 'chat.completions')).not.toThrow();
    expect(() => assertPairingScope({ scope: 'full' }, 'memory.status')).not.toThrow();
    expect(() => assertPairingScope(undefined, 'memory.status')).not.toThrow();
    let refusal: unknown;
    try {
      assertPairingScope({ scope: 'chat' }, 'memory.status');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ForbiddenError);
    expect((refusal as InstanceType<typeof ForbiddenError>).message).toBe('This pairing token is for chat only; memory.status needs a token of scope "full"');
  });
});
