import { OpenAPIRegistry, OpenApiGeneratorV3, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { AnyRouteDefinition } from '@tabagent/values';

/** The OpenAPI 3.0 document type produced by `buildOpenApiDocument`. */
export type OpenApiDocument = ReturnType<OpenApiGeneratorV3['generateDocument']>;

/** Options of `buildOpenApiDocument`. */
export interface OpenApiDocumentOptions {
  /** `info.version`. */
  version: string;
  /** Whether routes other than health require the bearer API key (documents the scheme). */
  apiKeyRequired: boolean;
}

/** RFC 7807 problem document, the body of every error response. */
export const ProblemDetailsSchema = z
  .object({
    type: z.string().describe('URI of the problem type, https://tabagent.dev/errors/<code>.'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe('Stable machine-readable error code (model_not_found, invalid_request, ...).'),
    instance: z.string().optional(),
    retryable: z.boolean().optional(),
    request_id: z.string().optional(),
    issues: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('Each field that failed validation (invalid_request only).'),
  })
  .catchall(z.unknown())
  .meta({ id: 'ProblemDetails' });

const pathParameterPattern = /\{([^}]+)\}/g;

/** Names of the `{param}` segments of an OpenAPI-style path. */
export function pathParameterNames(path: string): string[] {
  return [...path.matchAll(pathParameterPattern)].map((match) => match[1] as string);
}

/** The object schema behind a request schema (through a preprocess pipe), when there is one. */
function requestObjectSchema(schema: z.ZodType): z.ZodObject | undefined {
  if (schema instanceof z.ZodObject) return schema;
  if (schema instanceof z.ZodPipe && schema.out instanceof z.ZodObject) return schema.out;
  return undefined;
}

function describeRoute(route: AnyRouteDefinition): string {
  const parts: string[] = [];
  if (route.description !== undefined) parts.push(route.description);
  if (route.aliases !== undefined && route.aliases.length > 0) parts.push(`Also served at ${route.aliases.map((alias) => `\`${alias}\``).join(', ')}.`);
  parts.push(`Also served under the legacy prefix \`/api${route.path}\`.`);
  return parts.join('\n\n');
}

function routeConfig(route: AnyRouteDefinition, options: OpenApiDocumentOptions): RouteConfig {
  const paramNames = pathParameterNames(route.path);
  const request: NonNullable<RouteConfig['request']> = {};
  if (paramNames.length > 0) {
    request.params = z.object(Object.fromEntries(paramNames.map((name) => [name, z.string().min(1)])));
  }
  const objectSchema = requestObjectSchema(route.request);
  if (route.method === 'GET') {
    if (objectSchema !== undefined) {
      const queryKeys = Object.keys(objectSchema.shape).filter((key) => !paramNames.includes(key));
      if (queryKeys.length > 0) request.query = z.object(Object.fromEntries(queryKeys.map((key) => [key, objectSchema.shape[key] as z.ZodType])));
    }
  } else {
    request.body = { required: false, content: { 'application/json': { schema: route.request } } };
  }
  const okContent: NonNullable<RouteConfig['responses'][string]> & { content: Record<string, { schema: z.ZodType }> } = {
    description: route.chunk === undefined ? 'Success' : 'Success: JSON, or an SSE stream of chunks when the request sets `stream: true`',
    content: { 'application/json': { schema: route.response } },
  };
  if (route.chunk !== undefined) okContent.content['text/event-stream'] = { schema: route.chunk };
  const config: RouteConfig = {
    method: route.method.toLowerCase() as RouteConfig['method'],
    path: route.path,
    operationId: route.id,
    summary: route.summary,
    description: describeRoute(route),
    tags: [...route.tags],
    request,
    responses: {
      '200': okContent,
      default: { description: 'Error (RFC 7807 problem document)', content: { 'application/problem+json': { schema: ProblemDetailsSchema } } },
    },
  };
  if (options.apiKeyRequired && route.id !== 'health') config.security = [{ bearerAuth: [] }];
  return config;
}

/**
 * Builds the OpenAPI 3.0 document of a list of routes: one operation per route (operationId =
 * route id) with its path and query parameters, JSON body, response, SSE chunk schema and
 * problem response. Throws if a schema cannot be expressed, so a broken route is never silently
 * left out.
 */
export function buildOpenApiDocument(routes: readonly AnyRouteDefinition[], options: OpenApiDocumentOptions): OpenApiDocument {
  try {
    return generate(routes, options);
  } catch (cause) {
    // Name the culprit: regenerate route by route until one fails.
    for (const route of routes) {
      try {
        generate([route], options);
      } catch (routeCause) {
        throw new Error(`Cannot describe route ${route.id} in OpenAPI: ${routeCause instanceof Error ? routeCause.message : String(routeCause)}`, {
          cause: routeCause,
        });
      }
    }
    throw cause;
  }
}

function generate(routes: readonly AnyRouteDefinition[], options: OpenApiDocumentOptions): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  if (options.apiKeyRequired) registry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer' });
  for (const route of routes) registry.registerPath(routeConfig(route, options));
  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: {
      title: 'TabAgent Server',
      version: options.version,
      description:
        'Local AI server for the TabAgent browser extension. Errors are RFC 7807 problem documents; streams are Server-Sent Events ending with `data: [DONE]`.',
    },
    servers: [{ url: '/' }],
  });
}
