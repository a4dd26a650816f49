/**
 * Jinja chat templates for fixture GGUFs, shaped like real models' (every real GGUF carries one),
 * with our own wording: node-llama-cpp resolves and renders them as it does a downloaded model's.
 */

/**
 * A ChatML template with tools, of the size and shape of current instruction models': loops over
 * the messages and the tools, conditionals for the system prompt, tool calls and tool results.
 */
export const chatMlToolsTemplate = `{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}
{{- messages[0].content + '\\n\\n' }}
{%- else %}
{{- 'You are a careful assistant that answers plainly.\\n\\n' }}
{%- endif %}
{{- '# Tools\\n\\nThese functions are available. Each one is described as JSON:\\n<tools>' }}
{%- for tool in tools %}
{{- '\\n' }}
{{- tool | tojson }}
{%- endfor %}
{{- '\\n</tools>\\n\\nTo call functions, write each call as a JSON object inside <tool_call></tool_call> tags:\\n<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- else %}
{%- if messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>system\\nYou are a careful assistant that answers plainly.<|im_end|>\\n' }}
{%- endif %}
{%- endif %}
{%- for message in messages %}
{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>' + message.role }}
{%- if message.content %}
{{- '\\n' + message.content }}
{%- endif %}
{%- if message.tool_calls %}
{%- for tool_call in message.tool_calls %}
{%- if tool_call.function is defined %}
{%- set tool_call = tool_call.function %}
{%- endif %}
{{- '\\n<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' }}
{{- tool_call.arguments | tojson }}
{{- '}\\n</tool_call>' }}
{%- endfor %}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{%- if loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool' %}
{{- '<|im_start|>user' }}
{%- endif %}
{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
{{- '<|im_end|>\\n' }}
{%- endif %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- endif %}`;

/**
 * A reasoning model's template (the shape of Qwen3's and DeepSeek-R1's, with markers of its own):
 * an assistant turn renders its `reasoning_content` inside <think></think> (the latest turn only),
 * and the generation prompt opens a thought, so the model's output starts inside it until it
 * writes </think>. node-llama-cpp finds the thought segment from this rendering.
 */
export const thinkingChatTemplate = `{{- bos_token }}
{%- for message in messages %}
{%- if message.role == 'system' %}
{{- '<|system|>' + message.content + '<|end|>' }}
{%- elif message.role == 'user' %}
{{- '<|user|>' + message.content + '<|end|>' }}
{%- elif message.role == 'assistant' %}
{{- '<|assistant|>' }}
{%- if message.reasoning_content and loop.last %}
{{- '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}
{%- endif %}
{{- message.content + '<|end|>' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|assistant|><think>\\n' }}
{%- endif %}`;
