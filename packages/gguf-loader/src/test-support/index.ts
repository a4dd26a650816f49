export { writeTinyLlamaGguf, type TinyLlamaGgufOptions, type TinyLlamaGgufInfo } from './tiny-llama-gguf.js';
export { writeBrokenGguf, brokenGgufKinds, type BrokenGgufKind } from './broken-gguf.js';
export { writeGgufFile, type GgufWriteTensor, type GgufWriteValue, type WriteGgufFileOptions } from './gguf-file-builder.js';
export { chatMlToolsTemplate, thinkingChatTemplate } from './chat-templates.js';
