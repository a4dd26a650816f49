import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response, Router } from 'express';
import {
  assertPairingScope,
  isChunkStream,
  OllamaChatRequest,
  OllamaCopyRequest,
  OllamaEmbedRequest,
  OllamaEmbeddingsRequest,
  OllamaGenerateRequest,
  OllamaModelRequest,
  ollamaModelIdOf as modelIdOf,
  ollamaNameOf,
  requiredOllamaModelName as requiredModelName,
  parseRouteRequest,
  problemStatusForCode,
  routeBodyLimit,
  routeCatalogue,
  toTabAgentError,
  type AppStateProvider,
  type RouteChunk,
  type RouteId,
  type RouteRequestInput,
  type Logger,
  type RouteResponse,
} from '@tabagent/values';
import { callerOfRequestState, createHttpCallContext } from '../http-call-context.js';
import { markReachedProvider, reachedProvider, reportRefusal, type RequestRefusal } from '../refusal-tracking.js';
import { readJsonBody } from '../request-body-reader.js';
import { requestStateOf } from '../request-guard.js';
import { parseOllamaRequest } from './ollama-requests.js';

/**
 * The Ollama API version whose request and response shapes these routes follow (what
 * `/api/version` reports: clients such as Open WebUI read it to pick features).
 */
export const ollamaApiVersion = '0.12.0';

/** Paths of the Ollama API that stay open when an API key is set (Open WebUI probes them first). */
export const ollamaOpenPaths = ['/', '/api/version'];

/** What the Ollama routes need from the router that mounts them. */
export interface OllamaRoutesOptions {
  provider: AppStateProvider;
  logger: Logger;
  /** When set, caps every route's body limit (each takes its catalogue route's, 1 MiB by default). */
  bodyLimitBytes?: number;
  requestIdFactory: () => string;
  shutdownSignal?: AbortSignal | undefined;
  /** This server's version, reported beside the Ollama API version. */
  version: string;
  onRefused?: (refusal: RequestRefusal) => void;
}

const nanoseconds = (fromMs: number, toMs: number): number => Math.max(0, Math.round((toMs - fromMs) * 1_000_000));
const jsonType = 'application/json; charset=utf-8';

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': jsonType, 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

/** A parameter count as Ollama writes it ("7.6B", "494.03M"). */
function parameterSize(parameters: number | null): string {
  if (parameters === null || parameters <= 0) return '';
  if (parameters >= 1e9) return `${(parameters / 1e9).toFixed(1)}B`;
  if (parameters >= 1e6) return `${(parameters / 1e6).toFixed(2)}M`;
  return `${(parameters / 1e3).toFixed(2)}K`;
}

type ModelInfo = RouteResponse<'models.list'>['data'][number];

/**
 * An identifier of the model file, in the 64-hex-digit shape of Ollama's digests: a hash of its
 * path, size and time, not of its content (hashing a multi-gigabyte GGUF per listing is not done).
 */
function digestOf(model: ModelInfo): string {
  return createHash('sha256').update(`${model.path}\n${model.size_bytes}\n${model.created}`).digest('hex');
}

function detailsOf(model: ModelInfo): Record<string, unknown> {
  const family = model.details.architecture ?? (model.format === 'onnx' ? 'bert' : '');
  return {
    parent_model: '',
    format: model.format,
    family,
    families: family === '' ? [] : [family],
    parameter_size: parameterSize(model.details.parameters),
    quantization_level: model.details.quantization ?? '',
    ...(model.details.context_length === null ? {} : { context_length: model.details.context_length }),
    ...(model.details.embedding_length === null ? {} : { embedding_length: model.details.embedding_length }),
  };
}

/** What the model can do, in Ollama's capability names. */
function capabilitiesOf(model: ModelInfo, template: string | null): string[] {
  if (model.task === 'embedding') return ['embedding'];
  const capabilities = ['completion', 'tools'];
  if (template !== null && /reasoning_content|<think>|enable_thinking/.test(template)) capabilities.push('thinking');
  return capabilities;
}

/**
 * Ollama's API (`/api/*`, `GET /`) over the catalogue's operations on the same provider: each
 * handler translates the request, calls one or more catalogue routes, and translates the answer
 * (NDJSON streams, `{"error": "..."}` errors as application/json, durations in nanoseconds).
 * There is no second implementation of anything here.
 */
export class OllamaRoutes {
  constructor(private readonly options: OllamaRoutesOptions) {}

  mount(router: Router): void {
    const handle =
      (work: (request: Request, response: Response) => Promise<void>, path: string) =>
      (request: Request, response: Response): void => {
        work(request, response).catch((error: unknown) => {
          if (!reachedProvider(request)) reportRefusal(this.options.onRefused, `ollama ${path}`, error);
          this.fail(response, error);
        });
      };
    router.get('/', (request: Request, response: Response) => {
      const body = 'Ollama is running';
      response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      response.end(request.method === 'HEAD' ? undefined : body);
    });
    router.get('/api/version', (_request: Request, response: Response) =>
      sendJson(response, 200, { version: ollamaApiVersion, tabagent: { version: this.options.version } }),
    );
    // Ollama's route table: method, path and the adapter method that serves it.
    const routes: readonly (readonly ['get' | 'post' | 'delete', string, (request: Request, response: Response) => Promise<void>])[] = [
      ['get', '/api/tags', (request, response) => this.tags(request, response)],
      ['get', '/api/ps', (request, response) => this.ps(request, response)],
      ['post', '/api/show', (request, response) => this.show(request, response)],
      ['post', '/api/chat', (request, response) => this.generation('ollama.chat', request, response)],
      ['post', '/api/generate', (request, response) => this.generation('ollama.generate', request, response)],
      ['post', '/api/embed', (request, response) => this.embed(request, response)],
      ['post', '/api/embeddings', (request, response) => this.embeddings(request, response)],
      ['delete', '/api/delete', (request, response) => this.remove(request, response)],
      ['post', '/api/copy', (request, response) => this.copy(request, response)],
      ['post', '/api/pull', (request, response) => this.pull(request, response)],
    ];
    for (const [method, path, work] of routes) router[method](path, handle(work, path));
  }

  /** Ollama's error body: `{"error": "..."}` as application/json with the problem's status; a line once a stream started. */
  private fail(response: ServerResponse, error: unknown): void {
    const failure = toTabAgentError(error);
    const message = failure.code === 'internal_error' ? 'An unexpected error occurred; see the server log.' : failure.message;
    if (failure.code === 'internal_error') this.options.logger.error({ err: error }, 'Unexpected error while serving an Ollama request');
    if (response.destroyed) return;
    if (response.headersSent) {
      if (!response.writableEnded) response.end(`${JSON.stringify({ error: message })}\n`);
      return;
    }
    sendJson(response, problemStatusForCode(failure.code), { error: message });
  }

  /** Reads the body within the limit of the catalogue route this path serves (`models.get` and the like: 1 MiB). */
  private async body(request: IncomingMessage, served: RouteId = 'models.get'): Promise<unknown> {
    const limit = Math.min(routeBodyLimit(routeCatalogue[served]), this.options.bodyLimitBytes ?? Number.POSITIVE_INFINITY);
    // Ollama reads any body as JSON; a browser's (with Origin) must say it is JSON.
    return readJsonBody(request, limit, { requireJsonContentType: request.headers.origin !== undefined });
  }

  /**
   * Calls one catalogue route for this HTTP request, validated as every transport validates. The
   * pairing scope is checked for `scopedAs`: the route the client asked for, when this call is a
   * step of it (the load before a chat is part of the chat, as chat completions load on demand).
   */
  private async call<K extends RouteId>(
    id: K,
    raw: RouteRequestInput<K>,
    request: Request,
    response: Response,
    scopedAs: RouteId = id,
  ): Promise<RouteResponse<K> | AsyncIterable<RouteChunk<K>>> {
    const state = requestStateOf(request, this.options.requestIdFactory);
    assertPairingScope(state.pairing, scopedAs);
    const caller = callerOfRequestState(state);
    const context = createHttpCallContext(state.requestId, caller, request, response, this.options.shutdownSignal);
    const parsed = parseRouteRequest(id, raw);
    markReachedProvider(request);
    return this.options.provider.handle(id, parsed, context) as Promise<RouteResponse<K> | AsyncIterable<RouteChunk<K>>>;
  }

  private async callOnce<K extends RouteId>(
    id: K,
    raw: RouteRequestInput<K>,
    request: Request,
    response: Response,
    scopedAs: RouteId = id,
  ): Promise<RouteResponse<K>> {
    const result = await this.call(id, raw, request, response, scopedAs);
    if (isChunkStream(result)) throw new Error(`${id} streamed`);
    return result;
  }

  /**
   * Loads the model if it is not (Ollama loads on demand too), with `num_ctx`/`num_thread` and the
   * keep-alive; the time it took, in ns, is Ollama's `load_duration`.
   */
  private async ensureLoaded(
    id: string,
    keepAlive: number | string | undefined,
    load: Record<string, unknown>,
    request: Request,
    response: Response,
    servedRoute: RouteId,
  ): Promise<number> {
    const started = performance.now();
    const loaded = await this.callOnce(
      'models.load',
      { model: id, ...load, ...(keepAlive === undefined ? {} : { keep_alive: keepAlive }) },
      request,
      response,
      servedRoute,
    );
    return loaded.status === 'loaded' ? nanoseconds(started, performance.now()) : 0;
  }

  private async models(request: Request, response: Response): Promise<ModelInfo[]> {
    const list = await this.callOnce('models.list', {}, request, response);
    return list.data.filter((model) => model.task === 'text-generation' || model.task === 'embedding');
  }

  private async tags(request: Request, response: Response): Promise<void> {
    const models = (await this.models(request, response)).sort((a, b) => b.created - a.created);
    sendJson(response, 200, {
      models: models.map((model) => ({
        name: ollamaNameOf(model.id),
        model: ollamaNameOf(model.id),
        modified_at: new Date(model.created * 1000).toISOString(),
        size: model.size_bytes,
        digest: digestOf(model),
        details: detailsOf(model),
      })),
    });
  }

  private async ps(request: Request, response: Response): Promise<void> {
    const [loaded, models] = await Promise.all([this.callOnce('models.loaded', {}, request, response), this.models(request, response)]);
    const byId = new Map(models.map((model) => [model.id, model]));
    // Kept until unloaded: Ollama's "forever" is the largest expiry it can write.
    const forever = new Date(Date.now() + 292 * 365 * 86_400_000).toISOString();
    const entries = loaded.models.flatMap((entry) => {
      const model = byId.get(entry.model);
      if (model === undefined) return [];
      const size = Math.round(entry.memory_mb * 1024 * 1024);
      return [
        {
          name: ollamaNameOf(entry.model),
          model: ollamaNameOf(entry.model),
          size,
          digest: digestOf(model),
          details: detailsOf(model),
          expires_at: entry.expires_at ?? forever,
          size_vram: entry.gpu_layers > 0 && entry.device !== 'cpu' ? size : 0,
          context_length: entry.context_size ?? model.details.context_length ?? 0,
        },
      ];
    });
    sendJson(response, 200, { models: entries });
  }

  private async show(request: Request, response: Response): Promise<void> {
    const body = parseOllamaRequest(OllamaModelRequest, await this.body(request), '/api/show');
    const name = requiredModelName(body);
    const model = await this.callOnce('models.get', { model: modelIdOf(name) }, request, response);
    const arch = model.details.architecture ?? 'unknown';
    const modelInfo: Record<string, unknown> = { 'general.architecture': arch };
    if (model.details.parameters !== null) modelInfo['general.parameter_count'] = model.details.parameters;
    if (model.details.context_length !== null) modelInfo[`${arch}.context_length`] = model.details.context_length;
    if (model.details.embedding_length !== null) modelInfo[`${arch}.embedding_length`] = model.details.embedding_length;
    const template = model.chat_template ?? '';
    sendJson(response, 200, {
      license: '',
      modelfile: `# Modelfile generated by TabAgent Server\nFROM ${model.path}\n${template === '' ? '' : `TEMPLATE """${template}"""\n`}`,
      parameters: '',
      template,
      details: detailsOf(model),
      model_info: modelInfo,
      capabilities: capabilitiesOf(model, model.chat_template),
      modified_at: new Date(model.created * 1000).toISOString(),
    });
  }

  /** Sends NDJSON lines (Ollama's streaming), or the last line alone when the client asked for no stream. */
  private async reply(
    response: ServerResponse,
    stream: boolean,
    lines: AsyncIterable<Record<string, unknown>>,
    merge: (lines: Record<string, unknown>[]) => Record<string, unknown>,
  ): Promise<void> {
    if (!stream) {
      const all: Record<string, unknown>[] = [];
      for await (const line of lines) all.push(line);
      sendJson(response, 200, merge(all));
      return;
    }
    const iterator = lines[Symbol.asyncIterator]();
    // The first line is awaited before the status goes out, so an unknown model is a 404, not a 200 with an error line.
    let next = await iterator.next();
    response.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache' });
    try {
      while (next.done !== true) {
        if (response.destroyed) return;
        if (!response.write(`${JSON.stringify(next.value)}\n`)) await new Promise<void>((resolve) => response.once('drain', resolve).once('close', resolve));
        next = await iterator.next();
      }
      response.end();
    } catch (error) {
      this.fail(response, error);
    } finally {
      if (response.destroyed) await iterator.return?.();
    }
  }

  /**
   * Ollama's chat and generate are operations of their own (`ollama.chat`, `ollama.generate`): one
   * provider call, whose Ollama lines are sent as NDJSON, or as one JSON object when the client
   * asked for no stream. Loading, thinking, tools and the counters are the Ollama codec's (services).
   */
  private async generation(id: 'ollama.chat' | 'ollama.generate', request: Request, response: Response): Promise<void> {
    const schema = id === 'ollama.chat' ? OllamaChatRequest : OllamaGenerateRequest;
    const body = parseOllamaRequest(schema, await this.body(request, id), id === 'ollama.chat' ? '/api/chat' : '/api/generate');
    const result = await this.call(id, body, request, response);
    if (!isChunkStream(result)) {
      sendJson(response, 200, result);
      return;
    }
    await this.reply(response, true, result as AsyncIterable<Record<string, unknown>>, (all) => all[all.length - 1] ?? {});
  }

  private async embed(request: Request, response: Response): Promise<void> {
    const started = performance.now();
    const body = parseOllamaRequest(OllamaEmbedRequest, await this.body(request, 'embeddings'), '/api/embed');
    const name = requiredModelName(body);
    const id = modelIdOf(name);
    const loadNs = await this.ensureLoaded(id, body.keep_alive, {}, request, response, 'embeddings');
    const inputs = body.input === undefined || body.input === null ? [] : typeof body.input === 'string' ? [body.input] : body.input;
    if (inputs.length === 0) {
      sendJson(response, 200, { model: name, embeddings: [] });
      return;
    }
    const result = await this.callOnce(
      'embeddings',
      { model: id, input: inputs, ...(body.dimensions === undefined || body.dimensions === null ? {} : { dimensions: body.dimensions }) },
      request,
      response,
    );
    sendJson(response, 200, {
      model: name,
      embeddings: result.data.map((item) => item.embedding),
      total_duration: nanoseconds(started, performance.now()),
      load_duration: loadNs,
      prompt_eval_count: result.usage.prompt_tokens,
    });
  }

  private async embeddings(request: Request, response: Response): Promise<void> {
    const body = parseOllamaRequest(OllamaEmbeddingsRequest, await this.body(request, 'embeddings'), '/api/embeddings');
    const id = modelIdOf(requiredModelName(body));
    await this.ensureLoaded(id, body.keep_alive, {}, request, response, 'embeddings');
    if (body.prompt === undefined || body.prompt === null || body.prompt === '') {
      sendJson(response, 200, { embedding: [] });
      return;
    }
    const result = await this.callOnce('embeddings', { model: id, input: body.prompt }, request, response);
    sendJson(response, 200, { embedding: result.data[0]?.embedding ?? [] });
  }

  private async remove(request: Request, response: Response): Promise<void> {
    const body = parseOllamaRequest(OllamaModelRequest, await this.body(request), '/api/delete');
    await this.callOnce('models.delete', { model: modelIdOf(requiredModelName(body)) }, request, response);
    sendJson(response, 200, undefined);
  }

  private async copy(request: Request, response: Response): Promise<void> {
    const body = parseOllamaRequest(OllamaCopyRequest, await this.body(request), '/api/copy');
    await this.callOnce('models.alias', { model: modelIdOf(body.source), alias: modelIdOf(body.destination) }, request, response);
    sendJson(response, 200, undefined);
  }

  /**
   * Ollama's pull progress over models.pull: `pulling manifest`, `pulling <file>` with
   * total/completed (Ollama names a digest there; a file name is what we have), `verifying
   * sha256 digest`, `writing manifest`, `success`.
   */
  private async pull(request: Request, response: Response): Promise<void> {
    const body = parseOllamaRequest(OllamaModelRequest, await this.body(request), '/api/pull');
    const chunks = (await this.call('models.pull', { model: requiredModelName(body), stream: true }, request, response)) as AsyncIterable<
      RouteChunk<'models.pull'>
    >;
    async function* lines(): AsyncGenerator<Record<string, unknown>> {
      let lastFile: string | undefined;
      for await (const chunk of chunks) {
        if (chunk.status === 'resolving') yield { status: 'pulling manifest' };
        else if (chunk.status === 'downloading' && chunk.file !== undefined) {
          if (lastFile !== undefined && lastFile !== chunk.file) yield { status: 'verifying sha256 digest' };
          lastFile = chunk.file;
          yield { status: `pulling ${chunk.file}`, digest: chunk.file, total: chunk.total, completed: chunk.completed };
        } else if (chunk.status === 'registering') {
          if (lastFile !== undefined) yield { status: 'verifying sha256 digest' };
          yield { status: 'writing manifest' };
        } else if (chunk.status === 'completed') yield { status: 'success' };
      }
    }
    await this.reply(response, body.stream !== false, lines(), (all) => all[all.length - 1] ?? { status: 'success' });
  }
}
