import { TokenBias, type LlamaModel, type Token } from 'node-llama-cpp';

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
 * A token bias that makes every end-of-generation token impossible (llama-server's `ignore_eos`).
 *
 * node-llama-cpp 3.21.1's `TokenBias.set` silently skips end-of-generation tokens
 * (`evaluator/TokenBias.js`: "Setting the bias of the EOS or EOT tokens to "never" has no effect"),
 * so the bias is written into the instance's internal map, which `LlamaContextSequence.evaluate`
 * hands to llama.cpp's sampler as it is (`getTokenBiasesForAddon`). The version is pinned; the
 * gguf-loader test "ignore_eos runs past the token where the same seed stops" fails if this
 * internal changes.
 */
export function createEndOfGenerationBias(model: LlamaModel, vocabularySize: number): TokenBias {
  const bias = new TokenBias(model.tokenizer);
  const internals = bias as unknown as TokenBiasInternals;
  if (!(internals._biases instanceof Map)) throw new Error('node-llama-cpp TokenBias has no internal bias map; ignore_eos cannot be applied');
  for (const token of endOfGenerationTokens(model, vocabularySize)) internals._biases.set(token, Number.NEGATIVE_INFINITY);
  return bias;
}
