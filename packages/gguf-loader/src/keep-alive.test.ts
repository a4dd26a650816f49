import { parseKeepAlive } from './keep-alive.js';

describe('parseKeepAlive', () => {
  it.each([
    [30, 30_000],
    [0, 0],
    [-1, Infinity],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['45', 45_000],
    ['-1', Infinity],
    ['-5m', Infinity],
  ] as const)('%p -> %p ms', (input, expected) => {
    expect(parseKeepAlive(input)).toBe(expected);
  });

  it.each(['', 'soon', '5x', '5m later'])('refuses %p with invalid_request', (input) => {
    expect(() => parseKeepAlive(input)).toThrow(expect.objectContaining({ code: 'invalid_request' }) as Error);
  });
});
