import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from 'node-llama-cpp';
import { InvalidRequestError, safeParseJson } from '@tabagent/values';
import type { GenerationChatMessage } from '@tabagent/values';

function parseArguments(text: string): unknown {
  const parsed = safeParseJson(text);
  return parsed.success ? parsed.value : text;
}

/** A message's text; GGUF models here take text only, so an image part is a clear 400. */
function textOf(message: GenerationChatMessage, index: number): string {
  if (message.content === null) return '';
  if (typeof message.content === 'string') return message.content;
  let text = '';
  for (const part of message.content) {
    if (part.type !== 'text') {
      throw new InvalidRequestError(`messages.${index}.content has an image part; GGUF text models take text only`, {
        issues: [{ path: `messages.${index}.content`, message: 'image parts are not supported' }],
      });
    }
    text += part.text;
  }
  return text;
}

/**
 * Maps OpenAI messages to node-llama-cpp chat history. Assistant tool calls become function
 * calls whose results come from the matching `tool` messages; the history always ends with a
 * model response for the generation to continue.
 */
export function toChatHistory(messages: readonly GenerationChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const pendingCalls = new Map<string, ChatModelFunctionCall>();
  for (const [index, message] of messages.entries()) {
    const text = textOf(message, index);
    switch (message.role) {
      case 'system':
      case 'developer':
        history.push({ type: 'system', text });
        break;
      case 'user':
        history.push({ type: 'user', text });
        break;
      case 'assistant': {
        const response: ChatModelResponse['response'] = [];
        // Replayed thinking is a thought segment, which the wrapper renders where its template shows thinking.
        if (message.reasoning !== undefined && message.reasoning.length > 0)
          response.push({ type: 'segment', segmentType: 'thought', text: message.reasoning, ended: true });
        if (text.length > 0) response.push(text);
        for (const call of message.toolCalls ?? []) {
          const functionCall: ChatModelFunctionCall = { type: 'functionCall', name: call.name, params: parseArguments(call.arguments), result: null };
          pendingCalls.set(call.id, functionCall);
          response.push(functionCall);
        }
        history.push({ type: 'model', response });
        break;
      }
      case 'tool':
      case 'function': {
        const call = message.toolCallId === undefined ? undefined : pendingCalls.get(message.toolCallId);
        if (call) {
          call.result = parseArguments(text);
          if (message.toolCallId !== undefined) pendingCalls.delete(message.toolCallId);
        } else {
          history.push({ type: 'user', text: `Result of ${message.name ?? 'the tool call'}: ${text}` });
        }
        break;
      }
    }
  }
  if (!history.some((item) => item.type === 'user' || item.type === 'model')) {
    throw new InvalidRequestError('messages must include at least one user or assistant message');
  }
  const last = history[history.length - 1];
  // A trailing assistant message (text, or tool calls with their results) is continued.
  if (last?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}
