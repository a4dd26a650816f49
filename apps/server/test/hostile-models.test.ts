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
  // A chat template that loops for minutes: it runs on the event loop whenever a chat is rendered.
  writeTinyLlamaGguf(path.join(root, 'models', 'looping-template.gguf'), {
    chatTemplate: '{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}',
  });
  // One that asks for a range() of a billion items (its list alone would exhaust the heap).
  writeTinyLlamaGguf(path.join(root, 'models', 'huge-range-template.gguf'), { chatTemplate: '{% for i in range(1000000000) %}x{% endfor %}' });
  for (const kind of crafted) writeBrokenGguf(path.join(root, 'models', `${kind}.gguf`), kind);
  server = new ServerProcess({ args: ['--mode', 'http', '--port', '0', '--data-dir', root, '--threads', '1', '--gpu', 'off'] });
  base = await server.httpUrl();
  await server.ready();
}, 60_000);

/** A two-token chat with one model, as a client would send it. */
const chatWith = (model: string): Promise<Response> =>
  fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  });

afterAll(async () => {
  await server.stop('SIGTERM');
  rmSync(root, { recursive: true, force: true });
});

it('starts, lists only the good model, answers each crafted file as invalid, and chats with the good one', async () => {
  const listed = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
  expect(listed.data.map((model) => model.id).sort()).toEqual(['good', 'huge-range-template', 'looping-template']);
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
  const chat = await chatWith('good');
  expect(chat.status).toBe(200);
  expect(server.child.exitCode).toBeNull();
}, 60_000);

it('stops a chat template that loops with a clear error, answering health meanwhile and chatting with the good model after', async () => {
  const started = performance.now();
  const chat = chatWith('looping-template');
  // Health while the template is being stopped: the loop holds the event loop for one budget at a time at most.
  const healthLatencies: number[] = [];
  while (healthLatencies.length < 5) {
    const asked = performance.now();
    expect((await fetch(`${base}/health`)).status).toBe(200);
    healthLatencies.push(performance.now() - asked);
  }
  const answer = await chat;
  const problem = (await answer.json()) as { code: string; detail: string };
  expect([answer.status, problem.code, problem.detail]).toEqual([
    422,
    'invalid_model',
    expect.stringContaining("The model's chat template did not finish rendering within 250 ms"),
  ]);
  expect(performance.now() - started).toBeLessThan(30_000);
  expect(Math.max(...healthLatencies)).toBeLessThan(5_000);
  const good = await chatWith('good');
  expect(good.status).toBe(200);
  expect(server.child.exitCode).toBeNull();
}, 60_000);

it('says why a template was stopped: a range() too long is named as such, not as time', async () => {
  const answer = await chatWith('huge-range-template');
  const problem = (await answer.json()) as { code: string; detail: string };
  expect([answer.status, problem.code, problem.detail]).toEqual([
    422,
    'invalid_model',
    "The model's chat template asks for range() of 1000000000 items (at most 100000); the request was stopped. Replace the template (tokenizer.chat_template) or use another model.",
  ]);
  expect((await chatWith('good')).status).toBe(200);
}, 60_000);
