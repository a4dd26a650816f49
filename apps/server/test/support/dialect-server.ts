import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createApiApp } from '@tabagent/api';
import { createGgufModelBackend, createGgufModelManager, ggufModelInspector, type GgufModelManager } from '@tabagent/gguf-loader';
import { chatMlToolsTemplate, thinkingChatTemplate, writeTinyLlamaGguf } from '@tabagent/gguf-loader/test-support';
import { createModelRegistry, createModelResolver } from '@tabagent/model-cache';
import { composeHandlers, createGenerationHandlers, createModelHandlers, createRunningRequests } from '@tabagent/services';
import { createStorage, type Storage } from '@tabagent/storage';
import { createAppStateProvider, type AppStateProvider } from '@tabagent/values';

/**
 * A template without tools, in the shape of a plain chat model's: node-llama-cpp maps it to its
 * ChatML wrapper, whose function syntax the model was never taught.
 */
export const plainChatMlTemplate = `{%- for message in messages %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- endif %}`;

/** A server of the agent dialects over real parts: GGUF fixtures, node-llama-cpp, a SQLite store. */
export interface DialectServer {
  url: string;
  manager: GgufModelManager;
  storage: Storage;
  /** The provider the HTTP transport serves, for calls as another caller. */
  provider: AppStateProvider;
  close(): Promise<void>;
}

export interface DialectServerOptions {
  apiKey?: string;
  /** Sequences per model (default 2). */
  sequences?: number;
  keepAliveIntervalMs?: number;
  responseStoreLimits?: { maxRows: number; ttlMs: number };
}

/**
 * Starts the HTTP transport with the model, generation and handler groups composed as the server
 * composes them, over a data folder holding `tiny` (a ChatML template with tools, trained for 2,048
 * tokens), `plain` (a template without tools), `thinker` (a reasoning model's template) and `roomy`
 * (tools, trained for 32,768), each loaded
 * with 1,024 tokens per sequence.
 */
export async function startDialectServer(options: DialectServerOptions = {}): Promise<DialectServer> {
  const root = mkdtempSync(path.join(tmpdir(), 'dialects-'));
  const dataDir = path.join(root, 'data');
  mkdirSync(path.join(dataDir, 'models'), { recursive: true });
  writeTinyLlamaGguf(path.join(dataDir, 'models', 'tiny.gguf'), { chatTemplate: chatMlToolsTemplate });
  writeTinyLlamaGguf(path.join(dataDir, 'models', 'plain.gguf'), { chatTemplate: plainChatMlTemplate, seed: 2 });
  // A reasoning model's template: its answers start inside a thought.
  writeTinyLlamaGguf(path.join(dataDir, 'models', 'thinker.gguf'), { chatTemplate: thinkingChatTemplate, seed: 4 });
  // Trained for 32,768 tokens: its context grows for an agent's long prompt.
  writeTinyLlamaGguf(path.join(dataDir, 'models', 'roomy.gguf'), { chatTemplate: chatMlToolsTemplate, contextLength: 32768, seed: 3 });
  const manager = createGgufModelManager({ gpu: false, defaultThreads: 1, defaultContextSize: 1024, sequences: options.sequences ?? 2, defaultKeepAlive: -1 });
  const storage = createStorage({ path: path.join(dataDir, 'tabagent.db') });
  const registry = createModelRegistry({ dataDir, inspectors: [ggufModelInspector] });
  const models = createModelResolver({ registry, backends: [createGgufModelBackend(manager)] });
  const handlers = composeHandlers(
    createModelHandlers({ models, availableMemory: async () => ({ ramBytes: 4 * 1024 ** 3, vramBytes: 0 }) }),
    createGenerationHandlers({
      models,
      running: createRunningRequests(),
      responseStore: storage,
      ...(options.keepAliveIntervalMs === undefined ? {} : { keepAliveIntervalMs: options.keepAliveIntervalMs }),
      ...(options.responseStoreLimits === undefined ? {} : { responseStoreLimits: options.responseStoreLimits }),
    }),
  );
  const provider = createAppStateProvider(handlers);
  const server: Server = createApiApp(provider, {
    allowedOrigins: [],
    ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
  }).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    manager,
    storage,
    provider,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await manager.dispose();
      storage.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The frames of an SSE body: each `event:` name (or null) with its parsed `data:`. */
export function parseSseFrames(body: string): { event: string | null; data: unknown }[] {
  return body
    .split('\n\n')
    .filter((frame) => frame.trim().length > 0)
    .map((frame) => {
      const lines = frame.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice('event: '.length) ?? null;
      const data = lines
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice('data: '.length))
        .join('\n');
      return { event, data: data === '[DONE]' ? data : (JSON.parse(data) as unknown) };
    });
}
