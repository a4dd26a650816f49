import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createModelRegistry, type ModelRegistry } from '../model-registry.js';
import type { HubFile, HubVariant, ModelInspector } from '../model-types.js';
import { startFakeHub, type FakeHub } from '../test-support/fake-hub.js';
import { createHubClient } from './hub-client.js';
import { createModelDownloader, type ModelDownloader } from './model-downloader.js';
import { createModelPuller, type ModelPuller, type PullProgress } from './model-puller.js';

// A minimal real format for this package's own tests (model-cache cannot depend on the GGUF or
// ONNX adapters, which depend on it): `.bin` files, one variant per file, keyed by the name's
// last `-` part. The adapters' variant rules are tested in their packages, end to end in the app.
const binInspector: ModelInspector = {
  format: 'bin',
  detect: (file: string, stat: Stats) => stat.isFile() && file.endsWith('.bin'),
  idOf: (file) => path.basename(file, '.bin'),
  inspect: async (file) => ({
    task: 'embedding',
    sizeBytes: statSync(file).size,
    details: { architecture: null, parameters: null, context_length: null, quantization: null, embedding_length: null, has_chat_template: null },
  }),
  hubVariants: (files: readonly HubFile[]): HubVariant[] =>
    files
      .filter((file) => file.path.endsWith('.bin'))
      .map((file) => {
        const name = path.posix.basename(file.path);
        return {
          key:
            name
              .replace(/\.bin$/u, '')
              .split('-')
              .pop() ?? name,
          format: 'bin',
          task: null,
          files: [{ ...file, target: name }],
          totalBytes: file.size,
          modelPath: name,
        };
      }),
};

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const big = randomBytes(3 * 1024 * 1024 + 123);
const small = randomBytes(40_000);
const config = Buffer.from('{"model_type":"bin"}\n');

let hub: FakeHub;
let root: string;
let registry: ModelRegistry;
let downloader: ModelDownloader;
let puller: ModelPuller;
let token: string | null;

beforeAll(async () => {
  hub = await startFakeHub();
  await hub.addRepo('acme/tiny', {
    files: [
      { path: 'tiny-Q8.bin', content: big },
      { path: 'tiny-Q4.bin', content: small },
      { path: 'config.json', content: config },
      { path: 'README.md', content: Buffer.from('# tiny\n') },
    ],
  });
  await hub.addRepo('acme/gated', { files: [{ path: 'gated-Q4.bin', content: small }], gated: true, acceptedTokens: ['hf_good'] });
});

afterAll(async () => {
  await hub.close();
});

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'model-puller-'));
  registry = createModelRegistry({ dataDir: root, inspectors: [binInspector] });
  token = null;
  const client = createHubClient({ endpoint: hub.url, token: () => token });
  downloader = createModelDownloader({ client, stagingDir: path.join(registry.modelsDir, '.downloads'), retryDelayMs: 10 });
  puller = createModelPuller({ registry, inspectors: [binInspector], client, downloader, fits: async (variant) => variant.totalBytes < 1024 * 1024 });
  hub.requests.length = 0;
  hub.faults = {};
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const cdnGets = () => hub.requests.filter((request) => request.server === 'cdn');
const stagingFiles = () => (existsSync(downloader.stagingDir) ? readdirSync(downloader.stagingDir) : []);

describe('scan', () => {
  it('lists every variant with its files and size, and marks the default as the first that fits', async () => {
    const scan = await puller.scan('hf.co/acme/tiny');
    expect(scan.repo).toBe('acme/tiny');
    expect(scan.variants.map((variant) => [variant.key, variant.totalBytes, variant.fits, variant.isDefault])).toEqual([
      ['Q8', big.length, false, false],
      ['Q4', small.length, true, true],
    ]);
    expect(scan.variants[0]?.files).toEqual([{ path: 'tiny-Q8.bin', size: big.length, sha256: sha256(big), gitOid: null, target: 'tiny-Q8.bin' }]);
  });

  it('says which repository does not exist', async () => {
    await expect(puller.scan('acme/nothing')).rejects.toMatchObject({
      code: 'model_not_found',
      message: expect.stringContaining('No repository acme/nothing'),
    });
  });
});

describe('pull', () => {
  it('downloads the named variant through the CDN redirect, verifies it, registers it and names it hf.co/...:KEY', async () => {
    const progress: PullProgress[] = [];
    const result = await puller.pull('hf.co/acme/tiny:Q8', { onProgress: (step) => progress.push(step) });
    const file = path.join(registry.modelsDir, 'tiny-Q8.bin');
    expect(readFileSync(file).equals(big)).toBe(true);
    expect(result.model).toMatchObject({ id: 'tiny-Q8', path: file, format: 'bin', sizeBytes: big.length });
    expect(result.alias).toBe('hf.co/acme/tiny:Q8');
    expect(result.downloadedBytes).toBe(big.length);
    expect((await registry.get('hf.co/acme/tiny:Q8')).id).toBe('tiny-Q8');
    expect(progress[0]).toEqual({ status: 'resolving' });
    const downloading = progress.filter((step) => step.status === 'downloading');
    expect(downloading.at(-1)).toMatchObject({ file: 'tiny-Q8.bin', completed: big.length, total: big.length });
    expect(downloading.every((step, index) => index === 0 || (step.completed ?? 0) >= (downloading[index - 1]?.completed ?? 0))).toBe(true);
    expect(progress.at(-1)).toEqual({ status: 'registering' });
    expect(cdnGets()).toEqual([expect.objectContaining({ url: expect.stringMatching(/^\/blobs\/acme\/tiny\/main\/tiny-Q8\.bin\?/u), range: null })]);
    expect(stagingFiles()).toEqual([]);

    // Pulling again finds the file in place and fetches nothing.
    hub.requests.length = 0;
    expect((await puller.pull('hf.co/acme/tiny:Q8')).downloadedBytes).toBe(0);
    expect(cdnGets()).toEqual([]);
  });

  it('takes the default variant when none is named, and says which variants exist when the one named is not there', async () => {
    expect((await puller.pull('acme/tiny')).variant.key).toBe('Q4');
    await expect(puller.pull('acme/tiny:Q2')).rejects.toMatchObject({ code: 'not_found', message: 'acme/tiny has no variant "Q2"; it has: Q8, Q4' });
    await expect(puller.pull('acme/tiny', { file: 'README.md' })).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('sends the token to the Hub and never to the CDN it redirects to', async () => {
    token = 'hf_secret';
    await puller.pull('acme/tiny:Q4');
    const hubRequests = hub.requests.filter((request) => request.server === 'hub');
    expect(hubRequests.length).toBeGreaterThanOrEqual(2);
    expect(hubRequests.every((request) => request.authorization === 'Bearer hf_secret')).toBe(true);
    expect(cdnGets()).toHaveLength(1);
    expect(cdnGets()[0]?.authorization).toBeNull();
  });

  it('says a gated repository needs a token, then which page accepts its licence', async () => {
    await expect(puller.pull('acme/gated')).rejects.toMatchObject({
      code: 'unauthorized',
      message: `acme/gated is a gated model: accept its licence at ${hub.url}/acme/gated, then set a token of that account (POST /v1/hf/token or HF_TOKEN) and pull again`,
    });
    token = 'hf_other';
    await expect(puller.pull('acme/gated')).rejects.toMatchObject({
      code: 'forbidden',
      details: expect.objectContaining({ licence_page: `${hub.url}/acme/gated` }),
      message: `acme/gated is a gated model: accept its licence at ${hub.url}/acme/gated with the account of your token, then pull again`,
    });
    token = 'hf_good';
    expect((await puller.pull('acme/gated')).model.id).toBe('gated-Q4');
  });

  it('refuses corrupt data: the check fails, the partial is deleted and nothing becomes visible', async () => {
    hub.faults = { corrupt: { file: 'tiny-Q8.bin', offset: 1_000_000 } };
    await expect(puller.pull('acme/tiny:Q8')).rejects.toMatchObject({
      code: 'upstream_error',
      message: expect.stringContaining(`acme/tiny/tiny-Q8.bin failed its check: the sha256 of the downloaded data is`),
    });
    expect(existsSync(path.join(registry.modelsDir, 'tiny-Q8.bin'))).toBe(false);
    expect(stagingFiles()).toEqual([]);
    expect((await registry.list()).map((model) => model.id)).toEqual([]);
  });

  it('checks git files by their blob id', async () => {
    const client = createHubClient({ endpoint: hub.url });
    const files = await client.listFiles('acme/tiny', 'main');
    const configFile = files.find((file) => file.path === 'config.json');
    expect(configFile).toEqual({
      path: 'config.json',
      size: config.length,
      sha256: null,
      gitOid: createHash('sha1').update(`blob ${config.length}\0`).update(config).digest('hex'),
    });
    const destination = path.join(root, 'config.json');
    await downloader.download({ repo: 'acme/tiny', revision: 'main', file: configFile as HubFile, destination });
    expect(readFileSync(destination).equals(config)).toBe(true);
    await expect(
      downloader.download({
        repo: 'acme/tiny',
        revision: 'main',
        file: { ...(configFile as HubFile), gitOid: '0'.repeat(40) },
        destination: path.join(root, 'other.json'),
      }),
    ).rejects.toMatchObject({ code: 'upstream_error' });
    expect(existsSync(path.join(root, 'other.json'))).toBe(false);
  });

  it('resumes a dropped connection with a Range request for exactly the missing bytes', async () => {
    hub.faults = { dropAfterBytes: 1_234_567, dropCount: 2 };
    await puller.pull('acme/tiny:Q8');
    expect(readFileSync(path.join(registry.modelsDir, 'tiny-Q8.bin')).equals(big)).toBe(true);
    expect(cdnGets().map((request) => request.range)).toEqual([null, 'bytes=1234567-', 'bytes=2469134-']);
  });

  it('retries a CDN that answers 503', async () => {
    hub.faults = { failCdn: { status: 503, count: 2 } };
    await puller.pull('acme/tiny:Q4');
    expect(cdnGets()).toHaveLength(3);
    expect(readFileSync(path.join(registry.modelsDir, 'tiny-Q4.bin')).equals(small)).toBe(true);
  });

  it('refuses before the first byte when the disk is too small', async () => {
    hub.faults = { declaredSizes: { 'tiny-Q8.bin': 2 ** 52 } };
    await expect(puller.pull('acme/tiny:Q8')).rejects.toMatchObject({
      code: 'insufficient_storage',
      details: expect.objectContaining({ needed_bytes: 2 ** 52 }),
    });
    expect(cdnGets()).toEqual([]);
    expect(stagingFiles()).toEqual([]);
  });

  it('makes one download of three concurrent pulls of the same file', async () => {
    hub.faults = { throttleBytesPerSecond: 12 * 1024 * 1024 };
    const results = await Promise.all([puller.pull('acme/tiny:Q8'), puller.pull('hf.co/acme/tiny:Q8'), puller.pull('acme/tiny', { variant: 'q8' })]);
    expect(results.map((result) => result.model.id)).toEqual(['tiny-Q8', 'tiny-Q8', 'tiny-Q8']);
    expect(cdnGets()).toHaveLength(1);
    expect(readFileSync(path.join(registry.modelsDir, 'tiny-Q8.bin')).equals(big)).toBe(true);
  });

  it('leaves a resumable partial when cancelled, lists it, and the next pull asks only for the rest', async () => {
    hub.faults = { throttleBytesPerSecond: 4 * 1024 * 1024 };
    const controller = new AbortController();
    const pulling = puller.pull('acme/tiny:Q8', {
      signal: controller.signal,
      onProgress: (step) => {
        if ((step.completed ?? 0) > 512 * 1024) controller.abort();
      },
    });
    await expect(pulling).rejects.toMatchObject({ code: 'cancelled' });
    // The transfer stops once no caller is left (asynchronously): wait until it is listed as not active.
    let partial = (await downloader.partials())[0];
    while (partial?.active !== false) partial = (await downloader.partials())[0];
    expect(partial).toMatchObject({ repo: 'acme/tiny', revision: 'main', file: 'tiny-Q8.bin', total: big.length, active: false });
    const kept = partial.completed;
    expect(kept).toBeGreaterThan(512 * 1024);
    expect(kept).toBeLessThan(big.length);
    hub.faults = {};
    hub.requests.length = 0;
    const result = await puller.pull('acme/tiny:Q8');
    expect(result.downloadedBytes).toBe(big.length - kept);
    expect(cdnGets().map((request) => request.range)).toEqual([`bytes=${kept}-`]);
    expect(readFileSync(path.join(registry.modelsDir, 'tiny-Q8.bin')).equals(big)).toBe(true);
    expect(await downloader.partials()).toEqual([]);
  });

  it('ends a transfer slower than its floor over a window (a dripping body), retries it, and keeps the partial', async () => {
    hub.faults = { throttleBytesPerSecond: 64 * 1024 };
    const client = createHubClient({ endpoint: hub.url });
    const slowFloor = createModelDownloader({
      client,
      stagingDir: downloader.stagingDir,
      retries: 1,
      retryDelayMs: 10,
      minBytesPerSecond: 1024 * 1024,
      speedWindowMs: 400,
    });
    const slowPuller = createModelPuller({ registry, inspectors: [binInspector], client, downloader: slowFloor, fits: async () => true });
    await expect(slowPuller.pull('acme/tiny:Q8')).rejects.toMatchObject({
      code: 'timeout',
      message: expect.stringMatching(
        /^acme\/tiny\/tiny-Q8\.bin arrived at \d+ bytes\/s over 0\.4 s, under the 1048576 bytes\/s floor; pulling again resumes it$/u,
      ),
    });
    expect(cdnGets()).toHaveLength(2);
    const [partial] = await slowFloor.partials();
    expect(partial).toMatchObject({ file: 'tiny-Q8.bin', active: false });
    expect(partial?.completed).toBeGreaterThan(0);
  });

  it('discards a partial on request', async () => {
    hub.faults = { dropAfterBytes: 100_000, dropCount: 10 };
    const client = createHubClient({ endpoint: hub.url });
    const noRetry = createModelDownloader({ client, stagingDir: downloader.stagingDir, retries: 0 });
    const file = (await client.listFiles('acme/tiny', 'main')).find((entry) => entry.path === 'tiny-Q8.bin') as HubFile;
    await expect(noRetry.download({ repo: 'acme/tiny', revision: 'main', file, destination: path.join(root, 'x.bin') })).rejects.toMatchObject({
      code: 'upstream_error',
    });
    expect((await noRetry.partials()).map((entry) => entry.completed)).toEqual([100_000]);
    expect(await noRetry.discard({ repo: 'acme/tiny', revision: 'main', file: 'tiny-Q8.bin' })).toBe(true);
    expect(stagingFiles().filter((name) => !name.endsWith('.lock'))).toEqual([]);
  });
});
