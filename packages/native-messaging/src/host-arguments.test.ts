import { parseNativeHostArguments } from './host-arguments.js';

describe('parseNativeHostArguments', () => {
  it("takes the caller origin from Chrome's first argument", () => {
    expect(parseNativeHostArguments(['chrome-extension://fkkeoobeahalebjpbockfedlncckobjb/'])).toEqual({
      callerOrigin: 'chrome-extension://fkkeoobeahalebjpbockfedlncckobjb/',
      extensionId: 'fkkeoobeahalebjpbockfedlncckobjb',
      browser: 'chromium',
      rest: [],
    });
  });

  it("accepts Windows' --parent-window and keeps unrelated arguments", () => {
    expect(parseNativeHostArguments(['--data-dir', '/tmp/x', 'chrome-extension://abc/', '--parent-window=1234'])).toEqual({
      callerOrigin: 'chrome-extension://abc/',
      extensionId: 'abc',
      browser: 'chromium',
      parentWindow: 1234,
      rest: ['--data-dir', '/tmp/x'],
    });
  });

  it("reads Firefox's manifest path and add-on id", () => {
    expect(parseNativeHostArguments(['/home/u/.mozilla/native-messaging-hosts/com.tabagent.host.json', 'tabagent@tabagent.com'])).toEqual({
      callerOrigin: 'moz-extension://tabagent@tabagent.com',
      extensionId: 'tabagent@tabagent.com',
      browser: 'firefox',
      manifestPath: '/home/u/.mozilla/native-messaging-hosts/com.tabagent.host.json',
      rest: [],
    });
  });

  it('leaves the origin unset without a browser argument', () => {
    expect(parseNativeHostArguments(['serve'])).toEqual({ rest: ['serve'] });
  });
});
