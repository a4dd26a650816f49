import { toChatHistory } from './chat-history.js';

describe('toChatHistory', () => {
  it('maps system, developer, user and assistant messages and opens a model response', () => {
    expect(
      toChatHistory([
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: 'Use French.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Salut' },
        { role: 'user', content: 'Again' },
      ]),
    ).toEqual([
      { type: 'system', text: 'Be brief.' },
      { type: 'system', text: 'Use French.' },
      { type: 'user', text: 'Hi' },
      { type: 'model', response: ['Salut'] },
      { type: 'user', text: 'Again' },
      { type: 'model', response: [] },
    ]);
  });

  it('continues a trailing assistant message (prefill)', () => {
    expect(
      toChatHistory([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Sure, ' },
      ]),
    ).toEqual([
      { type: 'user', text: 'Hi' },
      { type: 'model', response: ['Sure, '] },
    ]);
  });

  it('puts tool results into the matching function call and continues after them', () => {
    const history = toChatHistory([
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: null, toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      { role: 'tool', toolCallId: 'call_1', content: '{"temp":21}' },
    ]);
    expect(history).toEqual([
      { type: 'user', text: 'Weather?' },
      { type: 'model', response: [{ type: 'functionCall', name: 'get_weather', params: { city: 'Paris' }, result: { temp: 21 } }] },
    ]);
  });

  it('keeps an unmatched tool result as user text, and non-JSON arguments as text', () => {
    const history = toChatHistory([
      { role: 'user', content: 'x' },
      { role: 'assistant', content: null, toolCalls: [{ id: 'a', name: 'f', arguments: 'not json' }] },
      { role: 'tool', toolCallId: 'zzz', name: 'g', content: 'plain' },
    ]);
    expect(history[1]).toEqual({ type: 'model', response: [{ type: 'functionCall', name: 'f', params: 'not json', result: null }] });
    expect(history[2]).toEqual({ type: 'user', text: 'Result of g: plain' });
    expect(history[3]).toEqual({ type: 'model', response: [] });
  });

  it('refuses messages with only a system prompt', () => {
    expect(() => toChatHistory([{ role: 'system', content: 'alone' }])).toThrow(expect.objectContaining({ code: 'invalid_request' }) as Error);
  });
});
