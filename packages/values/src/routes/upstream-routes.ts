import { z } from 'zod';
import { defineRoute } from '../route-definition.js';
import { EmptyRequest } from './common-schemas.js';

export const UpstreamMemberStatus = z
  .object({
    url: z.string().describe('The base URL requests go to (without its key, which is never shown).'),
    state: z
      .enum(['unknown', 'up', 'down', 'cooling'])
      .describe(
        '`unknown`: not contacted yet; `up`: its last call worked; `down`: its last call failed; `cooling`: skipped until `cooldown_until` after a failure.',
      ),
    in_flight: z.number().int().nonnegative(),
    max_in_flight: z.number().int().positive(),
    requests: z.number().int().nonnegative().describe('Calls sent to this member since start.'),
    failures: z.number().int().nonnegative(),
    models: z.array(z.string()).describe("The member's own model ids, as its `GET /models` listed them."),
    last_error: z.string().nullable(),
    last_error_at: z.string().nullable(),
    last_refresh_at: z.string().nullable().describe('When its model list was last read.'),
    cooldown_until: z.string().nullable(),
  })
  .meta({ id: 'UpstreamMemberStatus' });

export const UpstreamsResponse = z
  .object({
    upstreams: z.array(
      z.object({
        name: z.string(),
        models: z.array(z.string()).describe('The models served under this name, as requests name them (`NAME/MODEL`).'),
        members: z.array(UpstreamMemberStatus),
      }),
    ),
  })
  .meta({ id: 'UpstreamsResponse' });

export const upstreamsListRoute = defineRoute({
  id: 'upstreams.list',
  method: 'GET',
  path: '/v1/upstreams',
  summary: 'Upstream engines (vLLM, llama-server, Ollama, another TabAgent): members, state, in-flight requests, models, last error',
  description:
    'Configured with `tabagent serve --upstream NAME=BASE_URL` (repeatable; the same NAME twice makes a pool) or `<data-dir>/upstreams.json`. Their models are served as `NAME/MODEL` on every generation and embedding route.',
  tags: ['models'],
  request: EmptyRequest,
  response: UpstreamsResponse,
});

export const upstreamsRefreshRoute = defineRoute({
  id: 'upstreams.refresh',
  method: 'POST',
  path: '/v1/upstreams/refresh',
  summary: "Read every upstream's model list again now (it is read at start and every minute)",
  tags: ['models'],
  request: EmptyRequest,
  response: UpstreamsResponse,
});
