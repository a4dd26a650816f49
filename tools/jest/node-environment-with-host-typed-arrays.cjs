// Jest runs each test file in its own VM realm with its own typed-array constructors.
// onnxruntime-node checks `data instanceof Float32Array` against the host realm and fails with
// "A float32 tensor's data must be type of function Float32Array()". Copying the host realm's
// constructors into the test realm makes tensors built in tests acceptable to ORT (and keeps
// Buffer/ArrayBuffer identity consistent for better-sqlite3, LanceDB and node-llama-cpp).
const { TestEnvironment } = require('jest-environment-node');

const hostConstructors = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
];

class NodeEnvironmentWithHostTypedArrays extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of hostConstructors) {
      if (globalThis[name] !== undefined) this.global[name] = globalThis[name];
    }
  }
}

module.exports = NodeEnvironmentWithHostTypedArrays;
