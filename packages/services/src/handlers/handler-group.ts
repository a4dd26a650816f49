import type { HandlerMap, RouteId } from '@tabagent/values';

/**
 * The handlers one backend contributes: a subset of the full map. Each backend (hardware,
 * gguf-loader, onnx-loader, memory, webrtc) has one `create<Group>Handlers(deps)` in this folder
 * returning a `HandlerGroup<...ids>`; `compose-handlers.ts` merges them into the complete map.
 */
export type HandlerGroup<K extends RouteId> = Pick<HandlerMap, K>;
