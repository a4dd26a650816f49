import { Template } from '@huggingface/jinja';
import { chatTemplateBudgetTrips, chatTemplateRenderBudgetMs, chatTemplateStopsPerStretch, installChatTemplateBudget } from './chat-template-budget.js';

describe('the chat template render budget', () => {
  beforeAll(() => installChatTemplateBudget());
  // Each test in a stretch of the event loop of its own: the stretch's count of stopped renderings starts from nothing.
  beforeEach(() => new Promise((resolve) => setImmediate(resolve)));

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

  it('fails at once after two stopped renderings in one stretch: hundreds of them in one go (chat-wrapper resolution) cost half a second, and each is counted', () => {
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
    // Two renderings run to the budget; the other 198 fail without running (not 200 × 250 ms).
    expect(elapsed).toBeLessThan((chatTemplateStopsPerStretch + 8) * chatTemplateRenderBudgetMs);
  });

  it('never stops a template that renders, however many times one stretch renders it (a real template on a busy machine)', () => {
    const chatMl = new Template(
      "{% for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    );
    const messages = Array.from({ length: 50 }, (_, index) => ({ role: index % 2 === 0 ? 'user' : 'assistant', content: `message ${index}` }));
    const before = chatTemplateBudgetTrips();
    const started = performance.now();
    let rendered = 0;
    // Well past a second of renderings in one synchronous stretch.
    while (performance.now() - started < 1500) {
      chatMl.render({ messages, add_generation_prompt: true });
      rendered += 1;
    }
    expect(chatTemplateBudgetTrips() - before).toBe(0);
    expect(rendered).toBeGreaterThan(100);
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
