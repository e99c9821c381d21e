// The client side of TOOL_SCENARIO (tests/mocks/common.mjs), shared by
// tests/integration/equivalence.test.mjs and
// tests/clients/openai-adapters.test.mjs: the tools, the opening messages and
// the tool results a client sends back, and one llmux serving the scenario
// through the openai, anthropic and gemini adapters, each at its own mock.
import { TOOL_SCENARIO } from '../mocks/common.mjs';
import { startOpenAIMock } from '../mocks/openai.mjs';
import { startAnthropicMock } from '../mocks/anthropic.mjs';
import { startGeminiMock } from '../mocks/gemini.mjs';
import {
  startLlmux, shutdown, buildConfig, openaiProvider, anthropicProvider, geminiProvider, model, endpoint,
} from './harness.mjs';

/** The tools of every scenario request (OpenAI chat shape). */
export const SCENARIO_TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather and forecast for a city',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string' },
          unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
          days: { type: 'array', items: { type: 'integer' } },
          detail: { type: 'object', properties: { wind: { type: 'boolean' }, note: { type: 'string' } } },
        },
        required: ['city'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'Local time in a time zone',
      parameters: { type: 'object', properties: { tz: { type: 'string' }, format: { type: 'string' } }, required: ['tz'] },
    },
  },
];

/** Tool results the "client" sends back, by tool name. */
export const SCENARIO_RESULTS = { get_weather: JSON.stringify({ temp_c: 18, sky: 'sunny' }), get_time: '21:05' };

/** The conversation's opening messages (system + the user's question). */
export const SCENARIO_MESSAGES = [
  { role: 'system', content: 'You are a concise assistant.' },
  { role: 'user', content: 'What is the weather in Zürich and the time in Tokyo?' },
];

export const SCENARIO_ADAPTERS = ['openai', 'anthropic', 'gemini'];

/**
 * Starts the OpenAI, Anthropic and Gemini mocks and one llmux with the models
 * `${prefix}/openai`, `${prefix}/anthropic` and `${prefix}/gemini`, each on
 * its mock's TOOL_SCENARIO.model with supported_parameters `params`.
 * Returns {gw, mocks: {openai, anthropic, gemini}, stop()}; stop() shuts all
 * of them down. Whatever was started is shut down if a later start fails.
 */
export async function startScenarioAdapters(prefix, params) {
  const mocks = {};
  let gw = null;
  const stop = () => shutdown(gw, mocks.openai, mocks.anthropic, mocks.gemini);
  try {
    mocks.openai = await startOpenAIMock();
    mocks.anthropic = await startAnthropicMock();
    mocks.gemini = await startGeminiMock();
    const ep = (p) => endpoint(p, TOOL_SCENARIO.model, { supported_parameters: params });
    gw = await startLlmux({
      config: buildConfig({
        providers: {
          oa: openaiProvider(mocks.openai, { name: 'OpenAI Mock' }),
          ant: anthropicProvider(mocks.anthropic, { name: 'Anthropic Mock' }),
          gem: geminiProvider(mocks.gemini, { name: 'Gemini Mock' }),
        },
        models: [model(`${prefix}/openai`, [ep('oa')]), model(`${prefix}/anthropic`, [ep('ant')]), model(`${prefix}/gemini`, [ep('gem')])],
      }),
    });
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  return { gw, mocks, stop };
}
