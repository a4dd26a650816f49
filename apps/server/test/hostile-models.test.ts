import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeBrokenGguf, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { ServerProcess } from './support/server-process.js';

// Crafted GGUF headers in the models folder beside a good model (dropped in, or pulled): a
// 20,000-deep nest of arrays overflowed the parser's stack and made `serve` exit at start; a
// sparse 300 MB file claiming 250 million array elements, and one claiming 10 million tensors,
// killed it out of memory. The server starts, lists the good model, answers the bad ones as
// invalid, and keeps serving.
const crafted = ['deeply-nested-array', 'sparse-huge-array', 'huge-tensor-count'] as const;
let root: string;
let server: ServerProcess;
let base: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'hostile-models-'));
  mkdirSync(path.join(root, 'models'));
  writeTinyLlamaGguf(path.join(root, 'models', 'good.gguf'));
  for (const kind of crafted) writeBrokenGguf(path.join(root, 'models', `${kind}.gguf`), kind);
  server = new ServerProcess({ args: ['--mode', 'http', '--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off'] });
  base = await server.httpUrl();
  await server.ready();
}, 60_000);

afterAll(async () => {
  await server.stop('SIGTERM');
  rmSync(root, { recursive: true, force: true });
});

it('starts, lists only the good model, answers each crafted file as invalid, and chats with the good one', async () => {
  const listed = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
  expect(listed.data.map((model) => model.id)).toEqual(['good']);
  const answers: Record<string, unknown> = {};
  for (const kind of crafted) {
    const response = await fetch(`${base}/v1/models/${kind}`);
    const problem = (await response.json()) as { code: string; detail: string };
    answers[kind] = [response.status, problem.code, problem.detail];
  }
  expect(answers).toEqual({
    'deeply-nested-array': [422, 'invalid_model', expect.stringContaining('GGUF metadata "bomb.nested" nests arrays deeper than 2 levels')],
    'sparse-huge-array': [422, 'invalid_model', expect.stringContaining('GGUF metadata "bomb.bytes" claims 250000000 array elements (at most 4194304)')],
    'huge-tensor-count': [422, 'invalid_model', expect.stringContaining('GGUF header claims 10000000 tensors, more than 100000')],
  });
  const chat = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'good', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  });
  expect(chat.status).toBe(200);
  expect(server.child.exitCode).toBeNull();
}, 60_000);
