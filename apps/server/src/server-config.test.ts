import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultDataDir } from './data-dir.js';
import { defaultServerConfig, parseServeArguments } from './server-config.js';

describe('parseServeArguments', () => {
  it('uses loopback, port 8080 and http mode by default', () => {
    const config = parseServeArguments([], {});
    expect(config).toEqual({ ...defaultServerConfig(), dataDir: defaultDataDir() });
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8080);
    expect(config.swaggerUi).toBe('off');
    expect(parseServeArguments(['--swagger-ui', 'on'], {}).swaggerUi).toBe('on');
    expect(parseServeArguments([], { TABAGENT_SWAGGER_UI: 'on' }).swaggerUi).toBe('on');
  });

  it('reads TABAGENT_* variables and lets flags win', () => {
    const config = parseServeArguments(['--port', '9000', '--allowed-origin=chrome-extension://abc'], {
      TABAGENT_PORT: '7000',
      TABAGENT_DATA_DIR: '/tmp/ta',
      TABAGENT_ALLOWED_ORIGINS: 'chrome-extension://x, chrome-extension://y',
      TABAGENT_API_KEY: 'k',
    });
    expect(config.port).toBe(9000);
    expect(config.dataDir).toBe('/tmp/ta');
    expect(config.allowedOrigins).toEqual(['chrome-extension://abc']);
    expect(config.apiKey).toBe('k');
  });

  it('warns about secrets on the command line, reads them from files instead, and refuses a token a header cannot carry', () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'config-'));
    try {
      const tokenFile = path.join(folder, 'hf-token');
      writeFileSync(tokenFile, 'hf_FromAFile123\n');
      expect(parseServeArguments(['--api-key', 'k', '--hf-token', 'hf_OnArgv123'], {}).warnings).toEqual([
        '--api-key on the command line can be read by every account on this machine (ps, /proc/<pid>/cmdline); use --api-key-file FILE instead',
        '--hf-token on the command line can be read by every account on this machine (ps, /proc/<pid>/cmdline); use --hf-token-file FILE instead',
      ]);
      expect(parseServeArguments([], { TABAGENT_API_KEY: 'k', HF_TOKEN: 'hf_FromEnv123' }).warnings).toEqual([]);
      expect(parseServeArguments(['--hf-token-file', tokenFile], {})).toMatchObject({ hfToken: 'hf_FromAFile123', warnings: [] });
      expect(parseServeArguments([], { HF_TOKEN_PATH: tokenFile }).hfToken).toBe('hf_FromAFile123');
      const refusal = (argv: string[], env: NodeJS.ProcessEnv = {}): string => {
        try {
          parseServeArguments(argv, env);
          return 'accepted';
        } catch (error) {
          return (error as Error).message;
        }
      };
      expect({
        newline: refusal([], { HF_TOKEN: 'hf_abc\ndef' }),
        space: refusal(['--hf-token', 'hf abc']),
        missingFile: refusal(['--hf-token-file', path.join(folder, 'nope')]).replace(folder, '<folder>'),
        auth: refusal(['--auth', 'everyone']),
      }).toEqual({
        newline: '--hf-token (HF_TOKEN): a Hugging Face token is printable ASCII without spaces or control characters',
        space: '--hf-token (HF_TOKEN): a Hugging Face token is printable ASCII without spaces or control characters',
        missingFile: expect.stringMatching(/^--hf-token-file <folder>\/nope cannot be read: ENOENT/u),
        auth: '--auth must be one of none, owner, got "everyone"',
      });
      expect(parseServeArguments(['--auth', 'owner'], {}).auth).toBe('owner');
      expect(parseServeArguments([], { TABAGENT_AUTH: 'owner' }).auth).toBe('owner');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('collects repeated origins from flags', () => {
    expect(parseServeArguments(['--allowed-origin', 'chrome-extension://a', '--allowed-origin', 'moz-extension://b'], {}).allowedOrigins).toEqual([
      'chrome-extension://a',
      'moz-extension://b',
    ]);
  });

  it('refuses an allowed origin that is not exactly scheme://host[:port]: null, wildcards, paths, credentials', () => {
    const refusals = Object.fromEntries(
      ['null', '*', 'http://*.example.com', 'http://localhost:5173/app', 'http://user:pw@localhost', 'http://localhost?x=1', 'localhost:5173', 'not a url'].map(
        (origin) => {
          try {
            parseServeArguments(['--allowed-origin', origin], {});
            return [origin, 'accepted'];
          } catch (error) {
            return [origin, (error as Error).message.replace(/^--allowed-origin "[^"]*" is not an origin: /u, '').replace(/; give one as .*$/u, '')];
          }
        },
      ),
    );
    expect(refusals).toEqual({
      null: '"null" is what sandboxed frames and file:// pages send',
      '*': 'wildcards are not accepted',
      'http://*.example.com': 'wildcards are not accepted',
      'http://localhost:5173/app': 'it has more than a scheme, a host and a port',
      'http://user:pw@localhost': 'it has more than a scheme, a host and a port',
      'http://localhost?x=1': 'it has more than a scheme, a host and a port',
      'localhost:5173': 'it has more than a scheme, a host and a port',
      'not a url': 'it does not parse as a URL',
    });
    expect(parseServeArguments(['--allowed-origin', 'http://localhost:5173,https://app.example/'], {}).allowedOrigins).toEqual([
      'http://localhost:5173',
      'https://app.example/',
    ]);
  });

  it('collects allowed hosts from TABAGENT_ALLOWED_HOSTS, or from repeated flags', () => {
    expect(parseServeArguments([], { TABAGENT_ALLOWED_HOSTS: 'nas.lan, *.home.arpa' }).allowedHosts).toEqual(['nas.lan', '*.home.arpa']);
    expect(parseServeArguments(['--allowed-host', 'a.lan', '--allowed-host=b.lan'], { TABAGENT_ALLOWED_HOSTS: 'x.lan' }).allowedHosts).toEqual([
      'a.lan',
      'b.lan',
    ]);
  });

  it('collects upstreams and their key files from flags or TABAGENT_UPSTREAMS, each checked as it is read', () => {
    const fromEnv = parseServeArguments([], {
      TABAGENT_UPSTREAMS: 'gpu=http://gpu-box:8000/v1/, gpu=http://gpu-2:8000/v1',
      TABAGENT_UPSTREAM_KEY_FILES: 'gpu=/k',
    });
    expect([fromEnv.upstreams, fromEnv.upstreamKeyFiles]).toEqual([['gpu=http://gpu-box:8000/v1', 'gpu=http://gpu-2:8000/v1'], ['gpu=/k']]);
    expect(parseServeArguments(['--upstream', 'team=https://team.example/v1'], { TABAGENT_UPSTREAMS: 'gpu=http://g/v1' }).upstreams).toEqual([
      'team=https://team.example/v1',
    ]);
    expect(() => parseServeArguments(['--upstream', 'gpu=ftp://g/v1'], {})).toThrow('only http and https are allowed');
    expect(() => parseServeArguments(['--upstream-key-file', 'gpu'], {})).toThrow('--upstream-key-file takes NAME=PATH, got "gpu"');
  });

  it('accepts what Chrome and Firefox pass to a native host', () => {
    const chrome = parseServeArguments(['--mode', 'native', 'chrome-extension://abcdefghijklmnop/', '--parent-window=1234'], {});
    expect(chrome.mode).toBe('native');
    expect(chrome.nativeCallerOrigin).toBe('chrome-extension://abcdefghijklmnop/');
    const firefox = parseServeArguments(['--mode', 'native', '/home/u/.mozilla/native-messaging-hosts/com.tabagent.host.json', 'tabagent@example.org'], {});
    expect(firefox.mode).toBe('native');
  });

  it('rejects bad values and unknown options with clear messages', () => {
    expect(() => parseServeArguments(['--port', 'eighty'], {})).toThrow('--port must be an integer from 0 to 65535, got "eighty"');
    expect(() => parseServeArguments(['--mode', 'grpc'], {})).toThrow('--mode must be one of http, native, all, mcp, got "grpc"');
    expect(() => parseServeArguments(['--colour'], {})).toThrow('Unknown option: --colour');
    expect(() => parseServeArguments(['--port'], {})).toThrow('--port needs a value');
    expect(() => parseServeArguments(['--memory-duty-cycle', '0'], {})).toThrow('--memory-duty-cycle must be a number from 0.05 to 1, got "0"');
    expect(() => parseServeArguments(['--memory-duty-cycle', 'half'], {})).toThrow('--memory-duty-cycle must be a number from 0.05 to 1, got "half"');
  });

  it("reads the memory weaver's duty cycle from the flag or TABAGENT_MEMORY_DUTY_CYCLE (default 1)", () => {
    expect(parseServeArguments([], {}).memoryDutyCycle).toBe(1);
    expect(parseServeArguments([], { TABAGENT_MEMORY_DUTY_CYCLE: '0.25' }).memoryDutyCycle).toBe(0.25);
    expect(parseServeArguments(['--memory-duty-cycle=0.5'], { TABAGENT_MEMORY_DUTY_CYCLE: '0.25' }).memoryDutyCycle).toBe(0.5);
  });
});

describe('defaultDataDir', () => {
  it("follows each platform's convention", () => {
    expect(defaultDataDir('linux', { XDG_DATA_HOME: '/x' }, '/home/u')).toBe('/x/tabagent');
    expect(defaultDataDir('linux', {}, '/home/u')).toBe('/home/u/.local/share/tabagent');
    expect(defaultDataDir('darwin', {}, '/Users/u')).toBe('/Users/u/Library/Application Support/TabAgent');
    expect(defaultDataDir('win32', { APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, 'C:\\Users\\u')).toContain('TabAgent');
  });
});
