import fc from 'fast-check';
import { maxJsonArrayLength, maxJsonDepth, safeParseJson } from './safe-json.js';
import { parseJsonYielding } from './yielding-json.js';

/** Sliced at every step and cut into tiny units, so every path of the parser runs on small texts. */
const tiny = (unitChars: number) => ({ thresholdChars: 0, unitChars, sliceMs: 0 });

/** What a parse gives, comparable across both parsers (a syntax error's wording differs). */
function outcome(result: ReturnType<typeof safeParseJson>): unknown {
  return result.success ? { value: result.value } : { code: result.error.code, limit: result.error.details ?? null };
}

describe('parseJsonYielding', () => {
  it('gives what JSON.parse gives for any JSON text, however it is cut', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 1, max: 40 }), fc.boolean(), async (value, unitChars, pretty) => {
        const text = JSON.stringify(value, null, pretty ? 2 : undefined);
        const parsed = await parseJsonYielding(text, tiny(unitChars));
        expect(parsed).toEqual({ success: true, value: JSON.parse(text) as unknown });
      }),
      { numRuns: 400 },
    );
  });

  it('cuts long strings only between escapes: quotes, backslashes, \\u escapes and surrogate pairs come through whole', async () => {
    const strings = fc
      .array(fc.constantFrom('a', '"', '\\', '\n', '\u0001', 'é', '🙂', '\ud800', '\u2028', 'xyz'), { maxLength: 60 })
      .map((parts) => parts.join(''));
    await fc.assert(
      fc.asyncProperty(strings, fc.integer({ min: 1, max: 12 }), async (value, unitChars) => {
        const text = JSON.stringify({ key: value, list: [value, value] });
        expect(await parseJsonYielding(text, tiny(unitChars))).toEqual({ success: true, value: JSON.parse(text) as unknown });
      }),
      { numRuns: 400 },
    );
  });

  it('refuses what JSON.parse refuses (trailing commas, missing commas, cut texts, bad literals)', async () => {
    const bad = ['[1, ]', '{"a":1, }', '[1 2]', '{"a" 1}', '{"a":1', '["a', '[tru]', '[01]', '{a:1}', '[1]]', '[1] x', "['a']", '[1,,2]', '{"a":1,,"b":2}', ''];
    for (const text of bad) {
      for (const unitChars of [1, 3, 100]) {
        const parsed = await parseJsonYielding(text, tiny(unitChars));
        expect({ text, unitChars, success: parsed.success, native: safeParseJson(text).success }).toEqual({ text, unitChars, success: false, native: false });
      }
    }
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue({ maxDepth: 4 }),
        fc.nat(),
        fc.constantFrom('', ',', ']', '}', '"', ':', 'x', '\\'),
        fc.integer({ min: 1, max: 20 }),
        async (value, at, insert, unitChars) => {
          const valid = JSON.stringify(value);
          const cut = at % (valid.length + 1);
          const text = `${valid.slice(0, cut)}${insert}${valid.slice(cut + (insert === '' ? 1 : 0))}`;
          const parsed = await parseJsonYielding(text, tiny(unitChars));
          expect({ text, success: parsed.success }).toEqual({ text, success: safeParseJson(text).success });
        },
      ),
      { numRuns: 400 },
    );
  });

  it('holds the same limits as safeParseJson: depth and array length', async () => {
    const deep = `${'['.repeat(maxJsonDepth + 1)}${']'.repeat(maxJsonDepth + 1)}`;
    const long = JSON.stringify({ items: Array.from({ length: maxJsonArrayLength + 1 }, () => 0) });
    const nestedLong = JSON.stringify([[Array.from({ length: maxJsonArrayLength + 1 }, () => 0)]]);
    for (const text of [deep, long, nestedLong, `${'['.repeat(maxJsonDepth)}${']'.repeat(maxJsonDepth)}`]) {
      for (const unitChars of [4, 64 * 1024]) {
        expect(outcome(await parseJsonYielding(text, { ...tiny(unitChars), subject: 'body' }))).toEqual(outcome(safeParseJson(text, { subject: 'body' })));
      }
    }
    expect(outcome(await parseJsonYielding(deep, tiny(4)))).toEqual({ code: 'invalid_request', limit: { max_depth: maxJsonDepth } });
  });

  it('keeps "__proto__" an own member, as JSON.parse does, and never sets the prototype', async () => {
    const text = '{"__proto__":{"polluted":true},"a":{"__proto__":[1]},"b":[{"__proto__":null}]}';
    for (const unitChars of [1, 5, 1000]) {
      const parsed = await parseJsonYielding(text, tiny(unitChars));
      expect(parsed).toEqual({ success: true, value: JSON.parse(text) as unknown });
      const value = (parsed as { value: Record<string, unknown> }).value;
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect(Object.keys(value)).toEqual(['__proto__', 'a', 'b']);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    }
  });

  it('lets other work run while it parses a long text, and parses short ones at once', async () => {
    const text = JSON.stringify({ images: ['A'.repeat(300_000)], items: Array.from({ length: 2000 }, (_, index) => ({ index })) });
    let ranMeanwhile = false;
    setImmediate(() => {
      ranMeanwhile = true;
    });
    const parsed = await parseJsonYielding(text, { sliceMs: 0 });
    expect(ranMeanwhile).toBe(true);
    expect(parsed).toEqual({ success: true, value: JSON.parse(text) as unknown });
    let ranBeforeShort = false;
    setImmediate(() => {
      ranBeforeShort = true;
    });
    await parseJsonYielding('{"a":1}', { sliceMs: 0 });
    expect(ranBeforeShort).toBe(false);
  });
});
