import { Template } from '@huggingface/jinja';
import { chatTemplateBudgetTrips, chatTemplateRenderBudgetMs, chatTemplateTurnBudgetMs, installChatTemplateBudget } from './chat-template-budget.js';

describe('the chat template render budget', () => {
  beforeAll(() => installChatTemplateBudget());

  it('stops a template that loops with a clear invalid-model error, near the budget', () => {
    const started = performance.now();
    let caught: unknown;
    try {
      // Ten billion rounds, from lists of 100,000: nothing large is allocated, it only runs.
      new Template('{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}').render({});
    } catch (error) {
      caught = error;
    }
    const elapsed = performance.now() - started;
    expect(caught).toMatchObject({
      code: 'invalid_model',
      message: `The model's chat template did not finish rendering within ${chatTemplateRenderBudgetMs} ms (it loops, or builds too much text); the request was stopped. Replace the template (tokenizer.chat_template) or use another model.`,
    });
    expect(elapsed).toBeGreaterThanOrEqual(chatTemplateRenderBudgetMs);
    // Stopped soon after the budget, not after the 100 million rounds (tens of seconds).
    expect(elapsed).toBeLessThan(chatTemplateRenderBudgetMs * 8);
  });

  it('fails at once past the stretch budget: hundreds of renderings in one go (chat-wrapper resolution) cost about a second, and each is counted', async () => {
    // A new turn of the event loop: the stretch budget starts from nothing.
    await new Promise((resolve) => setImmediate(resolve));
    const looping = new Template('{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}');
    const before = chatTemplateBudgetTrips();
    const started = performance.now();
    let stopped = 0;
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        looping.render({});
      } catch {
        stopped += 1;
      }
    }
    const elapsed = performance.now() - started;
    expect([stopped, chatTemplateBudgetTrips() - before]).toEqual([200, 200]);
    // Four renderings use the stretch's 1 s; the other 196 fail without running (not 200 × 250 ms).
    expect(elapsed).toBeLessThan(chatTemplateTurnBudgetMs + 2 * chatTemplateRenderBudgetMs);
    await new Promise((resolve) => setImmediate(resolve));
    expect(new Template('{{ 1 + 1 }}').render({})).toBe('2');
  });

  it('refuses a range() too long to build before the loop starts (it would exhaust the heap in one call)', () => {
    expect(() => new Template('{% for i in range(1000000000) %}x{% endfor %}').render({})).toThrow(
      "The model's chat template asks for range() of 1000000000 items (at most 100000); the request was stopped. Replace the template (tokenizer.chat_template) or use another model.",
    );
    expect(() => new Template('{% for i in range(5, 200005, 2) %}{% endfor %}').render({})).not.toThrow();
    expect(() => new Template('{% for i in range(0, 300000, 2) %}{% endfor %}').render({})).toThrow(/range\(\) of 150000 items/u);
  });

  it('stops text doubled in a loop with the same kind of error, and renders real templates as before, each with a budget of its own', () => {
    const doubled = (): unknown =>
      new Template("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}").render({});
    expect(doubled).toThrow(
      "The model's chat template failed to render (Invalid string length): it builds too much text or recurses too deep. Replace the template (tokenizer.chat_template) or use another model.",
    );
    const chatMl = new Template(
      "{% for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    );
    for (let round = 0; round < 3; round++) {
      expect(chatMl.render({ messages: [{ role: 'user', content: 'hi' }], add_generation_prompt: true })).toBe(
        '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
      );
    }
  });
});
