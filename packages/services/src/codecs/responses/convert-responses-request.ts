import type { GenerationParams } from '@tabagent/model-cache';
import {
  type ChatGenerationRequest,
  type GenerationChatMessage,
  type GenerationContentPart,
  type GenerationResponseFormat,
  type GenerationTool,
  type GenerationToolChoice,
  type ReasoningSetting,
  type ResponsesInputItem,
  type RouteRequest,
} from '@tabagent/values';
import { samplingWithDefaults, withDefaultSystemPrompt } from '../generation-defaults.js';
import { refuseField } from '../refuse-field.js';

// OpenAI's Responses API into the internal generation contract: every Responses field name is
// read here and nowhere else. What Codex sends that a local model has no use for (`include`,
// `prompt_cache_key`, encrypted reasoning, hosted tools) is dropped, never refused
// (protocols.md §B.3).

type CreateRequest = RouteRequest<'responses.create'>;
type PromptRequest = RouteRequest<'responses.input_tokens'>;

type ContentPartInput = Exclude<Extract<ResponsesInputItem, { role: string }>['content'], string>[number];

/** Message content (a string, or input_text / output_text / input_image / refusal parts) as the contract's content. */
function contentOf(content: string | readonly ContentPartInput[], path: string): string | GenerationContentPart[] {
  if (typeof content === 'string') return content;
  const parts: GenerationContentPart[] = [];
  for (const [index, part] of content.entries()) {
    if (part.type === 'input_text' || part.type === 'output_text' || part.type === 'text' || part.type === 'refusal') {
      const refusal = (part as { refusal?: unknown }).refusal;
      parts.push({ type: 'text', text: typeof part.text === 'string' ? part.text : typeof refusal === 'string' ? refusal : '' });
    } else if (part.type === 'input_image') {
      if (typeof part.image_url !== 'string')
        refuseField(`${path}.${index}.image_url`, 'input_image parts need an image_url (a URL or a data URL); file_id is not supported');
      parts.push({ type: 'image', url: part.image_url });
    } else {
      refuseField(`${path}.${index}.type`, `content parts of type "${part.type}" are not supported`);
    }
  }
  return parts.every((part) => part.type === 'text') ? parts.map((part) => (part as { text: string }).text).join('') : parts;
}

/** Items of a hosted tool's work (`web_search_call`, `file_search_call`, ...): records of work this server never does. */
function isHostedToolRecord(type: string): boolean {
  return type.endsWith('_call') && type !== 'function_call' && type !== 'custom_tool_call';
}

/**
 * Input items as the contract's messages: a message item is a message; consecutive function
 * calls join the assistant turn before them (one turn, several calls); a call's output is a `tool`
 * message; a reasoning item's readable summary is the next assistant turn's reasoning (its
 * encrypted content is for OpenAI's servers only and is dropped).
 */
export function responsesMessagesOf(input: PromptRequest['input']): GenerationChatMessage[] {
  if (input === undefined) return [];
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  const messages: GenerationChatMessage[] = [];
  let reasoning = '';
  const assistantTurn = (): GenerationChatMessage & { toolCalls: { id: string; name: string; arguments: string }[] } => {
    const last = messages[messages.length - 1];
    if (last?.role === 'assistant') {
      const turn = last as GenerationChatMessage & { toolCalls?: { id: string; name: string; arguments: string }[] };
      turn.toolCalls ??= [];
      return turn as GenerationChatMessage & { toolCalls: { id: string; name: string; arguments: string }[] };
    }
    const turn = { role: 'assistant' as const, content: null, toolCalls: [] as { id: string; name: string; arguments: string }[] };
    messages.push(turn);
    return turn;
  };
  for (const [index, item] of input.entries()) {
    const path = `input.${index}`;
    const type = item.type ?? 'message';
    switch (type) {
      case 'message': {
        const message = item as Extract<ResponsesInputItem, { role: string }>;
        if (typeof message.role !== 'string') refuseField(`${path}.role`, 'message items need a role');
        const content = contentOf(message.content, `${path}.content`);
        if (message.role === 'assistant') {
          messages.push({ role: 'assistant', content, ...(reasoning.length > 0 ? { reasoning } : {}) });
          reasoning = '';
        } else messages.push({ role: message.role, content });
        break;
      }
      case 'function_call':
      case 'custom_tool_call': {
        const call = item as { call_id?: unknown; name?: unknown; arguments?: unknown; input?: unknown };
        if (typeof call.call_id !== 'string' || typeof call.name !== 'string') refuseField(path, `${type} items need call_id and name`);
        const turn = assistantTurn();
        if (reasoning.length > 0 && turn.reasoning === undefined) turn.reasoning = reasoning;
        reasoning = '';
        const args = type === 'function_call' ? call.arguments : JSON.stringify({ input: call.input });
        turn.toolCalls.push({ id: call.call_id, name: call.name, arguments: typeof args === 'string' ? args : '{}' });
        break;
      }
      case 'function_call_output':
      case 'custom_tool_call_output': {
        const output = item as { call_id?: unknown; output?: unknown };
        if (typeof output.call_id !== 'string') refuseField(`${path}.call_id`, `${type} items need a call_id`);
        const value = output.output;
        const content =
          typeof value === 'string' ? value : Array.isArray(value) ? contentOf(value as ContentPartInput[], `${path}.output`) : JSON.stringify(value ?? '');
        messages.push({ role: 'tool', toolCallId: output.call_id, content });
        break;
      }
      case 'reasoning': {
        const summary = (item as { summary?: { text: string }[] }).summary ?? [];
        reasoning += summary.map((part) => part.text).join('\n');
        break;
      }
      default:
        if (!isHostedToolRecord(type)) refuseField(`${path}.type`, `input items of type "${type}" are not supported`);
    }
  }
  return messages;
}

/**
 * Function tools, flat as Responses declares them, and those a `namespace` tool groups (Codex
 * bundles its sub-agent tools so), under their own names. Other types (`web_search`,
 * `file_search`, `custom`, `local_shell`, `mcp`, ...) are hosted or freeform tools this server does
 * not run: skipped, as llama-server skips them (refusing them would refuse every Codex request).
 */
function toolsOf(tools: PromptRequest['tools']): GenerationTool[] {
  return (tools ?? []).flatMap((tool): GenerationTool[] => {
    if (tool.type === 'namespace' && Array.isArray(tool['tools'])) return toolsOf(tool['tools'] as PromptRequest['tools']);
    if (tool.type !== 'function' || typeof tool.name !== 'string') return [];
    return [
      {
        name: tool.name,
        ...(typeof tool.description === 'string' ? { description: tool.description } : {}),
        ...(tool.parameters ? { parameters: tool.parameters } : {}),
      },
    ];
  });
}

/** tool_choice: the three words, a named function, `allowed_tools` (its mode), or a hosted tool's type (auto: none of those runs here). */
function toolChoiceOf(choice: PromptRequest['tool_choice']): GenerationToolChoice | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (typeof choice === 'string') return choice;
  if (choice.type === 'function') {
    if (typeof choice.name !== 'string') refuseField('tool_choice.name', 'a function tool_choice needs a name');
    return { name: choice.name };
  }
  if (choice.type === 'allowed_tools') {
    const mode = (choice as { mode?: unknown }).mode;
    return mode === 'required' ? 'required' : 'auto';
  }
  return 'auto';
}

function reasoningOf(request: PromptRequest): ReasoningSetting | undefined {
  const effort = request.reasoning?.effort;
  if (effort === undefined || effort === null) return undefined;
  if (effort === 'none') return 'off';
  if (effort === 'minimal' || effort === 'low') return 'low';
  return effort === 'medium' ? 'medium' : 'high';
}

function responseFormatOf(request: PromptRequest): GenerationResponseFormat | undefined {
  const format = request.text?.format;
  if (format === undefined || format === null) return undefined;
  if (format.type === 'json_schema') {
    if (format.schema === undefined) refuseField('text.format.schema', 'a json_schema format needs a schema');
    return { type: 'json_schema', schema: format.schema };
  }
  return { type: format.type };
}

/**
 * The prompt of a request (what input_tokens measures): the instructions as the system prompt
 * (they are not carried over from a previous response, as OpenAI says), the earlier conversation
 * (`previous_response_id`, resolved by the caller), then the input.
 */
export function responsesPromptOf(request: PromptRequest, previous: readonly GenerationChatMessage[], defaults: GenerationParams): ChatGenerationRequest {
  const input = responsesMessagesOf(request.input);
  const conversation = [...previous, ...input];
  if (conversation.length === 0) refuseField('input', 'input is required');
  const instructions = typeof request.instructions === 'string' && request.instructions.length > 0 ? request.instructions : undefined;
  const tools = toolsOf(request.tools);
  return {
    ...samplingWithDefaults({ maxTokens: null }, defaults),
    messages: withDefaultSystemPrompt(instructions === undefined ? conversation : [{ role: 'system', content: instructions }, ...conversation], defaults),
    ...(tools.length === 0 ? {} : { tools }),
    toolChoice: toolChoiceOf(request.tool_choice),
    ...(request.parallel_tool_calls === false ? { parallelToolCalls: false } : {}),
    reasoning: reasoningOf(request),
    responseFormat: responseFormatOf(request),
  };
}

/** A create request as the contract's chat request, over the stored defaults. */
export function responsesRequestOf(request: CreateRequest, previous: readonly GenerationChatMessage[], defaults: GenerationParams): ChatGenerationRequest {
  if (request.background === true)
    refuseField('background', 'background responses are not supported: send the request without background, streamed if it is long');
  return {
    ...responsesPromptOf(request, previous, defaults),
    ...samplingWithDefaults(
      { temperature: request.temperature ?? undefined, topP: request.top_p ?? undefined, maxTokens: request.max_output_tokens },
      defaults,
    ),
  };
}
