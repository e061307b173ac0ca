"""Behaviour of models/decoding.py on toy language models with known answers.

The toys are fixed random tables: the next-token logits are
`first[previous token] + second[token before it]`. With `second` = 0 that is a
bigram model; with `second` != 0 (a trigram) the logits read the older token
from the cache, so a cache that is not expanded or reordered with the beams
gives different answers than the references below, which score whole
sequences in plain Python.
"""
from __future__ import annotations

import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import decoding

EOS = 1


def make_toy(vocab: int, seed: int, *, trigram: bool, eos_boost: float = 0.0):
  """Returns (tokens_to_logits, init_cache, log_prob_table) of a toy LM.

  PAD/BOS (0) is never generated. The cache holds the fed-token history
  [B, L] (a leaf with a batch dimension) and a scalar `cache_index` that each
  call increments, as a flax decoder's cache does.
  """
  rng = np.random.RandomState(seed)
  first = rng.normal(size=(vocab, vocab)).astype(np.float32) * 2.0
  second = (rng.normal(size=(vocab, vocab)).astype(np.float32) * 2.0
            if trigram else np.zeros((vocab, vocab), np.float32))
  first[:, 0] = -1e9  # never emit PAD
  first[:, EOS] += eos_boost

  def tokens_to_logits(token_ids, cache):
    index = cache["cache_index"]
    history = cache["history"]
    older = jnp.where(
        index > 0,
        jax.lax.dynamic_index_in_dim(history, jnp.maximum(index - 1, 0), 1, False),
        0)
    current = token_ids[:, 0]
    history = jax.lax.dynamic_update_index_in_dim(history, current, index, 1)
    logits = jnp.asarray(first)[current] + jnp.asarray(second)[older]
    return logits, {"history": history, "cache_index": index + 1}

  def init_cache(batch, length):
    return {"history": jnp.zeros((batch, length), jnp.int32),
            "cache_index": jnp.zeros((), jnp.int32)}

  def log_prob_table(older, previous):
    logits = first[previous] + second[older]
    return logits - np.logaddexp.reduce(logits)

  return tokens_to_logits, init_cache, log_prob_table


def sequence_log_probs(log_prob_table, tokens):
  """Per-position log-probs of `tokens` (a list, BOS implied) under the toy."""
  history = [0, 0] + list(tokens)
  return [float(log_prob_table(history[t], history[t + 1])[history[t + 2]])
          for t in range(len(tokens))]


def reference_greedy(log_prob_table, prompt, length):
  """Plain Python greedy decoding with forced nonzero prompt tokens."""
  tokens, score = [], 0.0
  for t in range(length):
    history = [0, 0] + tokens
    table = log_prob_table(history[-2], history[-1])
    token = int(prompt[t]) if prompt[t] else int(np.argmax(table))
    if not prompt[t]:
      score += float(table[token])
    tokens.append(token)
    if token == EOS:
      break
  return tokens + [0] * (length - len(tokens)), score


@pytest.mark.parametrize("trigram", [False, True])
def test_greedy_matches_python_reference_loop(trigram):
  vocab, batch, length = 7, 3, 6
  step, init_cache, table = make_toy(vocab, seed=0, trigram=trigram)
  inputs = np.zeros((batch, length), np.int32)
  sequences, log_probs = decoding.temperature_sample(
      inputs, init_cache(batch, length), step, EOS, temperature=0.0)
  assert sequences.shape == (batch, 1, length)
  for row in range(batch):
    expected, score = reference_greedy(table, inputs[row], length)
    assert sequences[row, 0].tolist() == expected
    np.testing.assert_allclose(log_probs[row, 0], score, rtol=1e-5)


def test_eos_stops_the_row_and_pads_after_it():
  vocab, length = 6, 8
  # A strong EOS bias makes every row stop after a token or two.
  step, init_cache, table = make_toy(vocab, seed=3, trigram=True, eos_boost=3.0)
  inputs = np.zeros((2, length), np.int32)
  inputs[1, :3] = [4, 5, 4]  # the prompt delays EOS in row 1
  sequences, _ = decoding.temperature_sample(
      inputs, init_cache(2, length), step, EOS, temperature=0.0)
  for row in range(2):
    decoded = sequences[row, 0].tolist()
    assert EOS in decoded
    end = decoded.index(EOS)
    assert decoded[end + 1:] == [0] * (length - end - 1)
    assert decoded == reference_greedy(table, inputs[row], length)[0]
  assert sequences[1, 0, :3].tolist() == [4, 5, 4]


def test_loop_exits_as_soon_as_every_row_has_ended():
  vocab, length = 6, 10
  step, init_cache, table = make_toy(vocab, seed=3, trigram=False, eos_boost=6.0)
  calls = []

  def counting_step(token_ids, cache):
    jax.debug.callback(lambda index: calls.append(int(index)), cache["cache_index"])
    return step(token_ids, cache)

  inputs = np.zeros((2, length), np.int32)
  sequences, _ = decoding.temperature_sample(
      inputs, init_cache(2, length), counting_step, EOS, temperature=0.0)
  jax.effects_barrier()
  last_eos = max(sequences[row, 0].tolist().index(EOS) for row in range(2))
  assert last_eos < length - 1
  assert len(calls) == last_eos + 1


def test_mixed_forced_prefixes_in_one_batch():
  vocab, length = 7, 6
  step, init_cache, table = make_toy(vocab, seed=1, trigram=True)
  inputs = np.array([[5, 3, 0, 0, 0, 0],
                     [0, 0, 0, 0, 0, 0],
                     [2, 0, 0, 0, 0, 0],
                     [6, 6, 6, 6, 6, 6]], np.int32)
  sequences, log_probs = decoding.temperature_sample(
      inputs, init_cache(4, length), step, EOS, temperature=0.0)
  for row in range(4):
    expected, score = reference_greedy(table, inputs[row], length)
    assert sequences[row, 0].tolist() == expected
    np.testing.assert_allclose(log_probs[row, 0], score, rtol=1e-5, atol=1e-6)
  assert log_probs[3, 0] == 0.0  # nothing was decoded in a fully forced row


def test_prefilled_cache_with_initial_index_continues_the_prompt():
  vocab, length, batch = 7, 6, 2
  step, init_cache, table = make_toy(vocab, seed=2, trigram=True)
  inputs = np.zeros((batch, length), np.int32)
  inputs[:, :2] = [[4, 2], [3, 5]]
  full, _ = decoding.temperature_sample(
      inputs, init_cache(batch, length), step, EOS, temperature=0.0)
  # Prefill: feed BOS and the first prompt token, leaving the last to the loop.
  cache = init_cache(batch, length)
  for fed in (np.zeros((batch, 1), np.int32), inputs[:, :1]):
    _, cache = step(jnp.asarray(fed), cache)
  resumed, _ = decoding.temperature_sample(
      inputs, cache, step, EOS, temperature=0.0,
      initial_index=jnp.full((batch,), 2, jnp.int32))
  np.testing.assert_array_equal(resumed, full)


def test_max_decode_steps_limits_the_output_and_rejects_more_than_the_cache():
  vocab, length = 7, 6
  step, init_cache, table = make_toy(vocab, seed=4, trigram=False, eos_boost=-20.0)
  inputs = np.zeros((1, length), np.int32)
  sequences, _ = decoding.temperature_sample(
      inputs, init_cache(1, length), step, EOS, temperature=0.0,
      max_decode_steps=3)
  full, _ = decoding.temperature_sample(
      inputs, init_cache(1, length), step, EOS, temperature=0.0)
  assert sequences[0, 0, 3:].tolist() == [0, 0, 0]
  assert sequences[0, 0, :3].tolist() == full[0, 0, :3].tolist()
  assert 0 not in full[0, 0].tolist()
  with pytest.raises(ValueError, match="max_decode_steps=7 exceeds the inputs length 6"):
    decoding.temperature_sample(
        inputs, init_cache(1, length), step, EOS, max_decode_steps=7)


def test_greedy_compiles_under_jit_with_a_static_model_closure():
  vocab, batch, length = 7, 3, 5
  step, init_cache, _ = make_toy(vocab, seed=5, trigram=True)
  inputs = np.zeros((batch, length), np.int32)
  decode = jax.jit(functools.partial(
      decoding.temperature_sample, tokens_to_logits=step, eos_id=EOS,
      temperature=0.0))
  jitted = decode(inputs, init_cache(batch, length))
  eager = decoding.temperature_sample(
      inputs, init_cache(batch, length), step, EOS, temperature=0.0)
  np.testing.assert_array_equal(jitted[0], eager[0])
  np.testing.assert_allclose(jitted[1], eager[1], rtol=1e-6)


# ---------------------------------------------------------------------------
# Sampling.
# ---------------------------------------------------------------------------
def greedy_sequences(step, init_cache, inputs):
  return decoding.temperature_sample(
      inputs, init_cache(*inputs.shape), step, EOS, temperature=0.0)[0]


def test_top_k_one_and_tiny_top_p_sample_the_greedy_sequence():
  vocab, batch, length = 9, 3, 6
  step, init_cache, _ = make_toy(vocab, seed=6, trigram=True)
  inputs = np.zeros((batch, length), np.int32)
  inputs[2, 0] = 4
  greedy = np.repeat(np.asarray(greedy_sequences(step, init_cache, inputs)), 5, axis=1)
  for options in ({"topk": 1}, {"topp": 1e-6}, {"topk": 4, "topp": 1e-6}):
    sampled, _ = decoding.temperature_sample(
        inputs, init_cache(batch, length), step, EOS, num_decodes=5,
        temperature=1.5, decode_rng=jax.random.PRNGKey(11), **options)
    np.testing.assert_array_equal(sampled, greedy, err_msg=str(options))


def test_sampling_is_deterministic_given_the_rng_and_scores_what_it_samples():
  vocab, batch, length = 6, 2, 5
  step, init_cache, table = make_toy(vocab, seed=7, trigram=True)
  inputs = np.zeros((batch, length), np.int32)
  inputs[1, :2] = [3, 4]
  sample = functools.partial(
      decoding.temperature_sample, inputs, init_cache(batch, length), step, EOS,
      num_decodes=6, temperature=1.0)
  first, first_scores = sample(decode_rng=jax.random.PRNGKey(1))
  again, _ = sample(decode_rng=jax.random.PRNGKey(1))
  other, _ = sample(decode_rng=jax.random.PRNGKey(2))
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)
  assert len({tuple(s) for s in np.asarray(first).reshape(-1, length).tolist()}) > 1
  # Each sample's log-prob is the untempered log-likelihood of its decoded tokens
  # (with a trigram toy this also checks that the cache was expanded per sample).
  assert first[1, :, :2].tolist() == [[3, 4]] * 6
  assert np.all(np.diff(np.asarray(first_scores), axis=1) >= 0)  # worst..best
  for row in range(batch):
    for k in range(6):
      tokens = np.asarray(first[row, k]).tolist()
      end = tokens.index(EOS) + 1 if EOS in tokens else length
      assert all(t == 0 for t in tokens[end:])
      per_position = sequence_log_probs(table, tokens[:end])
      expected = sum(lp for t, lp in enumerate(per_position) if not inputs[row, t])
      np.testing.assert_allclose(first_scores[row, k], expected, rtol=1e-5)


def empirical_first_token_distribution(vocab, samples, **options):
  step, init_cache, table = make_toy(vocab, seed=8, trigram=False)
  sequences, _ = decoding.temperature_sample(
      np.zeros((1, 1), np.int32), init_cache(1, 1), step, EOS,
      num_decodes=samples, decode_rng=jax.random.PRNGKey(0), **options)
  counts = np.bincount(np.asarray(sequences).ravel(), minlength=vocab)
  return counts / samples, table(0, 0)


@pytest.mark.parametrize("temperature", [0.6, 1.0, 1.7])
def test_one_step_sampling_matches_softmax_of_logits_over_temperature(temperature):
  frequencies, log_probs = empirical_first_token_distribution(
      6, 20000, temperature=temperature)
  expected = jax.nn.softmax(log_probs / temperature)
  np.testing.assert_allclose(frequencies, expected, atol=0.015)


def test_one_step_top_k_and_top_p_renormalise_over_the_kept_tokens():
  vocab = 6
  frequencies, log_probs = empirical_first_token_distribution(
      vocab, 20000, temperature=1.0, topk=2)
  order = np.argsort(-log_probs)
  expected = np.zeros(vocab)
  expected[order[:2]] = jax.nn.softmax(log_probs[order[:2]])
  np.testing.assert_allclose(frequencies, expected, atol=0.015)

  probs = np.exp(log_probs)
  topp = float(probs[order[0]] + probs[order[1]] / 2)  # the nucleus is 2 tokens
  frequencies, _ = empirical_first_token_distribution(
      vocab, 20000, temperature=1.0, topp=topp)
  np.testing.assert_allclose(frequencies, expected, atol=0.015)


def test_traced_temperature_zero_is_greedy_under_jit():
  vocab, batch, length = 7, 2, 5
  step, init_cache, _ = make_toy(vocab, seed=9, trigram=True)
  inputs = np.zeros((batch, length), np.int32)

  @jax.jit
  def sample(temperature):
    return decoding.temperature_sample(
        inputs, init_cache(batch, length), step, EOS, num_decodes=3,
        temperature=temperature, topp=0.9)[0]

  greedy = np.repeat(np.asarray(greedy_sequences(step, init_cache, inputs)), 3, axis=1)
  np.testing.assert_array_equal(sample(0.0), greedy)
  assert not np.array_equal(sample(5.0), greedy)


# ---------------------------------------------------------------------------
# Beam search.
# ---------------------------------------------------------------------------
def enumerate_sequences(log_prob_table, vocab, length, alpha, prompt=()):
  """Every finished output of at most `length` tokens, best first.

  A sequence ends at its first EOS or at the length limit; PAD is never
  emitted; prompt tokens are forced and add nothing to the score.
  """
  free_tokens = [t for t in range(2, vocab)]
  results = []
  for n in range(1, length + 1):
    for body in itertools.product(free_tokens, repeat=n - 1):
      for last in ([EOS] + free_tokens if n == length else [EOS]):
        tokens = list(body) + [last]
        if any(tokens[t] != p for t, p in enumerate(prompt[:n])):
          continue
        per_position = sequence_log_probs(log_prob_table, tokens)
        total = sum(lp for t, lp in enumerate(per_position) if t >= len(prompt))
        score = total / ((5.0 + n) / 6.0) ** alpha
        results.append((score, tokens + [0] * (length - n)))
  results.sort(key=lambda item: -item[0])
  return results


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_search_returns_the_exact_best_sequences(alpha):
  # 4 real tokens and length 3: 16 beams hold every live prefix, so the
  # search is exhaustive and its finished set must be the true top 16.
  vocab, length, beams = 5, 3, 16
  step, init_cache, table = make_toy(vocab, seed=10, trigram=True, eos_boost=0.5)
  expected = enumerate_sequences(table, vocab, length, alpha)[:beams][::-1]
  sequences, scores = decoding.beam_search(
      np.zeros((1, length), np.int32), init_cache(1, length), step, EOS,
      num_decodes=beams, alpha=alpha)
  assert sequences.shape == (1, beams, length)
  assert sequences[0].tolist() == [tokens for _, tokens in expected]
  np.testing.assert_allclose(scores[0], [s for s, _ in expected], rtol=1e-5)


def test_length_penalty_changes_the_winner_and_beam_search_follows_it():
  vocab, length = 5, 3
  for seed in range(100):
    step, init_cache, table = make_toy(vocab, seed=seed, trigram=True)
    short_best = enumerate_sequences(table, vocab, length, alpha=0.0)[0][1]
    long_best = enumerate_sequences(table, vocab, length, alpha=3.0)[0][1]
    if short_best != long_best:
      break
  else:
    pytest.fail("no toy table where alpha changes the best sequence")
  for alpha, best in ((0.0, short_best), (3.0, long_best)):
    sequences, _ = decoding.beam_search(
        np.zeros((1, length), np.int32), init_cache(1, length), step, EOS,
        num_decodes=8, alpha=alpha)
    assert sequences[0, -1].tolist() == best, alpha


@pytest.mark.parametrize("trigram", [False, True])
def test_beam_of_one_is_greedy(trigram):
  vocab, batch, length = 7, 3, 6
  step, init_cache, _ = make_toy(vocab, seed=12, trigram=trigram)
  inputs = np.zeros((batch, length), np.int32)
  inputs[1, :2] = [5, 3]
  sequences, _ = decoding.beam_search(
      inputs, init_cache(batch, length), step, EOS, num_decodes=1, alpha=0.6)
  np.testing.assert_array_equal(sequences, greedy_sequences(step, init_cache, inputs))


def test_beam_search_over_a_batch_of_mixed_prompts_under_jit():
  vocab, length, beams = 5, 3, 16
  step, init_cache, table = make_toy(vocab, seed=13, trigram=True, eos_boost=0.5)
  inputs = np.array([[3, 0, 0], [0, 0, 0], [4, 2, 0]], np.int32)
  search = jax.jit(functools.partial(
      decoding.beam_search, tokens_to_logits=step, eos_id=EOS,
      num_decodes=beams, alpha=0.6))
  sequences, scores = search(inputs, init_cache(3, length))
  for row in range(3):
    prompt = tuple(int(t) for t in inputs[row] if t)
    expected = enumerate_sequences(table, vocab, length, 0.6, prompt)[:beams]
    # Slots beyond the possible continuations stay empty (NEG_INF scores).
    real = np.asarray(scores[row]) > decoding.NEG_INF / 2
    assert real.sum() == len(expected)
    best_first = np.asarray(sequences[row])[real][::-1].tolist()
    assert best_first == [tokens for _, tokens in expected]
    np.testing.assert_allclose(np.asarray(scores[row])[real][::-1],
                               [score for score, _ in expected], rtol=1e-5)


def test_beam_search_stops_early_and_rejects_a_length_beyond_the_cache():
  vocab, length = 6, 12
  step, init_cache, table = make_toy(vocab, seed=14, trigram=True, eos_boost=5.0)
  calls = []

  def counting_step(token_ids, cache):
    jax.debug.callback(lambda index: calls.append(int(index)), cache["cache_index"])
    return step(token_ids, cache)

  sequences, scores = decoding.beam_search(
      np.zeros((2, length), np.int32), init_cache(2, length), counting_step, EOS,
      num_decodes=2, alpha=0.6)
  jax.effects_barrier()
  assert len(calls) < length  # every beam ended long before the limit
  assert np.all(np.diff(np.asarray(scores), axis=1) >= 0)  # worst..best
  with pytest.raises(ValueError, match="max_decode_len=13 exceeds the inputs length 12"):
    decoding.beam_search(np.zeros((2, length), np.int32), init_cache(2, length),
                         step, EOS, max_decode_len=13)


def test_helpers_expand_gather_and_skip_scalar_cache_leaves():
  x = jnp.arange(6).reshape(2, 3)
  expanded = decoding.flat_batch_beam_expand(x, 2)
  assert expanded.tolist() == [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]]
  beams = decoding.unflatten_beam_dim(jnp.arange(8).reshape(4, 2), 2, 2)
  picked = decoding.gather_beams(beams, jnp.array([[1, 1, 0], [0, 1, 0]]))
  assert picked.tolist() == [[[2, 3], [2, 3], [0, 1]], [[4, 5], [6, 7], [4, 5]]]
  cache = {"k": jnp.ones((2, 3)), "cache_index": jnp.array(7)}
  mapped = decoding.cache_map(lambda leaf: leaf * 2, cache)
  assert mapped["k"].tolist() == [[2.0] * 3] * 2 and int(mapped["cache_index"]) == 7


def test_beam_search_skips_reordering_cache_leaves_the_model_never_writes():
  # A per-example leaf the model only reads (like projected encoder keys):
  # returned as the same array, beam search does not gather it each step, and
  # the result is the same as when the model hands back a fresh copy.
  vocab, length, beams = 6, 4, 3
  step, init_cache, _ = make_toy(vocab, seed=15, trigram=True)
  bias = np.random.RandomState(0).normal(size=(2, vocab)).astype(np.float32) * 3.0
  cache = dict(init_cache(2, length), bias=jnp.asarray(bias))
  inputs = np.array([[0, 0, 0, 0], [4, 0, 0, 0]], np.int32)

  def model(rewrite):
    def tokens_to_logits(token_ids, cache):
      logits, new = step(token_ids, {"history": cache["history"],
                                     "cache_index": cache["cache_index"]})
      new["bias"] = cache["bias"] * 1.0 if rewrite else cache["bias"]
      return logits + cache["bias"], new
    return tokens_to_logits

  def search(rewrite, cache):
    return decoding.beam_search(inputs, cache, model(rewrite), EOS,
                                num_decodes=beams, alpha=0.6)

  (kept, kept_scores), (copied, copied_scores) = search(False, cache), search(True, cache)
  np.testing.assert_array_equal(kept, copied)
  np.testing.assert_allclose(kept_scores, copied_scores, rtol=1e-6)
  gathers = lambda rewrite: str(jax.make_jaxpr(functools.partial(search, rewrite))(cache)).count("gather[")
  assert gathers(False) < gathers(True)


def test_first_argmax_and_token_log_probs_match_the_plain_ops():
  logits = jnp.asarray(np.random.RandomState(1).normal(size=(3, 4, 50)), jnp.float32)
  logits = logits.at[0, 0, 7].set(9.0).at[0, 0, 3].set(9.0)  # a tie: the first wins
  np.testing.assert_array_equal(decoding.first_argmax(logits), jnp.argmax(logits, -1))
  assert int(decoding.first_argmax(logits)[0, 0]) == 3
  tokens = jnp.asarray(np.random.RandomState(2).randint(0, 50, size=(3, 4)), jnp.int32)
  expected = jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)[..., 0]
  np.testing.assert_allclose(decoding.token_log_probs(logits, tokens), expected, atol=1e-5)


@pytest.mark.parametrize("shape,k", [((3, 4, 32128), 8), ((2, 1000), 3), ((5, 300), 2),
                                     ((2, 50), 8)])
def test_chunked_top_k_equals_lax_top_k(shape, k):
  """Exact, whatever the row length (a padded last chunk, or a row too short to chunk)."""
  x = jnp.asarray(np.random.RandomState(3).normal(size=shape), jnp.float32)
  # The largest values crowded into one chunk, and the row maximum in the last one.
  x = x.at[..., 130:130 + k].add(10.0).at[..., -1].add(20.0)
  values, indices = decoding.chunked_top_k(x, k)
  expected_values, expected_indices = jax.lax.top_k(x, k)
  np.testing.assert_array_equal(values, expected_values)
  np.testing.assert_array_equal(indices, expected_indices)


# ---------------------------------------------------------------------------
# A real flax KV cache (the "cache" collection a flax decoder keeps).
# ---------------------------------------------------------------------------
class TinyCausalDecoder(nn.Module):
  """Embedding, one causal self-attention layer, LM head: history-dependent."""
  vocab: int = 5

  @nn.compact
  def __call__(self, tokens, decode=False):
    x = nn.Embed(self.vocab, 16)(tokens)
    mask = None if decode else nn.make_causal_mask(tokens)
    x = x + nn.MultiHeadDotProductAttention(
        num_heads=2, qkv_features=16, decode=decode)(x, mask=mask)
    logits = nn.Dense(self.vocab)(x)
    return logits.at[..., 0].set(-1e9)  # never emit PAD


def test_flax_kv_cache_decodes_like_rerunning_the_full_causal_model():
  vocab, batch, length = 5, 2, 3
  model = TinyCausalDecoder(vocab)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, length), jnp.int32))["params"]
  cache = model.init(jax.random.PRNGKey(0), jnp.zeros((batch, length), jnp.int32),
                     decode=True)["cache"]

  def tokens_to_logits(token_ids, cache):
    logits, updated = model.apply({"params": params, "cache": cache}, token_ids,
                                  decode=True, mutable=["cache"])
    return logits[:, -1], updated["cache"]

  full_forward = jax.jit(lambda fed: jax.nn.log_softmax(model.apply({"params": params}, fed)))

  def full_log_probs(tokens):  # [n, V] log-probs of every position, no cache
    return np.asarray(full_forward(jnp.asarray([[0] + list(tokens[:-1])], jnp.int32))[0])

  def score(tokens, alpha):
    n = tokens.index(EOS) + 1 if EOS in tokens else length
    table = full_log_probs(tokens[:n])
    return sum(table[t, tokens[t]] for t in range(n)) / ((5.0 + n) / 6.0) ** alpha

  inputs = np.zeros((batch, length), np.int32)
  inputs[1, 0] = 3
  greedy, _ = decoding.temperature_sample(inputs, cache, tokens_to_logits, EOS,
                                          temperature=0.0)
  for row in range(batch):
    tokens = []
    for t in range(length):
      token = int(inputs[row, t]) or int(np.argmax(full_log_probs(tokens + [0])[t]))
      tokens.append(token)
      if token == EOS:
        break
    assert greedy[row, 0].tolist() == tokens + [0] * (length - len(tokens))

  # 16 beams are exhaustive here: the best must be the best of all sequences.
  sequences, scores = decoding.beam_search(
      inputs[:1], jax.tree_util.tree_map(lambda x: x[:1] if x.ndim else x, cache),
      tokens_to_logits, EOS, num_decodes=16, alpha=0.6)
  candidates = [list(body) + [EOS] for n in range(length)
                for body in itertools.product(range(2, vocab), repeat=n)]
  candidates += [list(s) for s in itertools.product(range(1, vocab), repeat=length)
                 if EOS not in s[:-1]]
  best = max(candidates, key=lambda s: score(s, 0.6))
  assert sequences[0, -1].tolist() == best + [0] * (length - len(best))
  np.testing.assert_allclose(scores[0, -1], score(best, 0.6), rtol=1e-4)


def test_a_cache_stacked_over_scanned_layers_decodes_like_an_unstacked_one():
  vocab, batch, length, layers = 6, 2, 4, 3
  step, init_cache, _ = make_toy(vocab, seed=15, trigram=True)

  def stacked_step(token_ids, cache):  # every layer holds the same toy cache
    logits, layer0 = step(token_ids, jax.tree_util.tree_map(lambda x: x[0], cache))
    return logits, jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(x, (layers,) + x.shape), layer0)

  stacked_cache = jax.tree_util.tree_map(
      lambda x: jnp.broadcast_to(x, (layers,) + x.shape), init_cache(batch, length))
  inputs = np.zeros((batch, length), np.int32)
  inputs[0, 0] = 4
  for search, options in ((decoding.beam_search, {"num_decodes": 3}),
                          (decoding.temperature_sample, {"num_decodes": 3})):
    flat = search(inputs, init_cache(batch, length), step, EOS, **options)
    stacked = search(inputs, stacked_cache, stacked_step, EOS, cache_offset=1,
                     **options)
    np.testing.assert_array_equal(stacked[0], flat[0])
    np.testing.assert_allclose(stacked[1], flat[1], rtol=1e-6)
