import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHubClient, isPrivateHost, mayAuthorize, maxListingPages, redirectRefusal } from './hub-client.js';

/** A hostile Hub over real HTTP: each test says how it answers. */
let answer: (request: IncomingMessage, response: ServerResponse) => void = (_request, response) => response.end('[]');
let requests: string[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    requests.push(request.url ?? '');
    answer(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  requests = [];
});

const refusalOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => 'accepted',
    (error: unknown) => [(error as { code?: string }).code, (error as Error).message],
  );

describe('redirect and token policy', () => {
  it('never follows https down to http, nor into a private network unless the endpoint is in one', () => {
    const hub = new URL('https://huggingface.co');
    const mirror = new URL('http://192.168.1.20:8080');
    const cases = {
      cdn: redirectRefusal(hub, new URL('https://huggingface.co/x'), new URL('https://cdn-lfs.hf.co/blob')),
      downgrade: redirectRefusal(hub, new URL('https://huggingface.co/x'), new URL('http://cdn-lfs.hf.co/blob')),
      loopback: redirectRefusal(hub, new URL('https://huggingface.co/x'), new URL('https://127.0.0.1:631/admin')),
      metadata: redirectRefusal(hub, new URL('https://huggingface.co/x'), new URL('http://169.254.169.254/latest/meta-data')),
      router: redirectRefusal(hub, new URL('https://cdn.example/x'), new URL('https://192.168.1.1/')),
      ipv6Local: redirectRefusal(hub, new URL('https://huggingface.co/x'), new URL('https://[fd00::1]/')),
      localName: redirectRefusal(hub, new URL('https://huggingface.co/x'), new URL('https://printer.local/')),
      scheme: redirectRefusal(hub, new URL('https://huggingface.co/x'), new URL('file:///etc/passwd')),
      lanMirror: redirectRefusal(mirror, new URL('http://192.168.1.20:8080/x'), new URL('http://192.168.1.21/blob')),
    };
    expect(cases).toEqual({
      cdn: null,
      downgrade: 'plain http (cdn-lfs.hf.co) from https',
      loopback: 'a local or private address (127.0.0.1:631)',
      metadata: 'plain http (169.254.169.254) from https',
      router: 'a local or private address (192.168.1.1)',
      ipv6Local: 'a local or private address ([fd00::1])',
      localName: 'a local or private address (printer.local)',
      scheme: 'an unsupported URL scheme (file:)',
      lanMirror: null,
    });
    expect(['8.8.8.8', '172.32.0.1', '100.128.0.1', 'huggingface.co', '2606:4700::1'].filter(isPrivateHost)).toEqual([]);
    expect(['10.0.0.1', '172.16.0.1', '100.64.0.1', '0.0.0.0', '::1', '[::ffff:127.0.0.1]', 'fe80::1', 'x.localhost'].every(isPrivateHost)).toBe(true);
  });

  it('sends the token to the endpoint over https, or in clear on loopback only', () => {
    expect([
      mayAuthorize('https://huggingface.co', new URL('https://huggingface.co/api/models/x')),
      mayAuthorize('http://127.0.0.1:8080', new URL('http://127.0.0.1:8080/api')),
      mayAuthorize('http://mirror.lan', new URL('http://mirror.lan/api')),
      mayAuthorize('https://huggingface.co', new URL('https://cdn-lfs.hf.co/blob')),
    ]).toEqual([true, true, false, false]);
  });
});

describe('listing a hostile Hub', () => {
  it(`stops a listing that pages forever after ${maxListingPages} pages`, async () => {
    answer = (request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', link: `<${base}${request.url}&p=${requests.length}>; rel="next"` });
      response.end(JSON.stringify([{ type: 'file', path: `f${requests.length}.txt`, size: 1, oid: 'a'.repeat(40) }]));
    };
    expect(await refusalOf(createHubClient({ endpoint: base }).listFiles('evil/pages', 'main'))).toEqual([
      'upstream_error',
      `The Hub's listing of evil/pages runs past ${maxListingPages} pages; refused`,
    ]);
    expect(requests).toHaveLength(maxListingPages);
  });

  it('stops reading a listing page past 32 MiB instead of buffering it', async () => {
    let sent = 0;
    let closed = false;
    answer = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const pump = (): void => {
        while (!closed && sent < 200 * 1024 * 1024) {
          sent += chunk.length;
          if (!response.write(chunk)) {
            response.once('drain', pump);
            return;
          }
        }
        response.end();
      };
      response.on('close', () => {
        closed = true;
      });
      response.write('[');
      pump();
    };
    expect(await refusalOf(createHubClient({ endpoint: base }).listFiles('evil/endless', 'main'))).toEqual([
      'upstream_error',
      `A page of the Hub's listing of evil/endless is larger than ${32 * 1024 * 1024} bytes; refused`,
    ]);
    // Sent before the client hung up: what fit in the socket buffers, far from the 200 MiB offered.
    expect(sent).toBeLessThan(48 * 1024 * 1024);
  });

  it('refuses a listed file with no hash to check its download against', async () => {
    answer = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify([{ type: 'file', path: 'model.gguf', size: 10 }]));
    };
    expect(await refusalOf(createHubClient({ endpoint: base }).listFiles('evil/no-hash', 'main'))).toEqual([
      'upstream_error',
      'The Hub\'s listing of evil/no-hash gives no hash for "model.gguf", so its download could not be checked; refused',
    ]);
  });
});
