import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A file of a fake repository: bytes in memory, or a file on disk (for large benchmark files). */
export interface FakeHubFile {
  path: string;
  content?: Buffer;
  sourceFile?: string;
  /** Stored in LFS (listed with a sha256, served through the CDN); default for .gguf, .onnx and other binaries. */
  lfs?: boolean;
}

/** A fake repository. */
export interface FakeHubRepo {
  files: FakeHubFile[];
  /** Gated: without a token the Hub answers 401, with a token not in `acceptedTokens` 403 (X-Error-Code: GatedRepo). */
  gated?: boolean;
  acceptedTokens?: string[];
}

/** One request either server received. */
export interface FakeHubRequest {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range: string | null;
  authorization: string | null;
}

/** Switches that make the fake Hub misbehave the way networks and mirrors do. */
export interface FakeHubFaults {
  /** Close the CDN connection after this many bytes of a response, for the next `dropCount` responses (default 1). */
  dropAfterBytes?: number;
  dropCount?: number;
  /** Limit CDN responses to this many bytes per second. */
  throttleBytesPerSecond?: number;
  /** Serve this byte of this file flipped (the listing keeps the true sha256). */
  corrupt?: { file: string; offset: number };
  /** List these sizes instead of the real ones (e.g. a petabyte, for the disk-space check). */
  declaredSizes?: Record<string, number>;
  /** Answer the next `count` CDN requests with this status. */
  failCdn?: { status: number; count: number };
}

/** A Hugging Face Hub stand-in over real HTTP: the tree API, `resolve` redirects to a second "CDN" server, byte ranges. */
export interface FakeHub {
  /** The Hub's base URL, for `HF_ENDPOINT`. */
  readonly url: string;
  readonly cdnUrl: string;
  readonly requests: FakeHubRequest[];
  faults: FakeHubFaults;
  addRepo(repo: string, definition: FakeHubRepo): Promise<void>;
  /** Size and sha256 of a file as listed. */
  describe(repo: string, file: string): { size: number; sha256: string };
  close(): Promise<void>;
}

const binaryPattern = /\.(?:gguf|onnx|onnx_data|bin|safetensors|data)$/u;

interface StoredFile {
  path: string;
  size: number;
  lfs: boolean;
  sha256: string;
  gitOid: string;
  read(start: number, end: number): NodeJS.ReadableStream | Buffer;
}

async function hashFile(file: FakeHubFile): Promise<{ size: number; sha256: string; gitOid: string }> {
  if (file.content) {
    const size = file.content.length;
    return {
      size,
      sha256: createHash('sha256').update(file.content).digest('hex'),
      gitOid: createHash('sha1').update(`blob ${size}\0`).update(file.content).digest('hex'),
    };
  }
  if (!file.sourceFile) throw new Error(`${file.path}: give content or sourceFile`);
  const sha256 = createHash('sha256');
  const gitSha = createHash('sha1');
  const size = statSync(file.sourceFile).size;
  gitSha.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file.sourceFile, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    sha256.update(chunk);
    gitSha.update(chunk);
  }
  return { size, sha256: sha256.digest('hex'), gitOid: gitSha.digest('hex') };
}

/** Starts the fake Hub and its CDN on two loopback ports. */
export async function startFakeHub(): Promise<FakeHub> {
  const repos = new Map<string, { definition: FakeHubRepo; files: Map<string, StoredFile> }>();
  const requests: FakeHubRequest[] = [];
  const state = { faults: {} as FakeHubFaults };

  const log = (server: 'hub' | 'cdn', request: IncomingMessage): void => {
    requests.push({
      server,
      method: request.method ?? 'GET',
      url: request.url ?? '',
      range: typeof request.headers.range === 'string' ? request.headers.range : null,
      authorization: typeof request.headers.authorization === 'string' ? request.headers.authorization : null,
    });
  };

  const fail = (response: ServerResponse, status: number, errorCode: string | null, message: string): void => {
    response.writeHead(status, { 'content-type': 'application/json', ...(errorCode ? { 'x-error-code': errorCode } : {}), 'x-error-message': message });
    response.end(JSON.stringify({ error: message }));
  };

  /** Access rules of a repository; returns false after answering when refused. */
  const allowed = (request: IncomingMessage, response: ServerResponse, repo: string): boolean => {
    const entry = repos.get(repo);
    if (!entry) {
      fail(response, 404, 'RepoNotFound', 'Repository not found');
      return false;
    }
    if (entry.definition.gated === true) {
      const token = /^Bearer (.+)$/u.exec(request.headers.authorization ?? '')?.[1];
      if (token === undefined) {
        fail(response, 401, 'GatedRepo', `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
        return false;
      }
      if (!(entry.definition.acceptedTokens ?? []).includes(token)) {
        fail(
          response,
          403,
          'GatedRepo',
          `Access to model ${repo} is restricted and you are not in the authorized list. Visit https://huggingface.co/${repo} to ask for access.`,
        );
        return false;
      }
    }
    return true;
  };

  /** Sends [start, size) of a file with the faults applied. */
  const sendBytes = async (request: IncomingMessage, response: ServerResponse, file: StoredFile, applyFaults: boolean): Promise<void> => {
    const faults = state.faults;
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/u.exec(request.headers.range ?? '');
    let end = file.size - 1;
    if (range) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= file.size) {
        response.writeHead(416, { 'content-range': `bytes */${file.size}` });
        response.end();
        return;
      }
      status = 206;
    }
    response.writeHead(status, {
      'content-type': 'application/octet-stream',
      'content-length': String(end - start + 1),
      'accept-ranges': 'bytes',
      etag: `"${file.sha256}"`,
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${file.size}` } : {}),
    });
    let dropAt: number | null = null;
    if (applyFaults && faults.dropAfterBytes !== undefined && (faults.dropCount ?? 1) > 0) {
      dropAt = faults.dropAfterBytes;
      faults.dropCount = (faults.dropCount ?? 1) - 1;
    }
    const source = file.read(start, end);
    const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(source) ? [source] : (source as AsyncIterable<Buffer>);
    let sent = 0;
    let position = start;
    const started = performance.now();
    for await (const whole of chunks) {
      for (let offset = 0; offset < whole.length; offset += 64 * 1024) {
        let chunk = whole.subarray(offset, Math.min(whole.length, offset + 64 * 1024));
        if (applyFaults && faults.corrupt?.file === file.path && faults.corrupt.offset >= position && faults.corrupt.offset < position + chunk.length) {
          chunk = Buffer.from(chunk);
          const at = faults.corrupt.offset - position;
          chunk[at] = (chunk[at] ?? 0) ^ 0xff;
        }
        if (dropAt !== null && sent + chunk.length >= dropAt) {
          response.write(chunk.subarray(0, Math.max(0, dropAt - sent)));
          await new Promise((resolve) => setTimeout(resolve, 20));
          response.socket?.destroy();
          return;
        }
        if (!response.write(chunk)) await new Promise((resolve) => response.once('drain', resolve));
        sent += chunk.length;
        position += chunk.length;
        const limit = applyFaults ? faults.throttleBytesPerSecond : undefined;
        if (limit !== undefined) {
          const due = (sent / limit) * 1000 - (performance.now() - started);
          if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
        }
        if (response.destroyed) return;
      }
    }
    response.end();
  };

  const cdn = http.createServer((request, response) => {
    log('cdn', request);
    const match = /^\/blobs\/([^/]+\/[^/]+)\/([^/]+)\/(.+?)(?:\?.*)?$/u.exec(request.url ?? '');
    const file = match ? repos.get(decodeURIComponent(match[1] as string))?.files.get(decodeURIComponent(match[3] as string)) : undefined;
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    const failing = state.faults.failCdn;
    if (failing && failing.count > 0) {
      failing.count--;
      response.writeHead(failing.status).end();
      return;
    }
    sendBytes(request, response, file, true).catch(() => response.destroy());
  });

  const hub = http.createServer((request, response) => {
    log('hub', request);
    const url = new URL(request.url ?? '/', 'http://hub');
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/u.exec(url.pathname);
    if (tree) {
      const repo = decodeURIComponent(tree[1] as string);
      if (!allowed(request, response, repo)) return;
      const entry = repos.get(repo);
      const declared = state.faults.declaredSizes ?? {};
      const listing = [...(entry?.files.values() ?? [])].map((file) => {
        const size = declared[file.path] ?? file.size;
        return file.lfs
          ? { type: 'file', oid: createHash('sha1').update(file.path).digest('hex'), size, path: file.path, lfs: { oid: file.sha256, size, pointerSize: 134 } }
          : { type: 'file', oid: file.gitOid, size, path: file.path };
      });
      const folders = [...new Set(listing.flatMap((file) => (file.path.includes('/') ? [file.path.slice(0, file.path.lastIndexOf('/'))] : [])))];
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify([...folders.map((folder) => ({ type: 'directory', oid: '0', size: 0, path: folder })), ...listing]));
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/u.exec(url.pathname);
    if (resolve) {
      const repo = decodeURIComponent(resolve[1] as string);
      if (!allowed(request, response, repo)) return;
      const filePath = decodeURIComponent(resolve[3] as string);
      const file = repos.get(repo)?.files.get(filePath);
      if (!file) {
        fail(response, 404, 'EntryNotFound', `${filePath} does not exist on "${resolve[2] as string}"`);
        return;
      }
      if (!file.lfs) {
        sendBytes(request, response, file, false).catch(() => response.destroy());
        return;
      }
      response.writeHead(302, { location: `${cdnUrl}/blobs/${repo}/${resolve[2] as string}/${filePath}?X-Amz-Signature=fake` });
      response.end();
      return;
    }
    fail(response, 404, null, 'Not found');
  });

  const listen = (server: http.Server): Promise<string> =>
    new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
  const [url, cdnUrl] = await Promise.all([listen(hub), listen(cdn)]);

  return {
    url,
    cdnUrl,
    requests,
    get faults() {
      return state.faults;
    },
    set faults(value) {
      state.faults = value;
    },
    async addRepo(repo, definition) {
      const files = new Map<string, StoredFile>();
      for (const file of definition.files) {
        const hashes = await hashFile(file);
        const content = file.content;
        const source = file.sourceFile;
        files.set(file.path, {
          path: file.path,
          size: hashes.size,
          lfs: file.lfs ?? binaryPattern.test(file.path),
          sha256: hashes.sha256,
          gitOid: hashes.gitOid,
          read: (start, end) => (content ? content.subarray(start, end + 1) : createReadStream(source as string, { start, end, highWaterMark: 256 * 1024 })),
        });
      }
      repos.set(repo, { definition, files });
    },
    describe(repo, file) {
      const stored = repos.get(repo)?.files.get(file);
      if (!stored) throw new Error(`No ${repo}/${file}`);
      return { size: stored.size, sha256: stored.sha256 };
    },
    async close() {
      for (const server of [hub, cdn]) server.closeAllConnections();
      await Promise.all([hub, cdn].map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}
