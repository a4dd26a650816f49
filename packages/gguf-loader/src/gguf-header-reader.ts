import { open } from 'node:fs/promises';
import { InvalidModelError } from '@tabagent/values';
import { ggmlTypes, GgufValueType, minimumValueBytes } from './ggml-types.js';

/** One metadata value as read from the header (u64/i64 become numbers). */
export type GgufValue = number | boolean | string | GgufValue[];

/** One tensor's description in the header; `offset` is relative to the data section. */
export interface GgufTensorInfo {
  readonly name: string;
  /** Dimensions in ggml order (ne0 first). */
  readonly dims: readonly number[];
  readonly type: number;
  readonly offset: number;
  /** Element count (product of dims). */
  readonly elements: number;
  /** Bytes of the tensor's data, or null when the type is unknown. */
  readonly byteSize: number | null;
}

/** The parsed header of a GGUF file. No weights are read. */
export interface GgufHeader {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute file offset where tensor data starts. */
  readonly dataOffset: number;
  /** Bytes the header itself occupies (before alignment padding). */
  readonly headerBytes: number;
}

/** Options of `readGgufHeader`. */
export interface ReadGgufHeaderOptions {
  /** Largest header accepted, in bytes (default 64 MiB); a bigger one is refused as malformed. */
  maxHeaderBytes?: number;
}

const initialReadBytes = 1 << 20;
// Bounds of a header, each well above what real models hold (a 256k-token vocabulary is three
// arrays of 256k; the largest models have a few thousand tensors), and each checked before
// anything is allocated, so a crafted header (a sparse file claiming 250 million elements, a
// 20,000-deep nest of arrays, 10 million tensors) is refused as invalid instead of exhausting the
// heap or the stack, which no catch survives.
const defaultMaxHeaderBytes = 64 * 1024 * 1024;
/** Elements of one metadata array. */
export const maxGgufArrayElements = 4 * 1024 * 1024;
/** Elements of every metadata array together. */
export const maxGgufTotalElements = 16 * 1024 * 1024;
/** Arrays inside arrays: the format's own keys use none; one level is allowed. */
export const maxGgufArrayDepth = 2;
export const maxGgufTensors = 100_000;
export const maxGgufMetadataEntries = 65_536;

class NeedMoreBytes extends Error {}

class HeaderCursor {
  private position = 0;
  private readonly view: DataView;
  /** Array elements read so far, against maxGgufTotalElements. */
  elements = 0;
  constructor(
    private readonly buffer: Buffer,
    private readonly fileSize: number,
    private readonly maxHeaderBytes: number,
  ) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  get offset(): number {
    return this.position;
  }

  /** Bytes of the file after the cursor (not only of the buffer). */
  get remainingInFile(): number {
    return this.fileSize - this.position;
  }

  /** Bytes the header may still take: what is left of the file, and of the largest header accepted. */
  get remainingInHeader(): number {
    return Math.min(this.fileSize, this.maxHeaderBytes) - this.position;
  }

  private take(bytes: number): number {
    const start = this.position;
    if (start + bytes > this.buffer.length) {
      if (this.buffer.length >= this.fileSize)
        throw new InvalidModelError(`GGUF header is truncated: needs ${start + bytes} bytes but the file has ${this.fileSize}`);
      throw new NeedMoreBytes();
    }
    this.position += bytes;
    return start;
  }

  u8(): number {
    return this.view.getUint8(this.take(1));
  }
  i8(): number {
    return this.view.getInt8(this.take(1));
  }
  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }
  i16(): number {
    return this.view.getInt16(this.take(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }
  i32(): number {
    return this.view.getInt32(this.take(4), true);
  }
  f32(): number {
    return this.view.getFloat32(this.take(4), true);
  }
  f64(): number {
    return this.view.getFloat64(this.take(8), true);
  }
  u64(): number {
    return Number(this.view.getBigUint64(this.take(8), true));
  }
  i64(): number {
    return Number(this.view.getBigInt64(this.take(8), true));
  }
  string(what: string): string {
    const length = this.u64();
    if (length > this.remainingInHeader)
      throw new InvalidModelError(`GGUF ${what} claims ${length} bytes but only ${this.remainingInHeader} remain in the file's header`);
    const start = this.take(length);
    return this.buffer.toString('utf8', start, start + length);
  }
}

function readValue(cursor: HeaderCursor, type: number, key: string, depth = 0): GgufValue {
  switch (type) {
    case GgufValueType.UINT8:
      return cursor.u8();
    case GgufValueType.INT8:
      return cursor.i8();
    case GgufValueType.UINT16:
      return cursor.u16();
    case GgufValueType.INT16:
      return cursor.i16();
    case GgufValueType.UINT32:
      return cursor.u32();
    case GgufValueType.INT32:
      return cursor.i32();
    case GgufValueType.FLOAT32:
      return cursor.f32();
    case GgufValueType.BOOL:
      return cursor.u8() !== 0;
    case GgufValueType.STRING:
      return cursor.string(`value of "${key}"`);
    case GgufValueType.UINT64:
      return cursor.u64();
    case GgufValueType.INT64:
      return cursor.i64();
    case GgufValueType.FLOAT64:
      return cursor.f64();
    case GgufValueType.ARRAY: {
      const elementType = cursor.u32();
      const count = cursor.u64();
      const minimum = minimumValueBytes(elementType);
      if (minimum === undefined) throw new InvalidModelError(`GGUF metadata "${key}" is an array of unknown type ${elementType}`);
      if (elementType === GgufValueType.ARRAY && depth + 1 >= maxGgufArrayDepth)
        throw new InvalidModelError(`GGUF metadata "${key}" nests arrays deeper than ${maxGgufArrayDepth} levels`);
      // Checked before allocating anything: a corrupt count must not make us allocate gigabytes.
      if (count > maxGgufArrayElements) throw new InvalidModelError(`GGUF metadata "${key}" claims ${count} array elements (at most ${maxGgufArrayElements})`);
      if (count * minimum > cursor.remainingInHeader) {
        throw new InvalidModelError(
          `GGUF metadata "${key}" claims ${count} array elements, more than the ${cursor.remainingInHeader} bytes left in the file's header can hold`,
        );
      }
      cursor.elements += count;
      if (cursor.elements > maxGgufTotalElements) throw new InvalidModelError(`GGUF metadata holds more than ${maxGgufTotalElements} array elements in all`);
      const values: GgufValue[] = new Array<GgufValue>(count);
      for (let index = 0; index < count; index++) values[index] = readValue(cursor, elementType, key, depth + 1);
      return values;
    }
    default:
      throw new InvalidModelError(`GGUF metadata "${key}" has unknown value type ${type}`);
  }
}

function parseHeader(path: string, buffer: Buffer, fileSize: number, maxHeaderBytes: number): GgufHeader {
  const cursor = new HeaderCursor(buffer, fileSize, maxHeaderBytes);
  if (fileSize < 4) throw new InvalidModelError(`Not a GGUF file (${fileSize} bytes): ${path}`);
  const magic = buffer.toString('latin1', 0, Math.min(4, buffer.length));
  if (magic !== 'GGUF') throw new InvalidModelError(`Not a GGUF file: the magic is ${JSON.stringify(magic)} instead of "GGUF"`);
  cursor.u32();
  const version = cursor.u32();
  if (version !== 2 && version !== 3) throw new InvalidModelError(`Unsupported GGUF version ${version} (2 and 3 are supported)`);
  const tensorCount = cursor.u64();
  const kvCount = cursor.u64();
  if (kvCount > maxGgufMetadataEntries || kvCount * 13 > cursor.remainingInHeader)
    throw new InvalidModelError(
      `GGUF header claims ${kvCount} metadata entries, more than ${Math.min(maxGgufMetadataEntries, Math.floor(cursor.remainingInHeader / 13))}`,
    );
  // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
  if (tensorCount > maxGgufTensors || tensorCount * 24 > cursor.remainingInHeader)
    throw new InvalidModelError(`GGUF header claims ${tensorCount} tensors, more than ${Math.min(maxGgufTensors, Math.floor(cursor.remainingInHeader / 24))}`);

  const metadata = new Map<string, GgufValue>();
  for (let index = 0; index < kvCount; index++) {
    const key = cursor.string('metadata key');
    const type = cursor.u32();
    if (metadata.has(key)) throw new InvalidModelError(`GGUF metadata key "${key}" appears twice`);
    metadata.set(key, readValue(cursor, type, key));
  }

  const tensors: GgufTensorInfo[] = [];
  for (let index = 0; index < tensorCount; index++) {
    const name = cursor.string('tensor name');
    const nDims = cursor.u32();
    if (nDims < 1 || nDims > 4) throw new InvalidModelError(`GGUF tensor "${name}" has ${nDims} dimensions (1 to 4 are valid)`);
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const dim = cursor.u64();
      dims.push(dim);
      elements *= dim;
    }
    const type = cursor.u32();
    const offset = cursor.u64();
    const info = ggmlTypes.get(type);
    const byteSize = info === undefined ? null : Math.ceil(elements / info.blockSize) * info.typeSize;
    tensors.push({ name, dims, type, offset, elements, byteSize });
  }

  const alignmentValue = metadata.get('general.alignment');
  const alignment = typeof alignmentValue === 'number' && alignmentValue > 0 ? alignmentValue : 32;
  const headerBytes = cursor.offset;
  const dataOffset = Math.ceil(headerBytes / alignment) * alignment;
  return { path, version, fileSize, metadata, tensors, alignment, dataOffset, headerBytes };
}

/**
 * Reads the header of a GGUF file (metadata and tensor infos) without reading any weights.
 * Reads grow from 1 MiB until the header fits, bounded by `maxHeaderBytes`. Malformed headers
 * throw `InvalidModelError`.
 */
export async function readGgufHeader(path: string, options: ReadGgufHeaderOptions = {}): Promise<GgufHeader> {
  const maxHeaderBytes = options.maxHeaderBytes ?? defaultMaxHeaderBytes;
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new InvalidModelError(`Cannot open GGUF file ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const fileSize = (await handle.stat()).size;
    let want = Math.min(fileSize, initialReadBytes);
    for (;;) {
      const buffer = Buffer.alloc(want);
      const { bytesRead } = await handle.read(buffer, 0, want, 0);
      try {
        return parseHeader(path, buffer.subarray(0, bytesRead), fileSize, maxHeaderBytes);
      } catch (error) {
        if (!(error instanceof NeedMoreBytes)) throw error;
        if (want >= maxHeaderBytes) throw new InvalidModelError(`GGUF header of ${path} is larger than ${maxHeaderBytes} bytes`);
        want = Math.min(fileSize, want * 4, maxHeaderBytes);
      }
    }
  } finally {
    await handle.close();
  }
}
