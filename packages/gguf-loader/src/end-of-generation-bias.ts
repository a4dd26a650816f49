import { TokenBias, type LlamaModel, type Token } from 'node-llama-cpp';
import { InvalidRequestError } from '@tabagent/values';

/** The fields of node-llama-cpp's TokenBias that the context reads when it samples. */
interface TokenBiasInternals {
  _biases: Map<Token, number>;
}

/** Every token of the vocabulary that ends a generation (EOS, EOT and the template's own end tokens). */
export function endOfGenerationTokens(model: LlamaModel, vocabularySize: number): Token[] {
  const tokens = new Set<Token>();
  for (const token of [model.tokens.eos, model.tokens.eot]) if (token !== null) tokens.add(token);
  for (let id = 0; id < vocabularySize; id += 1) {
    const token = id as Token;
    if (model.isEogToken(token)) tokens.add(token);
  }
  return [...tokens].sort((a, b) => a - b);
}

/**
 * A token bias with logits added as given (`-Infinity` makes a token impossible), end-of-generation
 * tokens included.
 *
 * node-llama-cpp 3.21.1's `TokenBias.set` silently skips end-of-generation tokens
 * (`evaluator/TokenBias.js`: "Setting the bias of the EOS or EOT tokens to "never" has no effect"),
 * so the biases are written into the instance's internal map, which `LlamaContextSequence.evaluate`
 * hands to llama.cpp's sampler as it is (`getTokenBiasesForAddon`). The version is pinned; the
 * gguf-loader test "ignore_eos runs past the token where the same seed stops" fails if this
 * internal changes.
 */
export function createTokenBias(model: LlamaModel, logits: Iterable<readonly [Token, number]>): TokenBias {
  const bias = new TokenBias(model.tokenizer);
  const internals = bias as unknown as TokenBiasInternals;
  if (!(internals._biases instanceof Map)) throw new Error('node-llama-cpp TokenBias has no internal bias map; token biases cannot be applied');
  for (const [token, logit] of logits) internals._biases.set(token, logit);
  return bias;
}

/** A token bias that makes every end-of-generation token impossible (llama-server's `ignore_eos`). */
export function createEndOfGenerationBias(model: LlamaModel, vocabularySize: number): TokenBias {
  return createTokenBias(
    model,
    endOfGenerationTokens(model, vocabularySize).map((token) => [token, Number.NEGATIVE_INFINITY] as const),
  );
}

/**
 * OpenAI's `logit_bias` (token id to a bias from -100 to 100, added to the logit; -100 bans the
 * token) with `ignoreEos`, as one bias; undefined when neither is asked for.
 */
export function requestTokenBias(
  model: LlamaModel,
  vocabularySize: number,
  endOfGeneration: () => readonly Token[],
  options: { ignoreEos?: boolean; logitBias?: ReadonlyMap<number, number> },
): TokenBias | undefined {
  const logits = new Map<Token, number>();
  for (const [id, value] of options.logitBias ?? []) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabularySize) {
      throw new InvalidRequestError(`logit_bias names token ${id}, which is not in this model's vocabulary of ${vocabularySize}`, {
        issues: [{ path: `logit_bias.${id}`, message: 'unknown token id' }],
      });
    }
    logits.set(id as Token, value <= -100 ? Number.NEGATIVE_INFINITY : value);
  }
  if (options.ignoreEos === true) for (const token of endOfGeneration()) logits.set(token, Number.NEGATIVE_INFINITY);
  return logits.size === 0 ? undefined : createTokenBias(model, logits);
}
