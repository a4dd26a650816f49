import { InvalidRequestError, safeParseJson } from '@tabagent/values';
import type { OllamaMessage } from './ollama-requests.js';

/** An OpenAI chat message, as the catalogue's chat route takes it. */
export interface OpenAiMessage {
  role: string;
  content: string | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  name?: string;
}

/**
 * Ollama's messages as OpenAI's. Ollama's tool calls carry no id and its tool results name the
 * function (`tool_name`), so ids are made for the calls and each result is matched to the first
 * open call of that name (or the first open call), which is how Ollama pairs them.
 */
export function openAiMessagesOf(messages: readonly OllamaMessage[]): OpenAiMessage[] {
  const open: { id: string; name: string }[] = [];
  let calls = 0;
  return messages.map((message, index): OpenAiMessage => {
    if (message.images !== undefined && message.images !== null && message.images.length > 0) {
      throw new InvalidRequestError('images are not supported: the models of this server read text only', {
        issues: [{ path: `messages.${index}.images`, message: 'not supported' }],
      });
    }
    switch (message.role) {
      case 'system':
      case 'user':
        return { role: message.role, content: message.content };
      case 'assistant': {
        const toolCalls = (message.tool_calls ?? []).map((call) => {
          const id = call.id ?? `call_${calls++}`;
          open.push({ id, name: call.function.name });
          const args = call.function.arguments ?? {};
          return { id, type: 'function' as const, function: { name: call.function.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
        });
        return {
          role: 'assistant',
          content: message.content === '' && toolCalls.length > 0 ? null : message.content,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        };
      }
      case 'tool': {
        const byId = message.tool_call_id === undefined ? -1 : open.findIndex((call) => call.id === message.tool_call_id);
        const byName = message.tool_name === undefined ? -1 : open.findIndex((call) => call.name === message.tool_name);
        const position = byId !== -1 ? byId : byName !== -1 ? byName : open.length > 0 ? 0 : -1;
        const call = position === -1 ? undefined : open.splice(position, 1)[0];
        return {
          role: 'tool',
          content: message.content,
          ...(call === undefined ? {} : { tool_call_id: call.id }),
          ...(message.tool_name === undefined ? {} : { name: message.tool_name }),
        };
      }
      default:
        throw new InvalidRequestError(`messages.${index}.role must be system, user, assistant or tool, got "${message.role}"`, {
          issues: [{ path: `messages.${index}.role`, message: 'unknown role' }],
        });
    }
  });
}

/** OpenAI tool calls (arguments as JSON text) as Ollama's (arguments as an object, an index per call). */
export function ollamaToolCallsOf(calls: readonly { id?: string | undefined; function: { name?: string | undefined; arguments?: string | undefined } }[]): {
  id?: string;
  function: { index: number; name: string; arguments: Record<string, unknown> };
}[] {
  return calls.map((call, index) => {
    const parsed = safeParseJson(call.function.arguments ?? '{}');
    const args: unknown = parsed.success ? parsed.value : {};
    return {
      ...(call.id === undefined ? {} : { id: call.id }),
      function: {
        index,
        name: call.function.name ?? '',
        arguments: typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, unknown>) : {},
      },
    };
  });
}
