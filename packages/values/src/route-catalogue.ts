import type { z } from 'zod';
import { healthRoute, logsRoute, routesRoute } from './routes/health-routes.js';
import { ollamaChatRoute, ollamaGenerateRoute } from './routes/ollama-routes.js';
import { legacyGenerateRoute } from './routes/legacy-routes.js';
import { anthropicCountTokensRoute, anthropicMessagesRoute } from './routes/anthropic-routes.js';
import {
  responsesCreateRoute,
  responsesDeleteRoute,
  responsesGetRoute,
  responsesInputItemsRoute,
  responsesInputTokensRoute,
} from './routes/responses-routes.js';
import {
  hardwareFeasibilityRoute,
  hardwareInfoRoute,
  hardwareRecommendationsRoute,
  resourcesCompatibilityRoute,
  resourcesEstimateRoute,
  resourcesRoute,
  statsRoute,
  systemInfoRoute,
} from './routes/system-routes.js';
import {
  chatCompletionsRoute,
  completionsRoute,
  generationStopRoute,
  haltRoute,
  haltStatusRoute,
  paramsGetRoute,
  paramsSetRoute,
} from './routes/generation-routes.js';
import {
  hfTokenClearRoute,
  hfTokenSetRoute,
  hfTokenStatusRoute,
  modelsAliasRoute,
  modelsDeleteRoute,
  modelsGetRoute,
  modelsListRoute,
  modelsLoadRoute,
  modelsLoadedRoute,
  modelsPullRoute,
  modelsScanRoute,
  modelsRecommendedRoute,
  modelsDownloadsRoute,
  modelsDownloadsDiscardRoute,
  modelsRegisterRoute,
  modelsSelectRoute,
  modelsUnloadRoute,
} from './routes/model-routes.js';
import {
  clusterRoute,
  embeddingModelsRoute,
  embeddingsRoute,
  evaluateEmbeddingsRoute,
  ragQueryRoute,
  recommendRoute,
  rerankRoute,
  semanticSearchRoute,
  similarityRoute,
} from './routes/embedding-routes.js';
import {
  conversationsAddMessagesRoute,
  conversationsCreateRoute,
  conversationsDeleteRoute,
  conversationsGetRoute,
  conversationsListRoute,
  conversationsSearchRoute,
  documentsIngestRoute,
  documentsListRoute,
  documentsGetRoute,
  memorySettingsGetRoute,
  memorySettingsSetRoute,
  memoryStatusRoute,
  sessionHistoryRoute,
  sessionSaveMessageRoute,
  syncPullRoute,
  syncPushRoute,
} from './routes/memory-routes.js';
import { pairingCreateRoute, pairingListRoute, pairingRevokeRoute } from './routes/pairing-routes.js';
import { upstreamsListRoute, upstreamsRefreshRoute } from './routes/upstream-routes.js';
import { webrtcAnswerRoute, webrtcIceRoute, webrtcOfferRoute, webrtcSessionRoute } from './routes/webrtc-routes.js';
import type { RouteDefinition } from './route-definition.js';

/**
 * Every operation the server offers, in documentation order. Adding a route means adding it
 * here; the provider's handler map then fails to compile until it has a handler.
 */
export const routeList = [
  healthRoute,
  routesRoute,
  logsRoute,
  systemInfoRoute,
  hardwareInfoRoute,
  hardwareFeasibilityRoute,
  hardwareRecommendationsRoute,
  resourcesRoute,
  resourcesEstimateRoute,
  resourcesCompatibilityRoute,
  statsRoute,
  chatCompletionsRoute,
  completionsRoute,
  generationStopRoute,
  haltStatusRoute,
  haltRoute,
  paramsGetRoute,
  paramsSetRoute,
  modelsListRoute,
  modelsLoadedRoute,
  modelsGetRoute,
  modelsLoadRoute,
  modelsUnloadRoute,
  modelsSelectRoute,
  modelsPullRoute,
  modelsScanRoute,
  modelsRecommendedRoute,
  modelsDownloadsRoute,
  modelsDownloadsDiscardRoute,
  modelsRegisterRoute,
  modelsDeleteRoute,
  modelsAliasRoute,
  upstreamsListRoute,
  upstreamsRefreshRoute,
  hfTokenSetRoute,
  hfTokenStatusRoute,
  hfTokenClearRoute,
  pairingCreateRoute,
  pairingListRoute,
  pairingRevokeRoute,
  embeddingsRoute,
  rerankRoute,
  similarityRoute,
  semanticSearchRoute,
  evaluateEmbeddingsRoute,
  clusterRoute,
  recommendRoute,
  embeddingModelsRoute,
  ragQueryRoute,
  sessionHistoryRoute,
  sessionSaveMessageRoute,
  conversationsCreateRoute,
  conversationsListRoute,
  conversationsSearchRoute,
  conversationsGetRoute,
  conversationsDeleteRoute,
  conversationsAddMessagesRoute,
  syncPushRoute,
  syncPullRoute,
  documentsIngestRoute,
  documentsListRoute,
  documentsGetRoute,
  memoryStatusRoute,
  memorySettingsGetRoute,
  memorySettingsSetRoute,
  webrtcOfferRoute,
  webrtcAnswerRoute,
  webrtcIceRoute,
  webrtcSessionRoute,
  ollamaChatRoute,
  ollamaGenerateRoute,
  legacyGenerateRoute,
  anthropicMessagesRoute,
  anthropicCountTokensRoute,
  responsesCreateRoute,
  responsesInputTokensRoute,
  responsesGetRoute,
  responsesDeleteRoute,
  responsesInputItemsRoute,
] as const;

type RouteUnion = (typeof routeList)[number];

/** Route definitions keyed by id. */
export type RouteCatalogue = { readonly [R in RouteUnion as R['id']]: R };

/** Stable id of a route (`chat.completions`, `models.load`, ...). */
export type RouteId = keyof RouteCatalogue;

/** The catalogue keyed by route id. */
export const routeCatalogue = Object.freeze(Object.fromEntries(routeList.map((route) => [route.id, route]))) as unknown as RouteCatalogue;

/** Every route id, in catalogue order. */
export const routeIds = routeList.map((route): RouteId => route.id);

/** Whether a string names a route of the catalogue. */
export function isRouteId(value: unknown): value is RouteId {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(routeCatalogue, value);
}

/** The definition of a route by id. */
export function getRoute<K extends RouteId>(id: K): RouteCatalogue[K] {
  return routeCatalogue[id];
}

/** What a handler receives for route K (after validation and defaults). */
export type RouteRequest<K extends RouteId> = z.output<RouteCatalogue[K]['request']>;
/** What a client may send for route K (before defaults). */
export type RouteRequestInput<K extends RouteId> = z.input<RouteCatalogue[K]['request']>;
/** The response of route K. */
export type RouteResponse<K extends RouteId> = z.input<RouteCatalogue[K]['response']>;
/** One stream chunk of route K (`never` for routes that do not stream). */
export type RouteChunk<K extends RouteId> = RouteCatalogue[K]['chunk'] extends z.ZodType ? z.input<RouteCatalogue[K]['chunk']> : never;
/** Ids of routes that can stream. */
export type StreamingRouteId = { [K in RouteId]: RouteCatalogue[K]['chunk'] extends z.ZodType ? K : never }[RouteId];

/** Any route definition, for code that walks the catalogue generically. */
export type AnyRouteDefinition = RouteDefinition<string, z.ZodType, z.ZodType, z.ZodType | undefined>;
