export {
  checkUpstreamName,
  checkUpstreamUrl,
  splitNamed,
  resolveUpstreams,
  upstreamDefaults,
  upstreamKeyVariable,
  UpstreamsFile,
  type UpstreamMemberConfig,
  type UpstreamsConfig,
  type UpstreamSources,
} from './upstream-config.js';
export { createUpstreamEngine, upstreamFormat, type UpstreamEngine, type UpstreamsStatus } from './upstream-engine.js';
export { OpenAiStreamDecoder, openAiChatBodyOf, openAiCompletionBodyOf } from './openai-wire.js';
