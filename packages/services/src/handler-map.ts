import type { Handler, HandlerMap, RouteId } from '@tabagent/values';
import type { createEmbeddingHandlers } from './handlers/embedding-handlers.js';
import type { createGenerationHandlers } from './handlers/generation-handlers.js';
import type { createMemoryHandlers } from './handlers/memory-handlers.js';
import type { createModelDownloadHandlers } from './handlers/model-download-handlers.js';
import type { createModelHandlers } from './handlers/model-handlers.js';
import { createNotBuiltHandlers } from './handlers/not-built-handlers.js';
import { missingCapabilityFor } from './handlers/compose-handlers.js';
import type { createPairingHandlers } from './handlers/pairing-handlers.js';
import type { createSystemHandlers } from './handlers/system-handlers.js';

type WebRtcRouteId = Extract<RouteId, `webrtc.${string}`>;

/** The handler groups of a server, built by `openServices`. */
export interface HandlerGroups {
  system: ReturnType<typeof createSystemHandlers>;
  models: ReturnType<typeof createModelHandlers>;
  pairing: ReturnType<typeof createPairingHandlers>;
  downloads: ReturnType<typeof createModelDownloadHandlers>;
  generation: ReturnType<typeof createGenerationHandlers>;
  /** `chat.completions` with the `memory` option (`withChatMemory` over the generation group's). */
  chatWithMemory: Handler<'chat.completions'>;
  embeddings: ReturnType<typeof createEmbeddingHandlers>;
  memory: ReturnType<typeof createMemoryHandlers>;
  /** The WebRTC transport's signalling handlers; absent ones answer 501 (the transport is off). */
  webrtc: Partial<Pick<HandlerMap, WebRtcRouteId>>;
}

/**
 * Every route's handler, by route id, in catalogue order: "go to definition" on a value leads to
 * the handler itself, and `HandlerMap` makes a route without one a compile error. This table is
 * the server's handler map (`openServices`); `composeHandlers` remains for partial maps in tests.
 */
export function serverHandlerMap(groups: HandlerGroups): HandlerMap {
  const { system, models, pairing, downloads, generation, embeddings, memory } = groups;
  const webrtc = { ...createNotBuiltHandlers(missingCapabilityFor), ...groups.webrtc };
  return {
    health: system.health,
    'routes.list': system['routes.list'],
    'system.logs': system['system.logs'],
    'system.info': system['system.info'],
    'hardware.info': system['hardware.info'],
    'hardware.feasibility': system['hardware.feasibility'],
    'hardware.recommendations': system['hardware.recommendations'],
    'resources.get': system['resources.get'],
    'resources.estimate': models['resources.estimate'],
    'resources.compatibility': models['resources.compatibility'],
    'stats.get': generation['stats.get'],
    'chat.completions': groups.chatWithMemory,
    completions: generation.completions,
    'generation.stop': generation['generation.stop'],
    'generation.halt_status': generation['generation.halt_status'],
    'generation.halt': generation['generation.halt'],
    'params.get': generation['params.get'],
    'params.set': generation['params.set'],
    'models.list': models['models.list'],
    'models.loaded': models['models.loaded'],
    'models.get': models['models.get'],
    'models.load': models['models.load'],
    'models.unload': models['models.unload'],
    'models.select': models['models.select'],
    'models.pull': downloads['models.pull'],
    'models.scan': downloads['models.scan'],
    'models.recommended': downloads['models.recommended'],
    'models.downloads': downloads['models.downloads'],
    'models.downloads.discard': downloads['models.downloads.discard'],
    'models.register': models['models.register'],
    'models.delete': models['models.delete'],
    'models.alias': models['models.alias'],
    'upstreams.list': models['upstreams.list'],
    'upstreams.refresh': models['upstreams.refresh'],
    'hf.token.set': system['hf.token.set'],
    'hf.token.status': system['hf.token.status'],
    'hf.token.clear': system['hf.token.clear'],
    'pairing.create': pairing['pairing.create'],
    'pairing.list': pairing['pairing.list'],
    'pairing.revoke': pairing['pairing.revoke'],
    embeddings: embeddings.embeddings,
    rerank: embeddings.rerank,
    similarity: embeddings.similarity,
    semantic_search: embeddings.semantic_search,
    'embeddings.evaluate': embeddings['embeddings.evaluate'],
    cluster: embeddings.cluster,
    recommend: embeddings.recommend,
    'embedding_models.list': embeddings['embedding_models.list'],
    'rag.query': memory['rag.query'],
    'sessions.history': memory['sessions.history'],
    'sessions.save_message': memory['sessions.save_message'],
    'conversations.create': memory['conversations.create'],
    'conversations.list': memory['conversations.list'],
    'conversations.search': memory['conversations.search'],
    'conversations.get': memory['conversations.get'],
    'conversations.delete': memory['conversations.delete'],
    'conversations.add_messages': memory['conversations.add_messages'],
    'sync.push': memory['sync.push'],
    'sync.pull': memory['sync.pull'],
    'documents.ingest': memory['documents.ingest'],
    'documents.list': memory['documents.list'],
    'documents.get': memory['documents.get'],
    'memory.status': memory['memory.status'],
    'memory.settings.get': memory['memory.settings.get'],
    'memory.settings.set': memory['memory.settings.set'],
    'webrtc.offer': webrtc['webrtc.offer'],
    'webrtc.answer': webrtc['webrtc.answer'],
    'webrtc.ice': webrtc['webrtc.ice'],
    'webrtc.session': webrtc['webrtc.session'],
    'ollama.chat': generation['ollama.chat'],
    'ollama.generate': generation['ollama.generate'],
    'legacy.generate': generation['legacy.generate'],
    'anthropic.messages': generation['anthropic.messages'],
    'anthropic.count_tokens': generation['anthropic.count_tokens'],
    'responses.create': generation['responses.create'],
    'responses.input_tokens': generation['responses.input_tokens'],
    'responses.get': generation['responses.get'],
    'responses.delete': generation['responses.delete'],
    'responses.input_items': generation['responses.input_items'],
  };
}
