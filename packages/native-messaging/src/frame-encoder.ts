import { frameHeaderBytes } from './frame-limits.js';

/**
 * Frames JSON text: a 32-bit little-endian byte length followed by the UTF-8 bytes.
 * Little-endian is the native byte order on every platform Chrome ships native messaging for.
 */
export function encodeFrameText(json: string): Buffer {
  const bodyBytes = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(frameHeaderBytes + bodyBytes);
  frame.writeUInt32LE(bodyBytes, 0);
  frame.write(json, frameHeaderBytes, 'utf8');
  return frame;
}

/** Serialises a message as JSON and frames it (see `encodeFrameText`). */
export function encodeFrame(message: unknown): Buffer {
  // JSON.stringify(undefined) is undefined, not text (its lib type says string).
  return encodeFrameText(JSON.stringify(message ?? null));
}
