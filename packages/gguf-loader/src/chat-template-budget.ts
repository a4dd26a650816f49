import { Interpreter } from '@huggingface/jinja';
import { InvalidModelError, TabAgentError } from '@tabagent/values';

/**
 * How long one rendering of a model's Jinja chat template may take. Real templates render a long
 * conversation in a few milliseconds; the template comes with the model file, so a hostile or
 * broken one (a loop over `range(10**9)`, text doubled in a loop) would otherwise hold the event
 * loop, and every other request, for as long as it runs.
 */
export const chatTemplateRenderBudgetMs = 250;

/** Steps between two clock reads: a step is one AST node evaluated, well under a microsecond each. */
const stepsPerClockRead = 1024;

/**
 * Longest `range()` a template may make: the interpreter builds the whole list before the first
 * step of a loop over it, so `range(10**9)` would exhaust the heap in one call, between two clock
 * reads. Real templates range over messages or tools.
 */
export const maxTemplateRangeLength = 100_000;

const budgetState = Symbol('tabagent.templateBudget');

/** A runtime value of the interpreter: what `range` is called with, and what it is. */
interface RuntimeValue {
  type?: string;
  value?: unknown;
}

interface BudgetedInterpreter {
  [budgetState]?: { deadline: number; steps: number };
  global?: { lookupVariable(name: string): RuntimeValue };
}

/** The interpreter's two methods this wraps (its published types do not resolve under NodeNext). */
interface InterpreterMethods {
  run: (this: BudgetedInterpreter, program: unknown) => unknown;
  evaluate: (this: BudgetedInterpreter, statement: unknown, environment: unknown) => unknown;
}

let installedBudgetMs: number | undefined;

/**
 * Renderings the budget may stop in one synchronous stretch of the event loop before every further
 * rendering in that stretch fails at once: node-llama-cpp's chat-wrapper resolution renders a
 * template hundreds of times in one go, catching each failure (856 times for a looping template,
 * 221 s at 250 ms each). A template that renders is never counted, however many times it renders
 * (a tool-calling template's resolution takes about a second of renderings on a busy machine).
 */
export const chatTemplateStopsPerStretch = 2;
/** Renderings stopped since the event loop last turned, and whether a reset is scheduled. */
const stretch = { stopped: 0, resetScheduled: false };
/** How many renderings the budget has stopped, ever (see `chatTemplateBudgetTrips`). */
let trips = 0;
/** Why the first rendering stopped in the latest stretch that stopped one (see `chatTemplateLastStop`). */
let firstStopOfStretch: TabAgentError | undefined;

/**
 * How many template renderings the budget has stopped in this process. A caller compares it before
 * and after a call that renders templates and catches their errors itself (node-llama-cpp's chat
 * wrapper resolution falls back to a guessed format), to refuse the template instead.
 */
export function chatTemplateBudgetTrips(): number {
  return trips;
}

/**
 * Why the budget stopped the first rendering of the latest stretch of the event loop that had a
 * stop: over time, a range() too long, or text or recursion past Node's limits. The renderings
 * after it in that stretch fail at once and say nothing new, so a caller that saw
 * `chatTemplateBudgetTrips` rise reports this one.
 */
export function chatTemplateLastStop(): TabAgentError | undefined {
  return firstStopOfStretch;
}

/** Counts a stopped rendering, in all and in this stretch of the event loop. */
function countStop(reason: TabAgentError): void {
  trips += 1;
  if (stretch.stopped === 0) firstStopOfStretch = reason;
  stretch.stopped += 1;
  if (!stretch.resetScheduled) {
    stretch.resetScheduled = true;
    setImmediate(() => {
      stretch.stopped = 0;
      stretch.resetScheduled = false;
    });
  }
}

/** The number of items `range(...args)` would make, as Python counts them. */
function rangeLength(args: readonly RuntimeValue[]): number {
  const [first, second, third] = args.map((arg) => (typeof arg.value === 'number' ? arg.value : 0));
  const [start, stop, step] = args.length === 1 ? [0, first ?? 0, 1] : [first ?? 0, second ?? 0, third ?? 1];
  if (step === 0) return 0;
  return Math.max(0, Math.ceil((stop - start) / step));
}

/** Bounds the `range` of one rendering's globals (each rendering has its own). */
function boundRange(interpreter: BudgetedInterpreter): void {
  const range = interpreter.global?.lookupVariable('range');
  if (range?.type !== 'FunctionValue' || typeof range.value !== 'function') return;
  const original = range.value as (args: RuntimeValue[], scope: unknown) => unknown;
  range.value = (args: RuntimeValue[], scope: unknown) => {
    const length = rangeLength(args);
    if (length > maxTemplateRangeLength) {
      throw new InvalidModelError(
        `The model's chat template asks for range() of ${length} items (at most ${maxTemplateRangeLength}); the request was stopped. Replace the template (tokenizer.chat_template) or use another model.`,
        { details: { range_length: length, max_range_length: maxTemplateRangeLength } },
      );
    }
    return original(args, scope);
  };
}

/** The error a template over its budget throws (a broken model file, 422, not a server error). */
export function chatTemplateBudgetError(budgetMs: number): TabAgentError {
  return new InvalidModelError(
    `The model's chat template did not finish rendering within ${budgetMs} ms (it loops, or builds too much text); the request was stopped. Replace the template (tokenizer.chat_template) or use another model.`,
    { details: { render_budget_ms: budgetMs } },
  );
}

/**
 * Puts a time budget on every Jinja template rendering in this process (node-llama-cpp renders
 * GGUF chat templates with `@huggingface/jinja`'s interpreter, synchronously): the interpreter
 * reads the clock every 1,024 steps and throws `chatTemplateBudgetError` past the budget. Safe to
 * call more than once; the first budget stays.
 */
export function installChatTemplateBudget(budgetMs: number = chatTemplateRenderBudgetMs): void {
  if (installedBudgetMs !== undefined) return;
  installedBudgetMs = budgetMs;
  const methods = (Interpreter as unknown as { prototype: InterpreterMethods }).prototype;
  const run = methods.run;
  const evaluate = methods.evaluate;
  methods.run = function budgetedRun(program) {
    const outer = this[budgetState];
    if (outer === undefined && stretch.stopped >= chatTemplateStopsPerStretch) {
      const refusal = chatTemplateBudgetError(budgetMs);
      countStop(refusal);
      throw refusal;
    }
    this[budgetState] = outer ?? { deadline: performance.now() + budgetMs, steps: 0 };
    if (outer === undefined) boundRange(this);
    try {
      return run.call(this, program);
    } catch (error) {
      if (outer === undefined && TabAgentError.isInstance(error) && error.code === 'invalid_model') countStop(error);
      // An explosion (text doubled past the longest string, recursion past the stack) is the template's fault too.
      if (error instanceof RangeError) {
        const refusal = new InvalidModelError(
          `The model's chat template failed to render (${error.message}): it builds too much text or recurses too deep. Replace the template (tokenizer.chat_template) or use another model.`,
          {
            cause: error,
          },
        );
        if (outer === undefined) countStop(refusal);
        throw refusal;
      }
      throw error;
    } finally {
      this[budgetState] = outer;
    }
  };
  methods.evaluate = function budgetedEvaluate(statement, environment) {
    const budget = this[budgetState];
    if (budget !== undefined && ++budget.steps % stepsPerClockRead === 0 && performance.now() > budget.deadline) throw chatTemplateBudgetError(budgetMs);
    return evaluate.call(this, statement, environment);
  };
}
