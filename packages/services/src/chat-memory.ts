import { ForbiddenError, isChunkStream, type Handler, type RouteChunk, type RouteRequest } from '@tabagent/values';
import type { MemoryRetrieval } from './handlers/memory-handlers.js';

type ChatMessage = RouteRequest<'chat.completions'>['messages'][number];

function textOf(message: ChatMessage): string {
  if (typeof message.content === 'string') return message.content;
  if (Array.isArray(message.content)) return message.content.map((part) => (part.type === 'text' ? part.text : '')).join(' ');
  return '';
}

/**
 * Adds the `memory` option to chat completions: the last user message is the query, the
 * retrieved context goes in a system message before the conversation, and the response (or each
 * stream chunk's first and last) lists the sources used. Without `memory` the handler is untouched.
 */
export function withChatMemory(chat: Handler<'chat.completions'>, retrieval: MemoryRetrieval): Handler<'chat.completions'> {
  return async (request, context) => {
    if (request.memory === undefined || request.memory === false) return chat(request, context);
    // The memory option reads the user's saved pages and messages (their text goes to the model,
    // their titles and URLs come back): a `chat` pairing token opens generation, not the memory.
    // Checked here, in the handler, so every transport (HTTP, WebRTC, native) gets the same answer.
    if (context.caller.pairing?.scope === 'chat')
      throw new ForbiddenError('This pairing token is for chat only; the memory option reads saved memory and needs a token of scope "full"', {
        details: { option: 'memory', scope: 'chat' },
      });
    const query = [...request.messages].reverse().find((message) => message.role === 'user');
    if (!query) return chat(request, context);
    const { context: memoryText, sources } = await retrieval.retrieveMemoryContext(textOf(query), request.memory);
    if (sources.length === 0) {
      const result = await chat(request, context);
      if (isChunkStream(result)) return result;
      return { ...result, memory_sources: [] };
    }
    const systemMessage: ChatMessage = {
      role: 'system',
      content: `Use the following notes from the user's saved memory when they help answer. Cite nothing that is not there.\n\n${memoryText}`,
    };
    const result = await chat({ ...request, messages: [systemMessage, ...request.messages] }, context);
    if (!isChunkStream(result)) return { ...result, memory_sources: sources };
    return (async function* withSources(): AsyncGenerator<RouteChunk<'chat.completions'>> {
      let first = true;
      for await (const chunk of result) {
        yield first ? { ...chunk, memory_sources: sources } : chunk;
        first = false;
      }
    })();
  };
}
