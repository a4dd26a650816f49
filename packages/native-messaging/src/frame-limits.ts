/** Chrome's limit on one message from the host to the browser: 1 MB of JSON. */
export const defaultMaxOutgoingBytes = 1_048_576;

/** Chrome's limit on one message from the browser to the host: 64 MiB of JSON. */
export const defaultMaxIncomingBytes = 64 * 1024 * 1024;

/** Bytes of the length prefix in front of every frame. */
export const frameHeaderBytes = 4;
