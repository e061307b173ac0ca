"""Fast autoregressive decoding: greedy, temperature/top-k/top-p sampling, beam search.

Network-independent and T5X-like. A model hands in a `tokens_to_logits`
function and its decoding cache; each decoding function is one
`lax.while_loop` with fixed shapes, so the whole search (model step, argmax or
sampling, forced prompt tokens, EOS and length logic, beam reordering) compiles
once per shape and runs without Python between tokens.

The model contract:

  tokens_to_logits(token_ids [B*, 1] int32, cache) -> (logits [B*, V], new_cache)

returns the logits of the next position given the token of the current one.
The position lives in the cache (the flax "cache" collection keeps a scalar
`cache_index`), so the decoding functions never pass it. Every cache leaf with
ndim >= 1 must have the (flattened) batch as its leading dimension; scalar
leaves (such as `cache_index`) are shared by all rows. A model that scans over
layers stacks its cache on a leading layers axis: pass `cache_offset=1`, and
the batch is axis 1 of every leaf with ndim > 1 (the [layers] `cache_index`
is shared), as in T5X. A leaf that decoding never writes (projected
encoder keys/values) should come back as the same array it went in as: beam
search then skips reordering it. The decoding functions
expand the cache for several samples or beams themselves; a model expands what
its `tokens_to_logits` closes over (encoder outputs, masks) with
`flat_batch_beam_expand`.

Sequences follow the decoder side of T5X's EncDecFeatureConverter: PAD = 0, the
decoder's BOS is 0, `inputs` [B, L] holds the output positions, and nonzero
entries of `inputs` are forced (a prompt, as in T5X). The loop decodes at most
L positions: the model must allocate its cache for L positions (the decoding
functions never run past it; asking for more raises ValueError).
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

PyTree = Any
TokensToLogits = Callable[[jax.Array, PyTree], Tuple[jax.Array, PyTree]]

# Finite, as in T5X: a few of them summed stay finite and still sort last.
NEG_INF = np.float32(-1.0e7)


# ---------------------------------------------------------------------------
# Batch / beam helpers.
# ---------------------------------------------------------------------------
def flat_batch_beam_expand(x: jax.Array, beam_size: int, offset: int = 0) -> jax.Array:
  """[B, ...] -> [B * beam_size, ...]; the copies of one example are adjacent.

  `offset` is the batch axis (1 for a cache stacked over scanned layers).
  """
  return jnp.repeat(x, beam_size, axis=offset)


def unflatten_beam_dim(x: jax.Array, batch_size: int, beam_size: int) -> jax.Array:
  """[B * beam_size, ...] -> [B, beam_size, ...] (inverse of the flattening)."""
  return x.reshape((batch_size, beam_size) + x.shape[1:])


def flatten_beam_dim(x: jax.Array) -> jax.Array:
  """[B, beam_size, ...] -> [B * beam_size, ...]."""
  return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def gather_beams(x: jax.Array, beam_indices: jax.Array) -> jax.Array:
  """Picks beams per example: x [B, K, ...], beam_indices [B, N] -> [B, N, ...]."""
  return jax.vmap(lambda rows, idx: rows[idx])(x, beam_indices)


def cache_map(fn: Callable[[jax.Array], jax.Array], cache: PyTree,
              cache_offset: int = 0) -> PyTree:
  """Applies `fn` to every cache leaf that has a batch axis (ndim > cache_offset).

  The others (the shared `cache_index`: a scalar, or [layers] under scan) are
  returned untouched.
  """
  return jax.tree_util.tree_map(
      lambda leaf: fn(leaf) if jnp.ndim(leaf) > cache_offset else leaf, cache)


def gather_cache_beams(cache: PyTree, beam_indices: jax.Array, batch_size: int,
                       beam_size: int, cache_offset: int = 0,
                       previous_cache: Optional[PyTree] = None) -> PyTree:
  """Reorders a flattened [B * K] cache so row (b, k) holds beam beam_indices[b, k].

  With `previous_cache` (the cache before this step, same structure), leaves
  that are the very same array in both were never written while decoding (the
  cross-attention keys and values): every beam of an example still holds the
  copy made when the batch was expanded, so reordering them is a no-op and is
  skipped, saving a copy of the largest cache leaves per step.
  """
  def gather(leaf):
    leaf = jnp.moveaxis(leaf, cache_offset, 0)
    leaf = flatten_beam_dim(gather_beams(
        unflatten_beam_dim(leaf, batch_size, beam_size), beam_indices))
    return jnp.moveaxis(leaf, 0, cache_offset)
  if previous_cache is None:
    return cache_map(gather, cache, cache_offset)
  return jax.tree_util.tree_map(
      lambda leaf, before: leaf if leaf is before or jnp.ndim(leaf) <= cache_offset
      else gather(leaf), cache, previous_cache)


def first_argmax(logits: jax.Array) -> jax.Array:
  """`jnp.argmax(logits, -1)` (first index of the maximum) as two plain reductions.

  XLA on CPU runs argmax's (value, index) reduction unvectorised: over
  [B, L, 32128] training logits it cost more than the fused cross-entropy
  forward, and in a decoding step about as much as the LM head. A max, then
  the smallest index holding it, vectorise. Rows that are all NaN give index 0,
  as argmax's NaN propagation would not (such rows have NaN loss anyway).
  """
  vocab_size = logits.shape[-1]
  top = jnp.max(logits, axis=-1, keepdims=True)
  index = lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
  first = jnp.min(jnp.where(logits == top, index, vocab_size), axis=-1)
  return jnp.where(first == vocab_size, 0, first).astype(jnp.int32)


def chunked_top_k(x: jax.Array, k: int, chunk: int = 128) -> Tuple[jax.Array, jax.Array]:
  """`lax.top_k(x, k)` over the last axis, exact, for k much smaller than it.

  The k largest values lie in the k chunks with the largest maxima (a value
  outside them is beaten by those k maxima), so one vectorised max per chunk,
  a top-k over the chunk maxima and a top-k over k * chunk candidates replace
  a top-k over the whole vocabulary row (XLA on CPU sorts for it). Equal
  values may come back in another order than `lax.top_k`'s.
  """
  size = x.shape[-1]
  if k * chunk * 2 > size:
    return lax.top_k(x, k)
  pad = (-size) % chunk
  if pad:
    x = jnp.concatenate(
        [x, jnp.full(x.shape[:-1] + (pad,), -jnp.inf, x.dtype)], axis=-1)
  chunks = x.reshape(x.shape[:-1] + (-1, chunk))
  _, best_chunks = lax.top_k(jnp.max(chunks, axis=-1), k)  # [..., k]
  candidates = jnp.take_along_axis(chunks, best_chunks[..., None], axis=-2)
  values, within = lax.top_k(candidates.reshape(x.shape[:-1] + (k * chunk,)), k)
  indices = (jnp.take_along_axis(best_chunks, within // chunk, axis=-1) * chunk
             + within % chunk)
  return values, indices.astype(jnp.int32)


def token_log_probs(logits: jax.Array, tokens: jax.Array) -> jax.Array:
  """log_softmax(logits)[..., token] per row without writing the normalised row.

  logits [..., V], tokens [...] -> [...]: the chosen logit minus the row's
  logsumexp, two passes over V instead of log_softmax's three plus a gather.
  """
  chosen = jnp.take_along_axis(logits, tokens[..., None], axis=-1)[..., 0]
  return chosen - jax.nn.logsumexp(logits, axis=-1)


def brevity_penalty(alpha: float, length: jax.Array) -> jax.Array:
  """T5X / GNMT length penalty ((5 + length) / 6) ** alpha; scores are divided by it."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def _is_static_zero(value: Any) -> bool:
  """True for a concrete (Python / numpy) zero; traced values are never static."""
  return isinstance(value, (numbers.Number, np.ndarray, np.generic)) and np.all(
      np.asarray(value) == 0)


def _check_length(name: str, value: Optional[int], length: int) -> int:
  """The loop covers the L positions of `inputs`, the length the cache was made for."""
  if value is None:
    return length
  if not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"decoding: {name} must be a positive int, got {value!r}")
  if value > length:
    raise ValueError(
        f"decoding: {name}={value} exceeds the inputs length {length}; the loop "
        f"decodes at most inputs.shape[1] positions and the model's cache is "
        f"allocated for that length. Pass inputs (and build the cache) with "
        f"length >= {value}.")
  return int(value)


# ---------------------------------------------------------------------------
# Temperature sampling (greedy at temperature 0).
# ---------------------------------------------------------------------------
def _nucleus_filter_sorted(sorted_logits: jax.Array, topp: Any) -> jax.Array:
  """Keeps the smallest prefix of descending logits whose probability reaches topp."""
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  mass_before = jnp.cumsum(probs, axis=-1) - probs
  keep = mass_before < topp
  keep = keep.at[:, 0].set(True)  # the most likely token always survives
  if not isinstance(topp, numbers.Number):
    keep = keep | (jnp.asarray(topp) <= 0)  # a traced topp of 0 means "off"
  return jnp.where(keep, sorted_logits, -jnp.inf)


def _sample_tokens(rng: jax.Array, logits: jax.Array, temperature: Any,
                   topk: int, topp: Any) -> jax.Array:
  """Draws one token per row: temperature first, then top-k, then top-p."""
  scaled = logits / jnp.maximum(jnp.asarray(temperature, jnp.float32), 1e-6)
  use_topp = not _is_static_zero(topp)
  if topk > 0:
    candidates, candidate_ids = lax.top_k(scaled, topk)  # sorted, descending
  elif use_topp:
    candidates, candidate_ids = lax.top_k(scaled, scaled.shape[-1])
  else:
    candidates, candidate_ids = scaled, None
  if use_topp:
    candidates = _nucleus_filter_sorted(candidates, topp)
  choice = jax.random.categorical(rng, candidates, axis=-1).astype(jnp.int32)
  if candidate_ids is not None:
    choice = jnp.take_along_axis(candidate_ids, choice[:, None], axis=-1)[:, 0]
  if not isinstance(temperature, numbers.Number):
    # A traced temperature: 0 still means greedy.
    choice = jnp.where(jnp.asarray(temperature) == 0, first_argmax(logits), choice)
  return choice


class _SamplingState(NamedTuple):
  step: jax.Array         # [] int32, loop iteration
  sequences: jax.Array    # [B*, L + 1] int32, column 0 is the decoder BOS
  cache: PyTree
  ended: jax.Array        # [B*] bool
  log_probs: jax.Array    # [B*] float32


def temperature_sample(
    inputs: jax.Array,
    cache: PyTree,
    tokens_to_logits: TokensToLogits,
    eos_id: int,
    decode_rng: Optional[jax.Array] = None,
    num_decodes: int = 1,
    temperature: Any = 1.0,
    topk: int = 0,
    topp: Any = 0.0,
    initial_index: Optional[jax.Array] = None,
    max_decode_steps: Optional[int] = None,
    cache_offset: int = 0,
) -> Tuple[jax.Array, jax.Array]:
  """Greedy decoding (temperature 0) or sampling with temperature, top-k, top-p.

  Args:
    inputs: [B, L] int32. Nonzero entries are forced tokens (a prompt); zeros
      are decoded. L is the maximum output length; the cache must hold L.
    cache: the model's decoding cache for batch B (expanded here).
    tokens_to_logits: see the module docstring.
    eos_id: a row stops after writing it; only PAD (0) follows.
    decode_rng: PRNG key for sampling (default PRNGKey(0), deterministic).
    num_decodes: samples per input; batch and cache are expanded to B * it.
    temperature: 0 means argmax; otherwise logits are divided by it. May be
      traced (then both argmax and sampling are computed).
    topk: static int; > 0 samples among the k most likely tokens.
    topp: > 0 samples from the smallest set of most likely tokens whose
      (tempered, top-k filtered) probability reaches topp (nucleus sampling).
    initial_index: optional [B] int32, first position to decode: positions
      below it are copied from `inputs` and the cache must already cover them
      (a prefilled prompt); the token fed first is the one at initial_index - 1.
    max_decode_steps: decode at most this many positions from initial_index
      (static int <= L); later positions stay PAD.
    cache_offset: the batch axis of cache leaves (1 for scanned layers).

  Returns:
    sequences [B, num_decodes, L] int32 (forced and decoded tokens, PAD after
    EOS) and log_probs [B, num_decodes] float32: the sum, over decoded (not
    forced) tokens up to and including EOS, of log softmax(logits) of the
    chosen token under the model's untempered, unfiltered distribution. The
    samples of an input are sorted by it worst..best (the best is [:, -1]).
  """
  inputs = jnp.asarray(inputs, jnp.int32)
  batch_size, length = inputs.shape
  max_steps = _check_length("max_decode_steps", max_decode_steps, length)
  if not isinstance(topk, (int, np.integer)) or topk < 0:
    raise ValueError(f"temperature_sample: topk must be a static int >= 0, got {topk!r}")
  greedy = _is_static_zero(temperature)
  if decode_rng is None:
    decode_rng = jax.random.PRNGKey(0)

  if initial_index is None:
    start = jnp.zeros((batch_size,), jnp.int32)
  else:
    start = jnp.broadcast_to(jnp.asarray(initial_index, jnp.int32), (batch_size,))
  if num_decodes > 1:
    inputs = flat_batch_beam_expand(inputs, num_decodes)
    start = flat_batch_beam_expand(start, num_decodes)
    cache = cache_map(
        lambda x: flat_batch_beam_expand(x, num_decodes, cache_offset),
        cache, cache_offset)
  rows = inputs.shape[0]

  columns = jnp.arange(length + 1, dtype=jnp.int32)[None, :]
  # Output position t lives in column t + 1, so the token fed at t is column t.
  prompt_kept = jnp.where(columns[:, 1:] <= start[:, None], inputs, 0)
  sequences = jnp.concatenate(
      [jnp.zeros((rows, 1), jnp.int32), prompt_kept], axis=1)
  initial_state = _SamplingState(
      step=jnp.zeros((), jnp.int32),
      sequences=sequences,
      cache=cache,
      ended=start >= length,
      log_probs=jnp.zeros((rows,), jnp.float32))

  def not_all_ended(state: _SamplingState) -> jax.Array:
    return ~jnp.all(state.ended)

  def decode_one_position(state: _SamplingState) -> _SamplingState:
    position = start + state.step  # [rows], output position being decoded
    fed = jnp.take_along_axis(
        state.sequences, jnp.minimum(position, length)[:, None], axis=1)
    logits, new_cache = tokens_to_logits(fed, state.cache)
    logits = logits.reshape(rows, -1).astype(jnp.float32)  # [rows, 1, V] too
    if greedy:
      chosen = first_argmax(logits)
    else:
      rng = jax.random.fold_in(decode_rng, state.step)
      chosen = _sample_tokens(rng, logits, temperature, topk, topp)
    forced = jnp.take_along_axis(
        inputs, jnp.minimum(position, length - 1)[:, None], axis=1)[:, 0]
    is_forced = forced != 0
    token = jnp.where(is_forced, forced, chosen)
    token = jnp.where(state.ended, 0, token)
    token_log_prob = token_log_probs(logits, token)
    log_probs = state.log_probs + jnp.where(
        state.ended | is_forced, 0.0, token_log_prob)
    sequences = jnp.where(
        (columns == position[:, None] + 1) & ~state.ended[:, None],
        token[:, None], state.sequences)
    ended = (state.ended | (token == eos_id) | (position + 1 >= length)
             | (state.step + 1 >= max_steps))
    return _SamplingState(state.step + 1, sequences, new_cache, ended, log_probs)

  final = lax.while_loop(not_all_ended, decode_one_position, initial_state)
  sequences = final.sequences[:, 1:].reshape(batch_size, num_decodes, length)
  log_probs = final.log_probs.reshape(batch_size, num_decodes)
  # Worst..best like beam_search and T5X, so callers take [:, -1] as the best.
  order = jnp.argsort(log_probs, axis=1)
  sequences = jnp.take_along_axis(sequences, order[:, :, None], axis=1)
  log_probs = jnp.take_along_axis(log_probs, order, axis=1)
  return sequences, log_probs


# ---------------------------------------------------------------------------
# Beam search.
# ---------------------------------------------------------------------------
class _BeamState(NamedTuple):
  step: jax.Array             # [] int32, output position being decoded
  live_seqs: jax.Array        # [B, K, L + 1] int32, column 0 is the decoder BOS
  live_log_probs: jax.Array   # [B, K] float32, sorted best first
  finished_seqs: jax.Array    # [B, K, L + 1] int32
  finished_scores: jax.Array  # [B, K] float32, length-penalised, best first
  finished_flags: jax.Array   # [B, K] bool, False for empty slots
  cache: PyTree               # leaves [B * K, ...]


def beam_search(
    inputs: jax.Array,
    cache: PyTree,
    tokens_to_logits: TokensToLogits,
    eos_id: int,
    num_decodes: int = 4,
    alpha: float = 0.6,
    max_decode_len: Optional[int] = None,
    cache_offset: int = 0,
) -> Tuple[jax.Array, jax.Array]:
  """T5X-style beam search with the ((5 + length) / 6) ** alpha length penalty.

  Keeps `num_decodes` live and `num_decodes` finished beams per example. Each
  step extends every live beam by every token, keeps the best 2 * num_decodes
  candidates, moves those ending in EOS to the finished set (scored
  log_prob / penalty(length)) and keeps the best non-EOS ones alive; the cache
  follows the surviving beams by a gather on its flattened [B * K] batch axis.
  The loop stops when no live beam can still beat the worst finished one
  (alpha >= 0), or at the length limit, where the live beams are finished
  without EOS (unlike T5X, which only falls back to them when no beam ended,
  every returned beam is thus a real sequence).

  Args:
    inputs: [B, L] int32; nonzero entries are forced (a prompt) in every beam
      and add 0 to the log-prob. L bounds the output; the cache must hold L.
    cache: the model's decoding cache for batch B (expanded here).
    tokens_to_logits: see the module docstring.
    eos_id: end-of-sequence id; PAD (0) fills the rest of a finished beam.
    num_decodes: the beam size and the number of sequences returned.
    alpha: length penalty exponent; 0 ranks by the plain sum of log-probs.
    max_decode_len: optional static int <= L, the output length limit.
    cache_offset: the batch axis of cache leaves (1 for scanned layers).

  Returns:
    sequences [B, num_decodes, L] sorted worst..best (the best is [:, -1]) as
    T5X does, and their scores [B, num_decodes]: the sum of the log-probs of
    the decoded tokens divided by ((5 + length) / 6) ** alpha, where length
    counts every position up to and including EOS.
  """
  inputs = jnp.asarray(inputs, jnp.int32)
  batch_size, length = inputs.shape
  max_len = _check_length("max_decode_len", max_decode_len, length)
  beam_size = num_decodes
  cache = cache_map(lambda x: flat_batch_beam_expand(x, beam_size, cache_offset),
                    cache, cache_offset)

  # Only beam 0 is alive at first, so the first step does not pick copies.
  initial_log_probs = jnp.tile(
      jnp.asarray([0.0] + [NEG_INF] * (beam_size - 1), jnp.float32),
      (batch_size, 1))
  empty_seqs = jnp.zeros((batch_size, beam_size, length + 1), jnp.int32)
  initial_state = _BeamState(
      step=jnp.zeros((), jnp.int32),
      live_seqs=empty_seqs,
      live_log_probs=initial_log_probs,
      finished_seqs=empty_seqs,
      finished_scores=jnp.full((batch_size, beam_size), NEG_INF, jnp.float32),
      finished_flags=jnp.zeros((batch_size, beam_size), jnp.bool_),
      cache=cache)
  # Log-probs only fall, so a live beam scores at most its current log-prob
  # divided by the largest penalty, the one at the length limit.
  largest_penalty = brevity_penalty(alpha, max_len)

  def can_still_improve(state: _BeamState) -> jax.Array:
    best_live = state.live_log_probs[:, 0] / largest_penalty
    worst_finished = jnp.min(
        jnp.where(state.finished_flags, state.finished_scores, NEG_INF), axis=1)
    return (state.step < max_len) & ~jnp.all(worst_finished > best_live)

  def extend_beams(state: _BeamState) -> _BeamState:
    step = state.step
    fed = lax.dynamic_index_in_dim(state.live_seqs, step, axis=2, keepdims=False)
    logits, new_cache = tokens_to_logits(
        fed.reshape(batch_size * beam_size, 1), state.cache)
    logits = logits.reshape(batch_size, beam_size, -1).astype(jnp.float32)
    # The example's best 2K (beam, token) candidates are among each beam's best
    # 2K tokens (a beam adds one constant to all its tokens), so the example-
    # wide top-k runs over K x 2K values instead of K x V, and log_softmax is
    # needed only for those: their logit minus the row's logsumexp.
    per_beam = min(2 * beam_size, logits.shape[-1])
    beam_logits, beam_tokens = chunked_top_k(logits, per_beam)  # [B, K, per_beam]
    beam_log_probs = beam_logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    # A forced (prompt) token is each beam's only candidate, at log-prob 0.
    forced = lax.dynamic_index_in_dim(inputs, step, axis=1, keepdims=False)
    is_forced = (forced != 0)[:, None, None]
    only_first = jnp.where(jnp.arange(per_beam) == 0, 0.0, NEG_INF)
    beam_log_probs = jnp.where(is_forced, only_first, beam_log_probs)
    beam_tokens = jnp.where(is_forced, forced[:, None, None], beam_tokens)

    candidates = state.live_log_probs[:, :, None] + beam_log_probs
    top_log_probs, top_ids = lax.top_k(
        candidates.reshape(batch_size, beam_size * per_beam), 2 * beam_size)
    top_beams = top_ids // per_beam
    top_tokens = jnp.take_along_axis(
        beam_tokens.reshape(batch_size, beam_size * per_beam), top_ids, axis=1)
    columns = jnp.arange(length + 1, dtype=jnp.int32)[None, None, :]
    top_seqs = jnp.where(columns == step + 1, top_tokens[:, :, None],
                         gather_beams(state.live_seqs, top_beams))
    is_eos = top_tokens == eos_id

    # Alive: the best candidates that did not just end.
    live_log_probs, keep = lax.top_k(
        jnp.where(is_eos, NEG_INF, top_log_probs), beam_size)
    live_seqs = gather_beams(top_seqs, keep)
    source_beams = gather_beams(top_beams, keep)
    new_cache = gather_cache_beams(
        new_cache, source_beams, batch_size, beam_size, cache_offset,
        previous_cache=state.cache)

    # Finished: the old ones and those ending now (EOS, or at the limit).
    ends_now = (is_eos | (step + 1 >= max_len)) & (top_log_probs > NEG_INF / 2)
    new_scores = jnp.where(
        ends_now, top_log_probs / brevity_penalty(alpha, step + 1), NEG_INF)
    all_scores = jnp.concatenate([state.finished_scores, new_scores], axis=1)
    finished_scores, keep = lax.top_k(all_scores, beam_size)
    finished_flags = gather_beams(
        jnp.concatenate([state.finished_flags, ends_now], axis=1), keep)
    finished_seqs = gather_beams(
        jnp.concatenate([state.finished_seqs, top_seqs], axis=1), keep)
    return _BeamState(step + 1, live_seqs, live_log_probs, finished_seqs,
                      finished_scores, finished_flags, new_cache)

  final = lax.while_loop(can_still_improve, extend_beams, initial_state)
  # Worst..best, as T5X returns them.
  sequences = jnp.flip(final.finished_seqs[:, :, 1:], axis=1)
  scores = jnp.flip(final.finished_scores, axis=1)
  return sequences, scores
