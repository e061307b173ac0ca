"""Building blocks of the T5 network with T5X's parameter names, layouts and numerics.

Every parameter is float32 and carries logical axis names
(`nn.with_logical_partitioning`); activations are constrained with
`nn.with_logical_constraint`, a no-op unless the trainer installs axis rules.
"""
from __future__ import annotations

import functools
import operator
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array
Initializer = Callable[..., Array]

# T5 masks attention with a large negative bias rather than -inf.
NEG_INF = -1e10

default_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def constrain(x: Array, names: tuple[str, ...]) -> Array:
  return nn.with_logical_constraint(x, names)


def activation_fn(name: str) -> Callable[[Array], Array]:
  if name == "linear":
    return lambda x: x
  if name == "gelu_exact":
    return functools.partial(nn.gelu, approximate=False)
  return getattr(nn, name)  # relu, gelu (tanh approximation, as T5X/HF gelu_new), silu


class DenseGeneral(nn.Module):
  """Bias-free projection whose kernel is stored 2-D like T5X's.

  T5X keeps e.g. the query kernel as [embed, heads*head_dim] ("joined_kv") and
  reshapes it at use; storing the same layout keeps checkpoints interchangeable.
  """
  features: int | Sequence[int]
  axis: int | Sequence[int] = -1
  kernel_axes: tuple[str, ...] = ()
  kernel_init: Initializer = default_kernel_init
  dtype: jnp.dtype = jnp.float32
  # Backward pass through `dense_matmul` (pays off for the LM head and MLP wi).
  row_major_grads: bool = False

  @nn.compact
  def __call__(self, inputs: Array) -> Array:
    features = (self.features,) if isinstance(self.features, int) else tuple(self.features)
    axis = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
    inputs = jnp.asarray(inputs, self.dtype)
    axis = tuple(a % inputs.ndim for a in axis)
    in_shape = tuple(inputs.shape[a] for a in axis)
    kernel = self.param(
        "kernel", nn.with_logical_partitioning(self.kernel_init, self.kernel_axes),
        (int(np.prod(in_shape)), int(np.prod(features))), jnp.float32)
    kernel = jnp.asarray(kernel, self.dtype)
    if self.row_major_grads and axis == tuple(range(inputs.ndim - len(axis), inputs.ndim)):
      batch_shape = inputs.shape[:inputs.ndim - len(axis)]
      out = dense_matmul(inputs.reshape((-1, kernel.shape[0])), kernel)
      return out.reshape(batch_shape + features)
    kernel = kernel.reshape(in_shape + features)
    contract = tuple(range(len(axis)))
    return lax.dot_general(inputs, kernel, ((axis, contract), ((), ())))


def dense_matmul(x: Array, kernel: Array) -> Array:
  """x [N, in] @ kernel [in, out], with CPU-friendly gradients when running on CPU."""
  if jax.default_backend() == "cpu":
    return _matmul_row_major_grads(x, kernel)
  return jnp.dot(x, kernel)


@jax.custom_vjp
def _matmul_row_major_grads(x: Array, kernel: Array) -> Array:
  """`x @ kernel` whose backward pass feeds both matmuls plain row-major operands.

  Left to itself, XLA on CPU computes dx = g @ kernel^T and dkernel = x^T @ g
  with transposed operands: the fast matmul kernel (YNNPACK) declines them, and
  the [N, 32128] logits gradient was also recomputed in transposed form. Here
  the two small operands (kernel^T, x^T) are transposed once, explicitly (the
  barriers keep XLA from folding the transposes back into the dots). For the
  tiny model's LM head (x [1024, 256], kernel [256, 32128]) forward + backward
  went from 1.38 s to 0.52 s; the gradients agree to float32 rounding.
  Per layer it pays only where XLA would otherwise write a wide activation
  gradient transposed: the MLP's wi_0/wi_1 (a whole train step on the T5X
  reference shape, d_model 256, B 32 x 128/64, went from 2.07 s to 1.39 s).
  On wo it was slower (1.59 s: the barriers block fusion), and on the
  attention projections no faster, so those keep the plain dot.
  """
  return jnp.dot(x, kernel)


def _matmul_fwd(x, kernel):
  return jnp.dot(x, kernel), (x, kernel)


def _matmul_bwd(residuals, g):
  x, kernel = residuals
  kernel_t = lax.optimization_barrier(jnp.transpose(kernel))  # [out, in]
  x_t = lax.optimization_barrier(jnp.transpose(x))  # [in, N]
  dx = jnp.dot(g, kernel_t).astype(x.dtype)
  dkernel = jnp.dot(x_t, g).astype(kernel.dtype)
  return dx, dkernel


_matmul_row_major_grads.defvjp(_matmul_fwd, _matmul_bwd)


class Embed(nn.Module):
  """Token embedding table [vocab, embed]; `attend` gives tied logits."""
  num_embeddings: int
  features: int
  dtype: jnp.dtype = jnp.float32
  embedding_init: Initializer = nn.initializers.normal(stddev=1.0)

  def setup(self):
    self.embedding = self.param(
        "embedding", nn.with_logical_partitioning(self.embedding_init, ("vocab", "embed")),
        (self.num_embeddings, self.features), jnp.float32)

  def __call__(self, token_ids: Array) -> Array:
    # A gather; T5X uses a one-hot matmul, which is exact too but slower on CPU.
    out = jnp.take(jnp.asarray(self.embedding, self.dtype), token_ids, axis=0)
    return constrain(out, ("batch", "length", "embed"))

  def attend(self, query: Array) -> Array:
    # float32 logits for training stability, as T5X (attend_dtype=float32).
    return jnp.dot(query.astype(jnp.float32), jnp.asarray(self.embedding, jnp.float32).T)


class RMSNorm(nn.Module):
  """T5 layer norm: scale only, no mean subtraction, no bias; statistics in float32."""
  epsilon: float = 1e-6
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = jnp.asarray(x, jnp.float32)
    mean2 = jnp.mean(lax.square(x), axis=-1, keepdims=True)
    y = jnp.asarray(x * lax.rsqrt(mean2 + self.epsilon), self.dtype)
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                       (x.shape[-1],), jnp.float32)
    return y * jnp.asarray(scale, self.dtype)


def relative_position_bucket(relative_position: np.ndarray, bidirectional: bool,
                             num_buckets: int, max_distance: int) -> np.ndarray:
  """T5's bucketing of (key position - query position); numpy so it is a compile-time constant.

  Exact distances below num_buckets/2 (per direction), log-spaced buckets up to
  max_distance, everything further in the last bucket.
  """
  ret = np.zeros_like(relative_position, dtype=np.int32)
  n = -relative_position
  if bidirectional:
    num_buckets //= 2
    ret += (n < 0).astype(np.int32) * num_buckets
    n = np.abs(n)
  else:
    n = np.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  # float32 and the eps exactly as T5X so bucket boundaries agree bit for bit.
  val_if_large = max_exact + (
      np.log(n.astype(np.float32) / max_exact + np.finfo(np.float32).eps)
      / np.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(np.int32)
  val_if_large = np.minimum(val_if_large, num_buckets - 1)
  return ret + np.where(is_small, n, val_if_large).astype(np.int32)


class RelativePositionBiases(nn.Module):
  """One `rel_embedding` [heads, buckets] per stack, shared by all its layers."""
  num_buckets: int
  max_distance: int
  num_heads: int
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
    self.rel_embedding = self.param(
        "rel_embedding", nn.with_logical_partitioning(init, ("heads", "relpos_buckets")),
        (self.num_heads, self.num_buckets), jnp.float32)

  def _gather(self, buckets: Array) -> Array:
    table = jnp.asarray(self.rel_embedding, self.dtype)
    return jnp.take(table, buckets, axis=1)  # [heads, *buckets.shape]

  def __call__(self, qlen: int, klen: int, bidirectional: bool = True) -> Array:
    """[1, heads, qlen, klen] bias for a full (non-incremental) pass."""
    rel = np.arange(klen, dtype=np.int32)[None, :] - np.arange(qlen, dtype=np.int32)[:, None]
    buckets = relative_position_bucket(rel, bidirectional, self.num_buckets, self.max_distance)
    return self._gather(jnp.asarray(buckets))[None]

  def decode_step(self, query_index: Array, klen: int) -> Array:
    """[1, heads, 1, klen] causal bias for the single query at `query_index` (traced)."""
    # Table over every possible key - query offset, -(klen-1)..(klen-1), built in numpy.
    offsets = np.arange(-(klen - 1), klen, dtype=np.int32)
    table = jnp.asarray(relative_position_bucket(offsets, False, self.num_buckets, self.max_distance))
    buckets = jnp.take(table, jnp.arange(klen) - query_index + (klen - 1))
    return self._gather(buckets)[None, :, None, :]


class MlpBlock(nn.Module):
  """Feed-forward block: gated (wi_0, wi_1) for v1.1/Flan, single `wi` for v1.0."""
  intermediate_dim: int
  activations: Sequence[str] = ("relu",)
  dropout_rate: float = 0.1
  deterministic: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs: Array) -> Array:
    hidden = []
    for idx, act in enumerate(self.activations):
      name = "wi" if len(self.activations) == 1 else f"wi_{idx}"
      # Row-major backward: else XLA on CPU writes the gated-GELU gradient
      # [tokens, mlp] transposed for the wi kernel gradient, a strided copy;
      # 2.07 -> 1.39 s a step on the T5X reference shape (_matmul_row_major_grads).
      x = DenseGeneral(self.intermediate_dim, kernel_axes=("embed", "mlp"), dtype=self.dtype,
                       row_major_grads=True, name=name)(inputs)
      hidden.append(activation_fn(act)(x))
    x = functools.reduce(operator.mul, hidden)
    x = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(x, deterministic=self.deterministic)
    x = constrain(x, ("batch", "length", "mlp"))
    return DenseGeneral(inputs.shape[-1], kernel_axes=("mlp", "embed"), dtype=self.dtype,
                        name="wo")(x)


def attention_mask(query_valid: Array, key_valid: Array, pairwise=jnp.logical_and) -> Array:
  """[batch, 1, q, k] boolean mask from per-position [batch, q] and [batch, k] arrays."""
  return pairwise(query_valid[:, :, None], key_valid[:, None, :])[:, None]


def causal_mask(length: int) -> Array:
  idx = jnp.arange(length)
  return (idx[:, None] >= idx[None, :])[None, None]


def combine_masks(*masks: Array | None) -> Array | None:
  masks = [m for m in masks if m is not None]
  if not masks:
    return None
  return functools.reduce(jnp.logical_and, masks)


def mask_to_bias(mask: Array | None, dtype) -> Array | None:
  if mask is None:
    return None
  return jnp.where(mask, jnp.zeros((), dtype), jnp.full((), NEG_INF, dtype))


def dot_product_attention(query: Array, key: Array, value: Array, bias: Array | None,
                          dropout_rng, dropout_rate: float, deterministic: bool,
                          dtype, float32_logits: bool, kv_heads_first: bool = False) -> Array:
  """Unscaled (T5) attention: 1/sqrt(head_dim) lives in the query initialisation.

  query [batch, q, heads, depth]; key/value [batch, k, heads, depth], or
  [batch, heads, k, depth] with `kv_heads_first` (the decoding caches' layout).
  """
  if float32_logits:
    query, key = query.astype(jnp.float32), key.astype(jnp.float32)
  kv = "bhkd" if kv_heads_first else "bkhd"
  weights = jnp.einsum(f"bqhd,{kv}->bhqk", query, key)
  if bias is not None:
    weights = weights + bias.astype(weights.dtype)
  weights = jax.nn.softmax(weights).astype(dtype)
  if not deterministic and dropout_rate > 0.0:
    keep_prob = 1.0 - dropout_rate
    shape = list(weights.shape)
    shape[-2] = 1  # broadcast along the query length, as T5X
    keep = jax.random.bernoulli(dropout_rng, keep_prob, shape)
    weights = weights * (keep.astype(dtype) / jnp.asarray(keep_prob, dtype))
  return jnp.einsum(f"bhqk,{kv}->bqhd", weights, value)


class MultiHeadAttention(nn.Module):
  """T5X multi-head attention with an incremental-decoding cache.

  mode:
    "full": ordinary attention over `inputs_kv`.
    "self_decode": causal self-attention, one new position per call; keys and
      values accumulate in cache `cached_key`/`cached_value` [batch, heads,
      max_len, head_dim] at `cache_index`. The first call (no cache yet) only
      creates the zero cache.
    "cross_decode": keys/values of the encoder output are projected on the
      first call and kept in the cache (`cached_key`/`cached_value`
      [batch, heads, enc_len, head_dim]); later calls only project the query.
  Caches are heads-first, the layout the attention matmuls read: stored
  [batch, length, heads, head_dim], XLA on CPU copied every cache into it at
  every step (most of a greedy step's time at batch 32).
  """
  num_heads: int
  head_dim: int
  dtype: jnp.dtype = jnp.float32
  dropout_rate: float = 0.0
  deterministic: bool = True
  float32_logits: bool = False
  mode: str = "full"
  max_decode_length: int | None = None
  kernel_init: Initializer = nn.initializers.variance_scaling(1.0, "fan_in", "normal")

  def _projection(self, name: str, init: Initializer) -> DenseGeneral:
    return DenseGeneral((self.num_heads, self.head_dim), axis=-1, kernel_axes=("embed", "joined_kv"),
                        kernel_init=init, dtype=self.dtype, name=name)

  @nn.compact
  def __call__(self, inputs_q: Array, inputs_kv: Array | None, mask: Array | None = None,
               bias: Array | None = None) -> Array:
    # T5 does not divide logits by sqrt(head_dim): it is folded into the query init.
    depth_scaling = jnp.sqrt(self.head_dim).astype(jnp.float32)
    query_init = lambda *args: self.kernel_init(*args) / depth_scaling
    qkv_names = ("batch", "length", "heads", "kv")
    query = constrain(self._projection("query", query_init)(inputs_q), qkv_names)

    if self.mode == "cross_decode":
      key, value = self._cross_decode_kv(inputs_kv)
    else:
      key = constrain(self._projection("key", self.kernel_init)(inputs_kv), qkv_names)
      value = constrain(self._projection("value", self.kernel_init)(inputs_kv), qkv_names)
      if self.mode == "self_decode":
        key, value, mask = self._self_decode_kv(query, key, value, mask)

    attention_bias = mask_to_bias(mask, self.dtype)
    if bias is not None:
      attention_bias = bias if attention_bias is None else attention_bias + bias
    dropout_rng = None
    if not self.deterministic and self.dropout_rate > 0.0:
      dropout_rng = self.make_rng("dropout")
    x = dot_product_attention(query, key, value, attention_bias, dropout_rng, self.dropout_rate,
                              self.deterministic, self.dtype, self.float32_logits,
                              kv_heads_first=self.mode != "full")
    return DenseGeneral(inputs_q.shape[-1], axis=(-2, -1), kernel_axes=("joined_kv", "embed"),
                        kernel_init=self.kernel_init, dtype=self.dtype, name="out")(x)

  def _self_decode_kv(self, query, key, value, mask):
    initialized = self.has_variable("cache", "cached_key")
    key, value = _heads_first(key), _heads_first(value)
    batch, heads, _, depth = key.shape
    shape = (batch, heads, self.max_decode_length, depth)
    cached_key = self.variable("cache", "cached_key", jnp.zeros, shape, key.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros, shape, value.dtype)
    cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
    if not initialized:
      return key, value, mask  # cache creation pass: output is discarded
    if query.shape[1] != 1:
      raise ValueError(f"incremental decoding feeds one position per call, got query shape {query.shape}")
    index = cache_index.value
    key = lax.dynamic_update_slice(cached_key.value, key.astype(cached_key.value.dtype), (0, 0, index, 0))
    value = lax.dynamic_update_slice(cached_value.value, value.astype(cached_value.value.dtype), (0, 0, index, 0))
    cached_key.value, cached_value.value = key, value
    cache_index.value = index + 1
    # The single query sees the positions written so far (itself included).
    step_mask = (jnp.arange(self.max_decode_length) <= index)[None, None, None, :]
    return key, value, combine_masks(mask, step_mask)

  def _cross_decode_kv(self, encoded):
    qkv_names = ("batch", "length", "heads", "kv")
    initialized = self.has_variable("cache", "cached_key")
    if initialized:
      return self.get_variable("cache", "cached_key"), self.get_variable("cache", "cached_value")
    if encoded is None:
      raise ValueError("the first decode call must receive the encoder output to fill the cross-attention cache")
    key = _heads_first(constrain(self._projection("key", self.kernel_init)(encoded), qkv_names))
    value = _heads_first(constrain(self._projection("value", self.kernel_init)(encoded), qkv_names))
    self.variable("cache", "cached_key", lambda: key)
    self.variable("cache", "cached_value", lambda: value)
    return key, value


def _heads_first(x: Array) -> Array:
  """[batch, length, heads, depth] -> [batch, heads, length, depth] (decoding caches)."""
  return constrain(jnp.swapaxes(x, 1, 2), ("batch", "heads", "length", "kv"))
