import { closeSync, openSync, writeSync } from 'node:fs';

/** A metadata value to write, with its GGUF type. */
export type GgufWriteValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'u64'; value: number }
  | { type: 'string[]'; value: readonly string[]; countOverride?: number }
  | { type: 'i32[]'; value: readonly number[]; countOverride?: number }
  | { type: 'f32[]'; value: readonly number[]; countOverride?: number };

/** A tensor to write; `data` produces its bytes when the file is written (keeps big files out of memory). */
export interface GgufWriteTensor {
  name: string;
  /** ggml order: ne0 first. */
  dims: number[];
  /** ggml type id (0 F32, 1 F16). */
  type: number;
  /** Byte length of the data. */
  byteSize: number;
  data: () => Uint8Array;
  /** Overrides the computed offset (broken fixtures only). */
  offsetOverride?: number;
}

/** Encodes GGUF v3 header pieces into a growable byte list. */
class ByteSink {
  private readonly chunks: Buffer[] = [];
  length = 0;
  push(buffer: Buffer): void {
    this.chunks.push(buffer);
    this.length += buffer.length;
  }
  u32(value: number): void {
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32LE(value >>> 0);
    this.push(buffer);
  }
  i32(value: number): void {
    const buffer = Buffer.alloc(4);
    buffer.writeInt32LE(value);
    this.push(buffer);
  }
  f32(value: number): void {
    const buffer = Buffer.alloc(4);
    buffer.writeFloatLE(value);
    this.push(buffer);
  }
  u64(value: number): void {
    const buffer = Buffer.alloc(8);
    buffer.writeBigUInt64LE(BigInt(value));
    this.push(buffer);
  }
  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeValue(sink: ByteSink, value: GgufWriteValue): void {
  switch (value.type) {
    case 'u32':
      sink.u32(4);
      sink.u32(value.value);
      return;
    case 'i32':
      sink.u32(5);
      sink.i32(value.value);
      return;
    case 'f32':
      sink.u32(6);
      sink.f32(value.value);
      return;
    case 'bool':
      sink.u32(7);
      sink.push(Buffer.from([value.value ? 1 : 0]));
      return;
    case 'string':
      sink.u32(8);
      sink.string(value.value);
      return;
    case 'u64':
      sink.u32(10);
      sink.u64(value.value);
      return;
    case 'string[]':
      sink.u32(9);
      sink.u32(8);
      sink.u64(value.countOverride ?? value.value.length);
      for (const entry of value.value) sink.string(entry);
      return;
    case 'i32[]':
      sink.u32(9);
      sink.u32(5);
      sink.u64(value.countOverride ?? value.value.length);
      for (const entry of value.value) sink.i32(entry);
      return;
    case 'f32[]':
      sink.u32(9);
      sink.u32(6);
      sink.u64(value.countOverride ?? value.value.length);
      for (const entry of value.value) sink.f32(entry);
      return;
  }
}

const alignment = 32;
const alignUp = (value: number): number => Math.ceil(value / alignment) * alignment;

/** Options of `writeGgufFile`. */
export interface WriteGgufFileOptions {
  /** Cut the file to this many bytes after writing (truncation fixtures). */
  truncateTo?: number;
  /** Overrides the version field. */
  version?: number;
  /** Overrides the magic. */
  magic?: string;
}

/** Writes a GGUF v3 file: header, padding, tensor data each padded to 32 bytes. */
export function writeGgufFile(
  path: string,
  metadata: ReadonlyArray<readonly [string, GgufWriteValue]>,
  tensors: readonly GgufWriteTensor[],
  options: WriteGgufFileOptions = {},
): void {
  const sink = new ByteSink();
  sink.push(Buffer.from(options.magic ?? 'GGUF', 'latin1'));
  sink.u32(options.version ?? 3);
  sink.u64(tensors.length);
  sink.u64(metadata.length);
  for (const [key, value] of metadata) {
    sink.string(key);
    writeValue(sink, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const tensor of tensors) {
    sink.string(tensor.name);
    sink.u32(tensor.dims.length);
    for (const dim of tensor.dims) sink.u64(dim);
    sink.u32(tensor.type);
    sink.u64(tensor.offsetOverride ?? offset);
    offsets.push(offset);
    offset = alignUp(offset + tensor.byteSize);
  }
  const header = sink.toBuffer();
  const fd = openSync(path, 'w');
  try {
    let written = 0;
    const write = (bytes: Uint8Array): void => {
      if (options.truncateTo !== undefined) {
        const room = options.truncateTo - written;
        if (room <= 0) return;
        if (bytes.length > room) bytes = bytes.subarray(0, room);
      }
      writeSync(fd, bytes);
      written += bytes.length;
    };
    write(header);
    write(Buffer.alloc(alignUp(header.length) - header.length));
    for (const tensor of tensors) {
      if (options.truncateTo !== undefined && written >= options.truncateTo) break;
      const data = tensor.data();
      write(data);
      write(Buffer.alloc(alignUp(data.length) - data.length));
    }
  } finally {
    closeSync(fd);
  }
}
