import { z } from 'zod';
import { defineRoute } from '../route-definition.js';
import { EmptyRequest } from './common-schemas.js';

/** What a pairing token opens: `chat` (generation, embeddings, the model list) or `full` (every route). */
export const PairingScope = z.enum(['chat', 'full']);

/** Routes a `chat`-scoped pairing token may call (HTTP and Ollama's API alike). */
export const chatScopeRouteIds = [
  'health',
  'chat.completions',
  'completions',
  'ollama.chat',
  'ollama.generate',
  'legacy.generate',
  'anthropic.messages',
  'anthropic.count_tokens',
  'responses.create',
  'responses.input_tokens',
  // A stored response is its caller's only (as a running generation is).
  'responses.get',
  'responses.delete',
  'responses.input_items',
  'embeddings',
  'models.list',
  'models.get',
  'models.loaded',
  'generation.stop',
] as const;

/** An exact origin, `scheme://host[:port]` (no path, credentials or wildcard), or `*`. */
export const PairingOrigin = z
  .string()
  .max(300)
  .regex(/^(\*|[a-z][a-z0-9+.-]*:\/\/[^\s/?#@*]+)$/u, 'an origin is scheme://host[:port], e.g. http://localhost:5173, or "*"');

export const CreatePairingRequest = z
  .object({
    label: z.string().min(1).max(100).describe('Who the token is for, shown when listing (e.g. "side panel web app").'),
    scope: PairingScope.default('chat'),
    ttl_seconds: z.number().int().min(60).max(31_536_000).optional().describe('Lifetime in seconds (at most a year); default 30 days.'),
    origin: PairingOrigin.optional().describe(
      'The web origin (scheme://host[:port], as a browser sends it) the token works from: a request with another Origin is refused, so a token that leaks cannot be used by another web site. "*" or none: any origin.',
    ),
  })
  .meta({ id: 'CreatePairingRequest' });

const PairingInfo = z.object({
  id: z.string(),
  label: z.string(),
  scope: PairingScope,
  origin: z.string().describe('The origin the token works from, or "*" for any.'),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
});

export const CreatePairingResponse = PairingInfo.extend({
  token: z.string().describe('Send as `Authorization: Bearer <token>`. Shown once; the server keeps only its hash.'),
}).meta({ id: 'CreatePairingResponse' });
export const PairingListResponse = z.object({ pairings: z.array(PairingInfo) }).meta({ id: 'PairingListResponse' });
export const RevokePairingRequest = z.object({ id: z.string().min(1).max(100) }).meta({ id: 'RevokePairingRequest' });
export const RevokePairingResponse = z.object({ status: z.enum(['revoked', 'not_found']), id: z.string() }).meta({ id: 'RevokePairingResponse' });

export const pairingCreateRoute = defineRoute({
  id: 'pairing.create',
  method: 'POST',
  path: '/v1/pairing',
  summary: 'Mint a scoped, revocable token for a browser caller (native messaging only)',
  description:
    'Only the extension, which the browser authenticates through native messaging, may mint one. A web page or WebRTC peer then presents it as a bearer token; its origin needs no allowlist entry.',
  tags: ['security'],
  request: CreatePairingRequest,
  response: CreatePairingResponse,
});

export const pairingListRoute = defineRoute({
  id: 'pairing.list',
  method: 'GET',
  path: '/v1/pairing',
  summary: 'Pairing tokens (without the tokens); native messaging or the API key',
  tags: ['security'],
  request: EmptyRequest,
  response: PairingListResponse,
});

export const pairingRevokeRoute = defineRoute({
  id: 'pairing.revoke',
  method: 'DELETE',
  path: '/v1/pairing/{id}',
  summary: 'Revoke a pairing token; native messaging or the API key',
  tags: ['security'],
  request: RevokePairingRequest,
  response: RevokePairingResponse,
});
