import { z } from 'zod';
import { defineRoute, largeBodyBytes } from '../route-definition.js';
import { Usage } from './common-schemas.js';

// The extension's legacy `generate` action (reference/extension-protocol.md): messages, the
// extension's InferenceSettings (Hugging Face generation-config names) and one answer with its
// stats. Converting it to the internal generation contract is the legacy codec's work (services).

export const LegacyGenerateRequest = z
  .object({
    model: z.string().min(1).optional(),
    model_id: z.string().min(1).optional().describe('The older name of model.'),
    messages: z
      .array(z.object({ role: z.enum(['system', 'developer', 'user', 'assistant']), content: z.string().nullish() }))
      .describe('The conversation, as {role, content}.'),
    settings: z
      .record(z.string(), z.unknown())
      .nullish()
      .describe('InferenceSettings: temperature, max_new_tokens, top_k, top_p, min_p, repetition_penalty, seed, stop, system_prompt; other keys are ignored.'),
    stream: z.boolean().nullish().describe('Ignored: the action answers once, as the original host did.'),
  })
  .meta({ id: 'LegacyGenerateRequest' });

export const LegacyGenerateResponse = z
  .object({
    text: z.string(),
    stats: z.object({
      time_to_first_token: z.number().describe('Milliseconds.'),
      tokens_per_second: z.number(),
      input_tokens: z.number().int(),
      output_tokens: z.number().int(),
      total_time: z.number().describe('Milliseconds.'),
    }),
    finish_reason: z.enum(['stop', 'length', 'tool_calls']),
    model: z.string(),
    request_id: z.string(),
    usage: Usage,
  })
  .meta({ id: 'LegacyGenerateResponse' });

export const legacyGenerateRoute = defineRoute({
  id: 'legacy.generate',
  maxBodyBytes: largeBodyBytes,
  method: 'POST',
  path: '/v1/legacy/generate',
  summary: "The extension's legacy generate action (one answer with its stats)",
  description:
    'What the native host answers to `{action: "generate"}`: the same generation as chat completions, with the extension\'s setting names and reply shape.',
  tags: ['generation'],
  request: LegacyGenerateRequest,
  response: LegacyGenerateResponse,
});
