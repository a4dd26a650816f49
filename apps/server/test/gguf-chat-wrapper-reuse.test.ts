import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createGgufModelManager, type GgufModelManager } from '@tabagent/gguf-loader';
import { chatMlToolsTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';

// The "auto" chat wrapper is resolved from the GGUF's Jinja template once per file: resolving it
// holds the event loop (about a second for this tool-calling template), so a reload of the same
// file after an unload or a keep-alive expiry must not pay it again.
let dir: string;
let manager: GgufModelManager;
const resolved: unknown[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'wrapper-reuse-'));
  const record = (objectOrMessage: object | string, message?: string): void => {
    if (message === 'Chat wrapper resolved') resolved.push(objectOrMessage);
  };
  manager = createGgufModelManager({
    gpu: false,
    defaultThreads: 1,
    defaultContextSize: 512,
    sequences: 1,
    defaultKeepAlive: -1,
    logger: { debug: record, info: record, warn: record, error: record },
  });
});

afterAll(async () => {
  await manager.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function answer(id: string): Promise<string> {
  const run = manager.chat(id, { messages: [{ role: 'user', content: 'hello' }], maxTokens: 4, temperature: 0, seed: 1 });
  return (await run.result).text;
}

describe('GGUF chat wrapper reuse', () => {
  it('resolves the wrapper once per file across unloads and again for a changed file, and generates the same after a reload', async () => {
    const file = path.join(dir, 'chat.gguf');
    writeTinyLlamaGguf(file, { chatTemplate: chatMlToolsTemplate });
    await manager.load('chat', file);
    const first = await answer('chat');
    expect(resolved).toHaveLength(1);
    await manager.unload('chat');
    await manager.load('chat', file);
    expect(resolved).toHaveLength(1);
    expect(await answer('chat')).toBe(first);
    await manager.unload('chat');
    // A new file at the same path (another size): its template may differ, so it is resolved anew.
    writeTinyLlamaGguf(file, { chatTemplate: chatMlToolsTemplate, tensorType: 'F32' });
    await manager.load('chat', file);
    expect(resolved).toHaveLength(2);
    await manager.unload('chat');
  });
});
