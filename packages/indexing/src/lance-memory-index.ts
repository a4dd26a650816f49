import './lance-cpu-threads.js';
import { createRequire } from 'node:module';
import * as lancedb from '@lancedb/lancedb';
import type * as ArrowModule from 'apache-arrow';
import type {
  Data,
  FixedSizeList as FixedSizeListType,
  Float32 as Float32Type,
  Schema as SchemaType,
  Table as TableType,
  Utf8 as Utf8Type,
} from 'apache-arrow';
import {
  CancelledError,
  InvalidRequestError,
  TabAgentError,
  indexableNodeKinds,
  type MemoryNode,
  type MemoryTierName,
  type TextEmbedder,
} from '@tabagent/values';
import { reciprocalRankFusion } from './reciprocal-rank-fusion.js';
import { filtersToWhere, parseSearchFilters } from './search-filters.js';
import { tableNameForModel } from './table-name.js';
import { chunkText } from './text-chunker.js';
import type {
  IndexChunk,
  IndexChunkColumns,
  IndexTableStats,
  MemoryIndex,
  MemoryIndexOptions,
  MemorySearchHit,
  MemorySearchRequest,
} from './memory-index-types.js';

// LanceDB loads apache-arrow with require (its CommonJS build), and checks tables with instanceof:
// classes from the ESM build fail that check, so this module builds with the same CommonJS instance.
const arrow = createRequire(import.meta.url)('apache-arrow') as typeof ArrowModule;
const { Field, FixedSizeList, Float32, Float64, Int32, makeData, RecordBatch, Schema, Struct, Table: ArrowTable, Utf8, vectorFromArray } = arrow;

const hitColumns = ['id', 'node_id', 'chunk_index', 'text', 'kind', 'chat_id', 'tier', 'url', 'title', 'created_at'];

/** Arrow schema of a chunk table; vectors are Float32 (plain JS numbers would be stored as Float64). */
export function chunkTableSchema(dimensions: number): SchemaType {
  return new Schema(
    [
      new Field('id', new Utf8(), false),
      new Field('node_id', new Utf8(), false),
      new Field('chunk_index', new Int32(), false),
      new Field('text', new Utf8(), false),
      new Field('kind', new Utf8(), false),
      new Field('chat_id', new Utf8(), true),
      new Field('tier', new Utf8(), false),
      new Field('url', new Utf8(), true),
      new Field('title', new Utf8(), true),
      new Field('created_at', new Float64(), false),
      new Field('vector', new FixedSizeList(dimensions, new Field('item', new Float32(), true)), false),
    ],
    new Map([['tabagent.dimensions', String(dimensions)]]),
  );
}

/**
 * Chunks as an Arrow table, built column by column: the vectors are copied into one Float32
 * buffer. Row by row (`makeArrowTable` over objects) took 12–44 ms of the event loop for 256
 * chunks, which a chat request arriving meanwhile waited for; this takes 2–4 ms.
 */
export function chunksToArrowTable(chunks: readonly IndexChunk[], dimensions: number): TableType {
  const schema = chunkTableSchema(dimensions);
  const length = chunks.length;
  const flat = new Float32Array(length * dimensions);
  chunks.forEach((chunk, row) => flat.set(chunk.vector, row * dimensions));
  const children = schema.fields.map((field) => {
    switch (field.name) {
      case 'vector':
        return makeData({
          type: field.type as FixedSizeListType<Float32Type>,
          length,
          nullCount: 0,
          child: makeData({ type: new Float32(), length: flat.length, data: flat }),
        });
      case 'chunk_index':
        return makeData({ type: new Int32(), length, data: Int32Array.from(chunks, (chunk) => chunk.chunk_index) });
      case 'created_at':
        return makeData({ type: new Float64(), length, data: Float64Array.from(chunks, (chunk) => chunk.created_at) });
      default: {
        const name = field.name as 'id' | 'node_id' | 'text' | 'kind' | 'chat_id' | 'tier' | 'url' | 'title';
        return vectorFromArray(
          chunks.map((chunk) => chunk[name]),
          new Utf8(),
        ).data[0] as Data<Utf8Type>;
      }
    }
  });
  const data = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children });
  return new ArrowTable(schema, [new RecordBatch(schema, data)]);
}

/** The text of a node that gets chunked and embedded. */
export function nodeIndexText(node: MemoryNode): string {
  switch (node.kind) {
    case 'webpage':
    case 'document':
      return [node.title, node.text].filter((part) => part !== null && part !== '').join('\n\n');
    case 'bookmark':
      return [node.title, node.props.description, node.text, node.url].filter((part) => part !== null && part !== '').join('\n\n');
    default:
      return node.text;
  }
}

function sqlList(values: readonly string[]): string {
  return values.map((value) => `'${value.replaceAll("'", "''")}'`).join(', ');
}

/** A row as LanceDB returns it: the tier column is a plain string until checked. */
interface ChunkRow extends Omit<IndexChunkColumns, 'tier'> {
  tier: string;
  _distance?: number;
  _score?: number;
}

/** A hit for a node not indexed yet: its first chunk, id `<node_id>#0` as it will be once indexed. */
function tailHit(node: MemoryNode, score: number, chunking: MemoryIndexOptions['chunking']): MemorySearchHit {
  return { ...chunkColumns(node, 0, chunkText(nodeIndexText(node), chunking)[0] ?? ''), score, indexed: false };
}

/** The index columns of a node's chunk `index` with `text`. */
function chunkColumns(node: MemoryNode, index: number, text: string): IndexChunkColumns {
  return {
    id: `${node.id}#${index}`,
    node_id: node.id,
    chunk_index: index,
    text,
    kind: node.kind,
    chat_id: node.chat_id,
    tier: node.tier,
    url: node.url,
    title: node.title,
    created_at: node.created_at,
  };
}

function rowToHit(row: ChunkRow, score: number): MemorySearchHit {
  return {
    id: row.id,
    node_id: row.node_id,
    chunk_index: row.chunk_index,
    text: row.text,
    kind: row.kind,
    chat_id: row.chat_id,
    tier: row.tier as MemoryTierName,
    url: row.url,
    title: row.title,
    created_at: row.created_at,
    score,
  };
}

/**
 * ANN parameters from the table size. IVF_HNSW_SQ: an HNSW graph per IVF partition over 8-bit
 * scalar-quantised vectors keeps recall@10 high (no PQ training loss) with fast queries; HNSW wants
 * few partitions, so one per ~50k rows rather than sqrt(rows).
 */
export function annIndexParameters(rows: number): { numPartitions: number; m: number; efConstruction: number } {
  return { numPartitions: Math.max(1, Math.round(rows / 50_000)), m: 20, efConstruction: 150 };
}

/** LanceDB-backed `MemoryIndex`. */
export class LanceMemoryIndex implements MemoryIndex {
  readonly dir: string;
  private readonly options: MemoryIndexOptions;
  private readonly annThreshold: number;
  private connection: Promise<lancedb.Connection> | undefined;
  private readonly tables = new Map<string, lancedb.Table>();
  /** Tables being opened or created, by name: concurrent callers share the one handle. */
  private readonly opening = new Map<string, Promise<lancedb.Table | undefined>>();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(options: MemoryIndexOptions) {
    this.options = options;
    this.dir = options.dir;
    this.annThreshold = options.annThreshold ?? 5000;
  }

  private connect(): Promise<lancedb.Connection> {
    this.connection ??= lancedb.connect(this.dir);
    return this.connection;
  }

  /** Serialises writes: LanceDB commits are optimistic and concurrent writers to one table retry or fail. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private openTable(modelId: string, dimensions: number, create: boolean): Promise<lancedb.Table | undefined> {
    return this.tableByName(
      tableNameForModel(modelId, dimensions),
      create
        ? () => {
            const schema = chunkTableSchema(dimensions);
            schema.metadata.set('tabagent.model', modelId);
            return schema;
          }
        : undefined,
    );
  }

  /**
   * The one handle of a table, opened (or created, with `schemaToCreate`) once however many
   * callers ask at the same moment. A LanceDB handle sees only its own writes and the version it
   * opened (no read-consistency checks, for speed), so two handles of one table must never
   * exist: a status read (`stats`) or a search that opened its own handle while the weaver was
   * creating the table and put it in the cache left every search blind to what the weaver's
   * handle wrote after.
   */
  private async tableByName(name: string, schemaToCreate?: () => ReturnType<typeof chunkTableSchema>): Promise<lancedb.Table | undefined> {
    for (;;) {
      const cached = this.tables.get(name);
      if (cached !== undefined) return cached;
      const pending = this.opening.get(name);
      if (pending !== undefined) {
        // Another caller is opening it: wait, then look again (it may not have created it).
        await pending.catch(() => undefined);
        continue;
      }
      const opening = (async () => {
        const db = await this.connect();
        const names = await db.tableNames();
        let table: lancedb.Table;
        if (names.includes(name)) table = await db.openTable(name);
        else if (schemaToCreate !== undefined) table = await db.createEmptyTable(name, schemaToCreate(), { existOk: true });
        else return undefined;
        this.tables.set(name, table);
        return table;
      })();
      this.opening.set(name, opening);
      try {
        return await opening;
      } finally {
        this.opening.delete(name);
      }
    }
  }

  private async allTables(): Promise<lancedb.Table[]> {
    const db = await this.connect();
    const names = (await db.tableNames()).filter((name) => name.startsWith('chunks_'));
    const result: lancedb.Table[] = [];
    for (const name of names) {
      const table = await this.tableByName(name);
      if (table !== undefined) result.push(table);
    }
    return result;
  }

  async indexNode(node: MemoryNode, embedder?: TextEmbedder): Promise<IndexChunk[]> {
    return (await this.indexNodes([node], embedder)).get(node.id) ?? [];
  }

  async indexNodes(nodes: readonly MemoryNode[], embedder?: TextEmbedder): Promise<Map<string, IndexChunk[]>> {
    const model = embedder ?? (await this.options.embedder());
    const byNode = await this.embedNodes(nodes, model);
    // One delete and one add for the whole batch: LanceDB writes a new fragment per add.
    await this.replaceNodeChunks(
      model.modelId,
      model.dimensions,
      nodes.map((node) => node.id),
      [...byNode.values()].flat(),
    );
    return byNode;
  }

  /** Chunks every node and embeds all chunks together, in calls of `embedBatchSize` texts. */
  private async embedNodes(nodes: readonly MemoryNode[], model: TextEmbedder): Promise<Map<string, IndexChunk[]>> {
    const pieces = nodes.flatMap((node) => chunkText(nodeIndexText(node), this.options.chunking).map((text, index) => ({ node, text, index })));
    const vectors: Float32Array[] = [];
    const batch = this.options.embedBatchSize ?? 64;
    for (let i = 0; i < pieces.length; i += batch) {
      const result = await model.embed(pieces.slice(i, i + batch).map((piece) => piece.text));
      vectors.push(...result.vectors);
    }
    const byNode = new Map<string, IndexChunk[]>(nodes.map((node) => [node.id, []]));
    pieces.forEach(({ node, text, index }, position) => {
      const vector = vectors[position];
      if (vector === undefined || vector.length !== model.dimensions) throw new Error(`Embedder ${model.modelId} returned a vector of the wrong size`);
      byNode.get(node.id)?.push({ ...chunkColumns(node, index, text), vector });
    });
    return byNode;
  }

  upsertChunks(modelId: string, dimensions: number, chunks: readonly IndexChunk[]): Promise<void> {
    return this.replaceNodeChunks(modelId, dimensions, [...new Set(chunks.map((chunk) => chunk.node_id))], chunks);
  }

  appendChunks(modelId: string, dimensions: number, chunks: readonly IndexChunk[]): Promise<void> {
    return this.replaceNodeChunks(modelId, dimensions, [], chunks);
  }

  private replaceNodeChunks(modelId: string, dimensions: number, nodeIds: readonly string[], chunks: readonly IndexChunk[]): Promise<void> {
    return this.serial(async () => {
      const table = await this.openTable(modelId, dimensions, chunks.length > 0);
      if (table === undefined) return;
      if (nodeIds.length > 0) await table.delete(`node_id IN (${sqlList(nodeIds)})`);
      if (chunks.length === 0) return;
      await table.add(chunksToArrowTable(chunks, dimensions));
      await this.ensureFtsIndex(table);
    });
  }

  private readonly ftsReady = new Set<string>();

  private async hasFtsIndex(table: lancedb.Table): Promise<boolean> {
    if (this.ftsReady.has(table.name)) return true;
    const indices = await table.listIndices();
    if (!indices.some((index) => index.columns.includes('text'))) return false;
    this.ftsReady.add(table.name);
    return true;
  }

  private async ensureFtsIndex(table: lancedb.Table): Promise<void> {
    if (await this.hasFtsIndex(table)) return;
    await table.createIndex('text', { config: lancedb.Index.fts({ withPosition: false }), replace: true });
    this.ftsReady.add(table.name);
  }

  deleteNodes(nodeIds: readonly string[]): Promise<void> {
    if (nodeIds.length === 0) return Promise.resolve();
    return this.serial(async () => {
      for (const table of await this.allTables()) await table.delete(`node_id IN (${sqlList(nodeIds)})`);
    });
  }

  setTier(nodeIds: readonly string[], tier: MemoryTierName): Promise<void> {
    if (nodeIds.length === 0) return Promise.resolve();
    return this.serial(async () => {
      for (const table of await this.allTables()) {
        await table.update({ where: `node_id IN (${sqlList(nodeIds)})`, values: { tier } });
      }
    });
  }

  async nodeVectors(modelId: string, dimensions: number, nodeIds: readonly string[]): Promise<Map<string, Float32Array>> {
    const found = new Map<string, Float32Array>();
    if (nodeIds.length === 0) return found;
    const table = await this.openTable(modelId, dimensions, false);
    if (table === undefined) return found;
    const rows = (await table
      .query()
      .where(`chunk_index = 0 AND node_id IN (${sqlList(nodeIds)})`)
      .select(['node_id', 'vector'])
      .toArray()) as Array<{ node_id: string; vector: ArrayLike<number> }>;
    for (const row of rows) found.set(row.node_id, Float32Array.from(row.vector));
    return found;
  }

  async nearestNodes(
    modelId: string,
    dimensions: number,
    vectors: readonly Float32Array[],
    k: number,
  ): Promise<Array<Array<{ node_id: string; score: number }>>> {
    const results: Array<Array<{ node_id: string; score: number }>> = vectors.map(() => []);
    if (vectors.length === 0) return results;
    const table = await this.openTable(modelId, dimensions, false);
    if (table === undefined) return results;
    // One multi-vector query for the whole batch: each row says which query vector it answers.
    let query = table.query().nearestTo(Array.from(vectors[0] as Float32Array));
    for (const vector of vectors.slice(1)) query = query.addQueryVector(Array.from(vector));
    const rows = (await query.distanceType('cosine').select(['node_id', '_distance']).limit(k).toArray()) as Array<{
      node_id: string;
      _distance: number;
      query_index?: number;
    }>;
    for (const row of rows) results[row.query_index ?? 0]?.push({ node_id: row.node_id, score: 1 - row._distance });
    return results;
  }

  async search(request: MemorySearchRequest): Promise<MemorySearchHit[]> {
    const k = request.k ?? 10;
    const mode = request.mode ?? 'hybrid';
    if (request.rerank === true && this.options.rerank === undefined) throw new InvalidRequestError('rerank was requested but no rerank model is configured');
    // Saved but not indexed yet (the weaver's backlog): found by words in storage, so an item
    // saved a moment ago is never missing. Read before the index: an item the weaver finishes
    // while the index is searched is then in one list or both (deduplicated), never in neither.
    const backlog =
      request.unindexed !== false && request.vector === undefined
        ? await this.options.storage.searchUnindexed(request.query, { filters: parseSearchFilters(request.filters), limit: k })
        : [];
    const indexed = (await this.searchIndexOrNothing(request)).map((hit) => ({ ...hit, indexed: true }));
    const seen = new Set(indexed.map((hit) => hit.node_id));
    const tail: MemorySearchHit[] = backlog.filter(({ node }) => !seen.has(node.id)).map(({ node, score }) => tailHit(node, score, this.options.chunking));
    // Reranked: the reranker scores the index's candidates and the backlog's alike.
    if (request.rerank === true && this.options.rerank !== undefined) {
      const candidates = [...indexed, ...tail];
      if (candidates.length === 0) return [];
      const scores = await this.options.rerank(
        request.query,
        candidates.map((hit) => hit.text),
      );
      return candidates
        .map((hit, index) => ({ ...hit, score: scores[index] ?? Number.NEGATIVE_INFINITY }))
        .sort((a, b) => b.score - a.score)
        .slice(0, k);
    }
    if (tail.length === 0) return indexed.slice(0, k);
    // Hybrid scores are ranks fused (RRF): the backlog's word ranking is one more list to fuse.
    if (mode === 'hybrid') {
      const byId = new Map([...indexed, ...tail].map((hit) => [hit.id, hit]));
      return reciprocalRankFusion([indexed.slice(0, k).map((hit) => hit.id), tail.map((hit) => hit.id)])
        .slice(0, k)
        .flatMap(({ id, score }) => {
          const hit = byId.get(id);
          return hit === undefined ? [] : [{ ...hit, score }];
        });
    }
    // Vector and text scores (cosine similarity, the index's BM25) have no common scale with
    // storage's word match: the backlog's hits follow the index's, with their own score
    // (SQLite FTS5's BM25), and say `indexed: false`.
    return [...indexed.slice(0, k), ...tail].slice(0, k);
  }

  /**
   * The index's hits; for a word search on a machine with no embedding model, none: the index is
   * kept per embedding model, so without one nothing was indexed, and what was saved is found by
   * its words in storage (the tail). Vector and hybrid searches still need the model, and say so.
   */
  private async searchIndexOrNothing(request: MemorySearchRequest): Promise<MemorySearchHit[]> {
    try {
      return await this.searchIndex(request);
    } catch (error) {
      if (request.mode === 'text' && TabAgentError.isInstance(error) && error.code === 'model_not_found') return [];
      throw error;
    }
  }

  private async searchIndex(request: MemorySearchRequest): Promise<MemorySearchHit[]> {
    const k = request.k ?? 10;
    const mode = request.mode ?? 'hybrid';
    const where = filtersToWhere(request.filters);
    const embedder = await this.options.embedder();
    const table = await this.openTable(embedder.modelId, embedder.dimensions, false);
    if (table === undefined) return [];
    const candidates = request.rerank === true || mode === 'hybrid' ? Math.max(k * 3, 30) : k;
    const byId = new Map<string, ChunkRow>();
    const vectorLeg = async (): Promise<ChunkRow[]> => {
      if (mode === 'text') return [];
      const vector = request.vector ?? (await embedder.embed([request.query])).vectors[0];
      if (vector === undefined) throw new Error('The embedder returned no vector for the query');
      let query = table
        .vectorSearch(Array.from(vector))
        .distanceType('cosine')
        .select([...hitColumns, '_distance'])
        .limit(candidates);
      // Probe widely and refine with full vectors so the indexed search keeps recall@10 >= 0.95.
      query =
        request.exact === true
          ? query.bypassVectorIndex()
          : query
              .nprobes(20)
              .ef(Math.max(100, candidates * 5))
              .refineFactor(5);
      if (where !== undefined) query = query.where(where);
      return (await query.toArray()) as ChunkRow[];
    };
    const textLeg = async (): Promise<ChunkRow[]> => {
      if (mode === 'vector' || request.query.trim() === '' || !(await this.hasFtsIndex(table))) return [];
      let query = table
        .query()
        // A MatchQuery: the words as words. A raw string is parsed as query syntax, where a
        // quote or a colon in the user's text fails the search.
        .fullTextSearch(new lancedb.MatchQuery(request.query, 'text'))
        .select([...hitColumns, '_score'])
        .limit(candidates);
      if (where !== undefined) query = query.where(where);
      return (await query.toArray()) as ChunkRow[];
    };
    // Both legs run at once: LanceDB executes them on its own threads.
    const [vectorRows, textRows] = await Promise.all([vectorLeg(), textLeg()]);
    for (const row of [...vectorRows, ...textRows]) if (!byId.has(row.id)) byId.set(row.id, row);
    let hits: MemorySearchHit[];
    if (mode === 'vector') hits = vectorRows.map((row) => rowToHit(row, 1 - (row._distance ?? 1)));
    else if (mode === 'text') hits = textRows.map((row) => rowToHit(row, row._score ?? 0));
    else {
      hits = reciprocalRankFusion([vectorRows.map((row) => row.id), textRows.map((row) => row.id)]).flatMap(({ id, score }) => {
        const row = byId.get(id);
        return row === undefined ? [] : [rowToHit(row, score)];
      });
    }
    // Unsliced when reranking: search() reranks every candidate, then keeps k.
    return request.rerank === true ? hits : hits.slice(0, k);
  }

  optimize(modelId?: string, dimensions?: number): Promise<void> {
    return this.serial(async () => {
      const tables = modelId !== undefined && dimensions !== undefined ? [await this.openTable(modelId, dimensions, false)] : await this.allTables();
      for (const table of tables) {
        if (table === undefined) continue;
        const rows = await table.countRows();
        if (rows === 0) continue;
        await this.ensureFtsIndex(table);
        const indices = await table.listIndices();
        const hasAnn = indices.some((index) => index.columns.includes('vector'));
        // Folds rows added since the last build into the existing indexes (FTS included) and compacts fragments.
        await table.optimize();
        if (!hasAnn && rows >= this.annThreshold) {
          const parameters = annIndexParameters(rows);
          await table.createIndex('vector', {
            config: lancedb.Index.hnswSq({
              distanceType: 'cosine',
              numPartitions: parameters.numPartitions,
              m: parameters.m,
              efConstruction: parameters.efConstruction,
            }),
          });
        }
      }
    });
  }

  async rebuild(options: { signal?: AbortSignal } = {}): Promise<{ nodes: number; chunks: number }> {
    const embedder = await this.options.embedder();
    await this.serial(async () => {
      const db = await this.connect();
      for (const name of await db.tableNames()) if (name.startsWith('chunks_')) await db.dropTable(name);
      this.tables.clear();
      this.ftsReady.clear();
    });
    let nodes = 0;
    let chunks = 0;
    let pending: IndexChunk[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length > 0) await this.appendChunks(embedder.modelId, embedder.dimensions, pending);
      pending = [];
    };
    for (const node of this.options.storage.iterateNodes(indexableNodeKinds)) {
      if (options.signal?.aborted === true) throw new CancelledError('Index rebuild cancelled');
      const written = (await this.embedNodes([node], embedder)).get(node.id) ?? [];
      pending.push(...written);
      nodes += 1;
      chunks += written.length;
      if (pending.length >= 1000) await flush();
    }
    await flush();
    await this.optimize(embedder.modelId, embedder.dimensions);
    return { nodes, chunks };
  }

  async stats(): Promise<IndexTableStats[]> {
    const result: IndexTableStats[] = [];
    for (const table of await this.allTables()) {
      const schema = await table.schema();
      const indices = await table.listIndices();
      result.push({
        table: table.name,
        model: schema.metadata.get('tabagent.model') ?? table.name,
        dimensions: Number(schema.metadata.get('tabagent.dimensions') ?? 0),
        rows: await table.countRows(),
        annIndexed: indices.some((index) => index.columns.includes('vector')),
      });
    }
    return result;
  }

  async close(): Promise<void> {
    await this.writes;
    for (const table of this.tables.values()) table.close();
    this.tables.clear();
    if (this.connection !== undefined) (await this.connection).close();
    this.connection = undefined;
  }
}

/** Opens (lazily) the LanceDB index folder. */
export function createMemoryIndex(options: MemoryIndexOptions): MemoryIndex {
  return new LanceMemoryIndex(options);
}
