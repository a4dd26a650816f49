import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TabAgentError } from '@tabagent/values';
import { readJsonBody } from './request-body-reader.js';
import { rawRequest } from './test-support/raw-request.js';

const mebibyte = 1024 * 1024;
const statusOfCode: Record<string, number> = { invalid_request: 400, payload_too_large: 413, unsupported_media_type: 415 };

/** What the test server answered: the parsed body, or the error's class and message. */
interface Answer {
  status: number;
  value?: unknown;
  error?: string;
  message?: string;
}

function zstd(input: Buffer): Buffer {
  return execFileSync('zstd', ['-q', '-c'], { input });
}

/** A zstd frame header (no checksum, no content size) with the given window descriptor byte. */
function zstdFrameHeader(windowDescriptor: number): Buffer {
  return Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, windowDescriptor]);
}

/** A raw zstd block holding `content`. */
function zstdRawBlock(content: Buffer, last: boolean): Buffer {
  const value = (content.length << 3) | (last ? 1 : 0);
  return Buffer.concat([Buffer.from([value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff]), content]);
}

describe('readJsonBody with Content-Encoding', () => {
  let server: Server;
  let port: number;
  const json = { model: 'm', input: [{ role: 'user', content: 'héllo' }], n: 3 };
  const jsonBytes = Buffer.from(JSON.stringify(json));

  beforeAll(async () => {
    // Answers the parsed body, or the error readJsonBody rejected with; `?limit=` sets the limit (1 MiB).
    server = createServer((request, response) => {
      const limit = Number(new URL(request.url ?? '/', 'http://localhost').searchParams.get('limit') ?? mebibyte);
      const answer = (status: number, body: unknown): void => {
        response.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
        response.end(JSON.stringify(body));
      };
      readJsonBody(request, limit, { requireJsonContentType: false }).then(
        (value) => answer(200, { value }),
        (error: unknown) => {
          if (!TabAgentError.isInstance(error)) answer(500, { error: String(error) });
          else answer(statusOfCode[error.code] ?? 500, { error: error.name, message: error.message });
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function post(body: Buffer | Buffer[], headers: Record<string, string | number> = {}, limit = mebibyte): Promise<Answer> {
    const response = await rawRequest({ port, method: 'POST', path: `/?limit=${limit}`, headers: { 'content-type': 'application/json', ...headers }, body });
    return { status: response.status, ...(JSON.parse(response.body) as Omit<Answer, 'status'>) };
  }

  it('parses an uncompressed body as before, with no Content-Encoding or identity', async () => {
    expect(await post(jsonBytes)).toEqual({ status: 200, value: json });
    expect(await post(jsonBytes, { 'content-encoding': 'identity' })).toEqual({ status: 200, value: json });
    expect(await post([jsonBytes.subarray(0, 5), jsonBytes.subarray(5)])).toEqual({ status: 200, value: json });
  });

  it('decodes gzip, x-gzip, deflate, br and zstd bodies', async () => {
    const encoded: Array<[string, Buffer]> = [
      ['gzip', gzipSync(jsonBytes)],
      ['x-gzip', gzipSync(jsonBytes)],
      ['deflate', deflateSync(jsonBytes)],
      ['br', brotliCompressSync(jsonBytes)],
      ['zstd', zstd(jsonBytes)],
    ];
    for (const [coding, body] of encoded) {
      expect({ coding, answer: await post(body, { 'content-encoding': coding }) }).toEqual({ coding, answer: { status: 200, value: json } });
    }
  });

  it('decodes a body sent in small chunked pieces', async () => {
    for (const [coding, body] of [
      ['gzip', gzipSync(jsonBytes)],
      ['zstd', zstd(jsonBytes)],
    ] as const) {
      const pieces = Array.from({ length: body.length }, (_, index) => body.subarray(index, index + 1));
      expect({ coding, answer: await post(pieces, { 'content-encoding': coding }) }).toEqual({ coding, answer: { status: 200, value: json } });
    }
  });

  it('decodes a list of codings, the last applied first', async () => {
    // `gzip, br`: gzip was applied first, then br.
    expect(await post(brotliCompressSync(gzipSync(jsonBytes)), { 'content-encoding': 'gzip, br' })).toEqual({ status: 200, value: json });
    expect(await post(gzipSync(zstd(jsonBytes)), { 'content-encoding': 'zstd,identity , gzip' })).toEqual({ status: 200, value: json });
  });

  it('accepts codings in any letter case', async () => {
    expect(await post(gzipSync(jsonBytes), { 'content-encoding': 'GZIP' })).toEqual({ status: 200, value: json });
    expect(await post(zstd(jsonBytes), { 'content-encoding': 'Zstd' })).toEqual({ status: 200, value: json });
    expect(await post(brotliCompressSync(deflateSync(jsonBytes)), { 'content-encoding': 'Deflate, BR' })).toEqual({ status: 200, value: json });
  });

  it('refuses an unknown coding with 415 naming it', async () => {
    expect(await post(jsonBytes, { 'content-encoding': 'compress' })).toEqual({
      status: 415,
      error: 'UnsupportedMediaTypeError',
      message: 'Unsupported Content-Encoding "compress"; this server decodes gzip, deflate, br and zstd',
    });
    expect(await post(gzipSync(jsonBytes), { 'content-encoding': 'gzip, lz4' })).toMatchObject({ status: 415, error: 'UnsupportedMediaTypeError' });
  });

  it('refuses corrupt or truncated compressed data with 400', async () => {
    const corrupt = gzipSync(jsonBytes);
    corrupt.fill(0xff, 10, 20);
    const answer = await post(corrupt, { 'content-encoding': 'gzip' });
    expect(answer).toMatchObject({ status: 400, error: 'InvalidRequestError' });
    expect(answer.message).toMatch(/^The request body could not be decompressed \(gzip\): /);
    // Plain JSON labelled gzip is not gzip.
    expect(await post(jsonBytes, { 'content-encoding': 'gzip' })).toMatchObject({ status: 400, error: 'InvalidRequestError' });
    const truncated = zstd(jsonBytes);
    expect(await post(truncated.subarray(0, truncated.length - 3), { 'content-encoding': 'zstd' })).toEqual({
      status: 400,
      error: 'InvalidRequestError',
      message: 'The request body could not be decompressed (zstd): unexpected end of zstd data',
    });
  });

  it('counts the compressed bytes against the limit', async () => {
    const incompressible = gzipSync(Buffer.from(JSON.stringify({ noise: randomBytes(96 * 1024).toString('base64') })));
    expect(incompressible.length).toBeGreaterThan(64 * 1024);
    expect(await post(incompressible, { 'content-encoding': 'gzip' }, 64 * 1024)).toEqual({
      status: 413,
      error: 'PayloadTooLargeError',
      message: `The request body exceeds the limit of ${64 * 1024} bytes`,
    });
  });

  it('caps the decompressed size at the limit, and accepts a body just within it', async () => {
    const text = Buffer.from(JSON.stringify({ text: 'a'.repeat(mebibyte - 100) }));
    for (const [coding, body] of [
      ['gzip', gzipSync(text)],
      ['br', brotliCompressSync(text)],
      ['zstd', zstd(text)],
    ] as const) {
      expect({ coding, answer: await post(body, { 'content-encoding': coding }) }).toEqual({
        coding,
        answer: { status: 200, value: { text: 'a'.repeat(mebibyte - 100) } },
      });
      expect({ coding, answer: await post(body, { 'content-encoding': coding }, mebibyte - 200) }).toEqual({
        coding,
        answer: { status: 413, error: 'PayloadTooLargeError', message: `The decompressed request body exceeds the limit of ${mebibyte - 200} bytes` },
      });
    }
  });

  for (const coding of ['gzip', 'zstd'] as const) {
    it(`stops a ${coding} bomb (64 MiB of zeros) at the 1 MiB limit: 413 at once, without inflating it`, async () => {
      const bomb =
        coding === 'gzip' ? gzipSync(Buffer.alloc(64 * mebibyte), { level: 9 }) : execFileSync('sh', ['-c', `head -c ${64 * mebibyte} /dev/zero | zstd -q -c`]);
      expect(bomb.length).toBeLessThan(mebibyte);
      const rssBefore = process.memoryUsage().rss;
      const started = performance.now();
      expect(await post(bomb, { 'content-encoding': coding })).toEqual({
        status: 413,
        error: 'PayloadTooLargeError',
        message: `The decompressed request body exceeds the limit of ${mebibyte} bytes`,
      });
      expect(performance.now() - started).toBeLessThan(2000);
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(24 * mebibyte);
    });
  }

  it('refuses a zstd frame that declares a content size over the limit from its header', async () => {
    // Single-segment frame, 4-byte content size of 64 MiB: fzstd would allocate all of it up front.
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 4]);
    expect(await post(Buffer.concat([header, zstdRawBlock(Buffer.from('{}'), true)]), { 'content-encoding': 'zstd' })).toEqual({
      status: 413,
      error: 'PayloadTooLargeError',
      message: `The decompressed request body exceeds the limit of ${mebibyte} bytes`,
    });
  });

  it('refuses a zstd window over the 8 MiB of RFC 9659 before fzstd allocates it', async () => {
    // Window descriptor 20 << 3: a 1 GiB window, for a 2-byte body.
    const body = Buffer.concat([zstdFrameHeader(20 << 3), zstdRawBlock(Buffer.from('{}'), true)]);
    expect(await post(body, { 'content-encoding': 'zstd' })).toEqual({
      status: 400,
      error: 'InvalidRequestError',
      message: `The request body could not be decompressed (zstd): its window of ${2 ** 30} bytes exceeds the ${8 * mebibyte} bytes RFC 9659 allows`,
    });
    // 8 MiB itself is fine.
    expect(await post(Buffer.concat([zstdFrameHeader(13 << 3), zstdRawBlock(Buffer.from('{}'), true)]), { 'content-encoding': 'zstd' })).toEqual({
      status: 200,
      value: {},
    });
  });

  it('refuses a zstd stream of tiny blocks under a large window (fzstd slides the whole window per block)', async () => {
    const blocks = Array.from({ length: 5000 }, (_, index) => zstdRawBlock(Buffer.from(' '), index === 4999));
    const started = performance.now();
    expect(await post(Buffer.concat([zstdFrameHeader(13 << 3), ...blocks]), { 'content-encoding': 'zstd' })).toEqual({
      status: 400,
      error: 'InvalidRequestError',
      message: 'The request body could not be decompressed (zstd): too many small blocks or frames for their window size',
    });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('treats an empty body as no body whatever its coding', async () => {
    expect(await post(Buffer.alloc(0), { 'content-encoding': 'gzip' })).toEqual({ status: 200 });
    expect(await post([Buffer.alloc(0)], { 'content-encoding': 'zstd', 'transfer-encoding': 'chunked' })).toEqual({ status: 200 });
  });
});
