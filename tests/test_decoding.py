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
