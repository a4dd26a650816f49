import { hubAlias, parseHubReference } from './hub-reference.js';

describe('parseHubReference', () => {
  it.each([
    ['hf.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', { repo: 'bartowski/Qwen2.5-0.5B-Instruct-GGUF', revision: 'main', variant: 'Q4_K_M', file: null }],
    ['huggingface.co/owner/repo', { repo: 'owner/repo', revision: 'main', variant: null, file: null }],
    ['https://huggingface.co/owner/repo/', { repo: 'owner/repo', revision: 'main', variant: null, file: null }],
    ['owner/repo:latest', { repo: 'owner/repo', revision: 'main', variant: null, file: null }],
    ['owner/repo@v1.0:q4f16', { repo: 'owner/repo', revision: 'v1.0', variant: 'q4f16', file: null }],
    ['owner/repo:model-Q8_0.gguf', { repo: 'owner/repo', revision: 'main', variant: null, file: 'model-Q8_0.gguf' }],
  ])('reads %s', (input, expected) => {
    expect(parseHubReference(input)).toEqual(expected);
  });

  it('lets explicit fields win over the reference', () => {
    expect(parseHubReference('owner/repo:Q4_K_M', { file: 'sub/x.gguf', revision: 'abc123' })).toEqual({
      repo: 'owner/repo',
      revision: 'abc123',
      variant: 'Q4_K_M',
      file: 'sub/x.gguf',
    });
  });

  it.each(['repo-without-owner', 'a/b/c', '../etc/passwd', 'owner/repo@../x'])('refuses %s', (input) => {
    expect(() => parseHubReference(input)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it('refuses a file path that leaves the repository', () => {
    expect(() => parseHubReference('owner/repo', { file: '../../secret' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it('names pulled models as Ollama does', () => {
    expect(hubAlias('owner/repo', 'Q4_K_M')).toBe('hf.co/owner/repo:Q4_K_M');
  });
});
