import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// The worker is plain CommonJS evaluated from this string, not a file next to this module: it then
// runs the same whether this package is imported from its build (the server) or from source (its
// tests), and it needs nothing but the driver. It only prepares and runs what it is sent.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true, timeout: workerData.timeout });
const statements = new Map();
parentPort.on('message', ({ id, sql, params }) => {
  try {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    parentPort.postMessage({ id, rows: statement.all(...params) });
  } catch (error) {
    parentPort.postMessage({ id, error: { message: String(error && error.message), code: error && error.code } });
  }
});
`;

type Param = string | number | bigint | null;

interface Pending {
  resolve: (rows: unknown[]) => void;
  reject: (error: Error) => void;
}

type Reply = { id: number; rows: unknown[] } | { id: number; error: { message: string; code?: string } };

/**
 * A read-only connection to one SQLite file on a worker thread. Searches over every message (an
 * FTS match of an OR of words, tens of milliseconds at ten thousand messages) run there instead of
 * on the event loop, which keeps streaming tokens, health checks and native messaging moving. WAL
 * lets it read beside the writer; each query is its own read transaction, so it sees every commit
 * made before it was sent.
 *
 * The worker starts on the first query and holds the process open only while a query is pending.
 * A worker that dies fails its pending queries and is started again by the next one.
 */
export class ReadWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly busyTimeoutMs: number,
  ) {}

  /** The rows of a read-only statement. */
  all<Row>(sql: string, params: readonly Param[]): Promise<Row[]> {
    if (this.closed) return Promise.reject(new Error('The storage is closed'));
    const worker = this.started();
    const id = this.nextId++;
    return new Promise<Row[]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (rows: unknown[]) => void, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, sql, params });
    });
  }

  /** Stops the worker; pending queries fail. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failPending(new Error('The storage was closed during the query'));
    if (worker) await worker.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(workerSource, { eval: true, workerData: { driver, path: this.path, timeout: this.busyTimeoutMs } });
    worker.unref();
    worker.on('message', (reply: Reply) => this.answer(reply));
    const lost = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failPending(error);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`The storage read worker exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private answer(reply: Reply): void {
    const waiting = this.pending.get(reply.id);
    if (!waiting) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if ('rows' in reply) waiting.resolve(reply.rows);
    else waiting.reject(Object.assign(new Error(reply.error.message), reply.error.code === undefined ? {} : { code: reply.error.code }));
  }

  private failPending(error: Error): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const { reject } of waiting) reject(error);
  }
}
