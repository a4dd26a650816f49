import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { stepCountIs, streamText, tool, type LanguageModel } from 'ai';
import OpenAI7 from 'openai-v7';
import { z } from 'zod';
import { startDialectServer, type DialectServer } from './support/dialect-server.js';

// Agent frameworks as users run them, against the three dialects: the OpenAI Agents SDK (its
// default Responses model, and chat completions), and the AI SDK's multi-step tool loop through
// @ai-sdk/openai's Responses and chat models and @ai-sdk/anthropic. The tiny model calls the tool
// when it is made to (tool choice required on the first step), then answers.
let server: DialectServer;

beforeAll(async () => {
  server = await startDialectServer();
  setTracingDisabled(true);
});

afterAll(async () => {
  await server.close();
});

const cities = ['Paris', 'Rome', 'Oslo'] as const;

describe('the OpenAI Agents SDK', () => {
  it.each(['responses', 'chat_completions'] as const)('runs an agent with a function tool over %s', async (api) => {
    setDefaultOpenAIClient(new OpenAI7({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 }) as never);
    setOpenAIAPI(api);
    const asked: string[] = [];
    const getWeather = agentTool({
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: z.object({ city: z.enum(cities) }),
      execute: async ({ city }) => {
        asked.push(city);
        return `sunny in ${city}`;
      },
    });
    // The tool is required, and its result is the final output: this random model never ends a
    // free answer before its token limit, which the SDK takes (rightly) as an incomplete response.
    const agent = new Agent({
      name: 'weather',
      instructions: 'Answer with the weather.',
      model: 'tiny',
      tools: [getWeather],
      toolUseBehavior: 'stop_on_first_tool',
      modelSettings: { toolChoice: 'required', maxTokens: 400 },
    });
    const result = await run(agent, 'What is the weather in Paris?', { maxTurns: 4 });
    expect(asked).toHaveLength(1);
    expect(cities).toContain(asked[0]);
    expect(result.finalOutput).toBe(`sunny in ${asked[0] ?? ''}`);

    const streamed = await run(agent, 'What is the weather in Rome?', { maxTurns: 4, stream: true });
    for await (const event of streamed) expect(typeof event.type).toBe('string');
    await streamed.completed;
    expect(asked).toHaveLength(2);
    expect(streamed.finalOutput).toBe(`sunny in ${asked[1] ?? ''}`);
  });
});

describe("the AI SDK's multi-step tool loop", () => {
  const models: [string, () => LanguageModel][] = [
    ['@ai-sdk/openai responses', () => createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' }).responses('tiny')],
    ['@ai-sdk/openai chat', () => createOpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' }).chat('tiny')],
    ['@ai-sdk/anthropic', () => createAnthropic({ baseURL: `${server.url}/v1`, apiKey: 'unused' })('tiny')],
  ];

  it.each(models)('%s: streamText calls the tool, then answers', async (_name, model) => {
    const asked: string[] = [];
    const result = streamText({
      model: model(),
      maxOutputTokens: 400,
      prompt: 'What is the weather in Oslo?',
      tools: {
        get_weather: tool({
          description: 'The weather in a city',
          inputSchema: z.object({ city: z.enum(cities) }),
          execute: async ({ city }) => {
            asked.push(city);
            return { forecast: `sunny in ${city}` };
          },
        }),
      },
      stopWhen: stepCountIs(3),
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? 'required' : 'none' }),
    });
    let errors = 0;
    for await (const part of result.fullStream) if (part.type === 'error') errors += 1;
    expect(errors).toBe(0);
    const steps = await result.steps;
    expect(steps).toHaveLength(2);
    expect(steps[0]?.toolCalls.map((call) => call.toolName)).toEqual(['get_weather']);
    expect(asked).toHaveLength(1);
    expect(cities).toContain(asked[0]);
    expect(steps[1]?.toolCalls).toEqual([]);
    expect(typeof (await result.text)).toBe('string');
  });
});
