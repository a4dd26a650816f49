export { createApiRouter, mcpPath, metricsPath, openApiDocumentPath, swaggerUiPath } from './create-api-router.js';
export { createApiApp } from './create-api-app.js';
export { createApiHttpServer, maxApiConnections } from './create-api-http-server.js';
export { type ApiRouterOptions, type McpHttpHandler } from './api-router-options.js';
export { buildOpenApiDocument, ProblemDetailsSchema, type OpenApiDocument, type OpenApiDocumentOptions } from './openapi-document.js';
export { MethodNotAllowedError } from './method-not-allowed-error.js';
export { problemContentType } from './problem-response.js';
export type { RequestRefusal } from './refusal-tracking.js';
