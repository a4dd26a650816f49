import { z } from 'zod';
import { defineRoute } from '../route-definition.js';
import { EmptyRequest, QueryInt } from './common-schemas.js';

export const HealthResponse = z
  .object({
    status: z.enum(['ok', 'degraded']),
    service: z.literal('tabagent-server'),
    version: z.string(),
    uptime_seconds: z.number().nonnegative(),
    timestamp: z.string().describe('RFC 3339 time of the answer.'),
  })
  .meta({ id: 'HealthResponse' });

export const RouteSummary = z.object({
  id: z.string(),
  method: z.enum(['GET', 'POST', 'PUT', 'DELETE']),
  path: z.string(),
  aliases: z.array(z.string()),
  summary: z.string(),
  tags: z.array(z.string()),
  streaming: z.boolean(),
});

export const RoutesResponse = z.object({ routes: z.array(RouteSummary), total: z.number().int() }).meta({ id: 'RoutesResponse' });

export const LogsRequest = z.object({ lines: QueryInt(1, 10000).default(200) }).meta({ id: 'LogsRequest' });
export const LogsResponse = z
  .object({
    lines: z.string().describe('The last lines of the log file, newline-separated (the extension shows this string as is).'),
    log_file: z.string().nullable(),
    total_lines: z.number().int().nonnegative(),
  })
  .meta({ id: 'LogsResponse' });

export const healthRoute = defineRoute({
  id: 'health',
  method: 'GET',
  path: '/v1/health',
  aliases: ['/health'],
  summary: 'Liveness and version',
  description: "Rust path and shape (`service`, `version`), plus uptime. `/health` is kept for the extension's diagnostics tab.",
  tags: ['health'],
  request: EmptyRequest,
  response: HealthResponse,
});

export const routesRoute = defineRoute({
  id: 'routes.list',
  method: 'GET',
  path: '/v1/routes',
  summary: 'Every route of the catalogue (service discovery)',
  tags: ['health'],
  request: EmptyRequest,
  response: RoutesResponse,
});

export const logsRoute = defineRoute({
  id: 'system.logs',
  method: 'GET',
  path: '/v1/logs',
  summary: 'The last lines of the server log',
  description: "Backs the extension's `get_logs` action (`lines`, `log_file`, `total_lines`).",
  tags: ['system'],
  request: LogsRequest,
  response: LogsResponse,
});
