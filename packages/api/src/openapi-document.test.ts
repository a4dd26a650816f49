import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { defineRoute, routeList, type AnyRouteDefinition } from '@tabagent/values';
import { z } from 'zod';
import { buildOpenApiDocument } from './openapi-document.js';
import { startTestServer, type TestServer } from './test-support/test-provider.js';

interface Operation {
  operationId: string;
  summary: string;
  tags: string[];
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, { content: Record<string, { schema: unknown }> }>;
}

describe('OpenAPI document and Swagger UI', () => {
  let server: TestServer;
  let document: {
    openapi: string;
    info: { version: string };
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, unknown> };
  };
  beforeAll(async () => {
    server = await startTestServer({ version: '1.2.3' });
    const response = await fetch(`${server.baseUrl}/api-doc/openapi.json`);
    expect(response.status).toBe(200);
    document = (await response.json()) as typeof document;
  });
  afterAll(async () => {
    await server.close();
  });

  it('is an OpenAPI 3 document with the configured version', () => {
    expect(document.openapi).toBe('3.0.3');
    expect(document.info.version).toBe('1.2.3');
  });

  it('lists every catalogue route exactly once, with operationId, summary and tags', () => {
    const operations = Object.values(document.paths).flatMap((item) => Object.values(item));
    expect(operations).toHaveLength(routeList.length);
    for (const route of routeList) {
      const operation = document.paths[route.path]?.[route.method.toLowerCase()];
      expect({ id: route.id, operationId: operation?.operationId }).toEqual({ id: route.id, operationId: route.id });
      expect(operation?.summary).toBe(route.summary);
      expect(operation?.tags).toEqual([...route.tags]);
      expect(operation?.responses.default?.content['application/problem+json']?.schema).toEqual({ $ref: '#/components/schemas/ProblemDetails' });
      expect(operation?.responses['200']?.content['application/json']).toBeDefined();
      if (route.method !== 'GET') expect(operation?.requestBody?.content['application/json']).toBeDefined();
    }
  });

  it('documents path parameters, GET query parameters and the SSE chunk schema', () => {
    const modelGet = document.paths['/v1/models/{model}']?.get;
    expect(modelGet?.parameters).toEqual([expect.objectContaining({ in: 'path', name: 'model' })]);
    const logs = document.paths['/v1/logs']?.get;
    expect(logs?.parameters?.map((parameter) => `${parameter.in}:${parameter.name}`)).toEqual(['query:lines']);
    const chat = document.paths['/v1/chat/completions']?.post;
    expect(chat?.responses['200']?.content['text/event-stream']?.schema).toEqual({ $ref: '#/components/schemas/ChatCompletionChunk' });
    expect(document.components.schemas.ChatCompletionRequest).toBeDefined();
  });

  it('serves the same cached document on every request', async () => {
    const again = await fetch(`${server.baseUrl}/api-doc/openapi.json`);
    expect(await again.json()).toEqual(document);
  });

  it('serves Swagger UI as HTML when asked to', async () => {
    const withUi = await startTestServer({ swaggerUi: true });
    try {
      const response = await fetch(`${withUi.baseUrl}/swagger-ui/`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await response.text();
      expect(html).toContain('swagger-ui');
      const init = await fetch(`${withUi.baseUrl}/swagger-ui/swagger-ui-init.js`);
      expect(init.status).toBe(200);
      expect(await init.text()).toContain('"operationId": "chat.completions"');
    } finally {
      await withUi.close();
    }
  });

  it('does not serve Swagger UI by default, nor when disabled', async () => {
    const plain = await startTestServer({ swaggerUi: false });
    try {
      for (const base of [server.baseUrl, plain.baseUrl]) {
        const response = await fetch(`${base}/swagger-ui/`);
        expect({ base, status: response.status }).toEqual({ base, status: 404 });
      }
    } finally {
      await plain.close();
    }
  });

  it('documents the bearer scheme on every route but health when an API key is configured', () => {
    const secured = buildOpenApiDocument(routeList, { version: '1', apiKeyRequired: true }) as unknown as {
      paths: Record<string, Record<string, { security?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(secured.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer' });
    expect(secured.paths['/v1/health']?.get?.security).toBeUndefined();
    expect(secured.paths['/v1/chat/completions']?.post?.security).toEqual([{ bearerAuth: [] }]);
  });

  it('names the route whose schema cannot be described instead of leaving it out', () => {
    const broken = defineRoute({
      id: 'broken.route',
      method: 'POST',
      path: '/v1/broken',
      summary: 'A schema OpenAPI cannot express',
      tags: ['test'],
      request: z.object({ when: z.custom<Date>((value) => value instanceof Date) }),
      response: z.object({}),
    });
    expect(() => buildOpenApiDocument([...(routeList as readonly AnyRouteDefinition[]).slice(0, 2), broken], { version: '1', apiKeyRequired: false })).toThrow(
      /^Cannot describe route broken.route in OpenAPI/,
    );
  });
});
