"""Cross-entropy with z-loss and label smoothing, and T5X's loss normalisation.

Numerics follow T5X (`t5x/losses.py`): with label smoothing the loss has the
entropy of the smoothed target subtracted, so a perfect model scores 0; the
z-loss `z_loss * log(Z)^2` keeps the softmax normaliser near 1.
"""
from __future__ import annotations

import enum
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array


class SpecialLossNormalizingFactor(enum.Enum):
  """Loss normalisers computed from the batch (names as in T5X)."""
  NUM_REAL_TARGET_TOKENS = 1  # sum of decoder_loss_weights: mean over real tokens
  NUM_TOTAL_TARGET_TOKENS = 2  # batch * target length, padding included
  AVERAGE_PER_SEQUENCE = 3  # each example (packed segment) weighs the same


def cross_entropy_with_logits(logits: Array, soft_targets: Array, z_loss: float) -> tuple[Array, Array]:
  """Per-token (loss, z_loss); `loss` already includes the z-loss term, as T5X."""
  logits = logits.astype(jnp.float32)
  log_z = jax.nn.logsumexp(logits, axis=-1)
  log_softmax = logits - log_z[..., None]
  loss = -jnp.sum(soft_targets * log_softmax, axis=-1)
  total_z_loss = z_loss * jnp.square(log_z)
  return loss + total_z_loss, total_z_loss


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def fused_cross_entropy(logits: Array, targets: Array, confidence: float,
                        low_confidence: float, z_loss: float) -> tuple[Array, Array]:
  """`cross_entropy_with_logits` against smoothed one-hot targets, without the one-hot.

  Same (loss, z_loss) per token, but the forward pass needs only three
  reductions over the vocabulary (log Z, the target's logit, the sum of
  logits) and the backward pass writes the gradient in one elementwise pass,
  softmax * (1 + 2 z log Z) - smoothing terms, so no [batch, length, vocab]
  one-hot or log-softmax is materialised. That is most of the loss's memory
  traffic for a 32k vocabulary on CPU.
  """
  return _fused_cross_entropy_fwd(logits, targets, confidence, low_confidence, z_loss)[0]


def _fused_cross_entropy_fwd(logits, targets, confidence, low_confidence, z_loss):
  x = logits.astype(jnp.float32)
  vocab_size = x.shape[-1]
  log_z = jax.nn.logsumexp(x, axis=-1)
  target_logit = jnp.take_along_axis(x, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  # -sum_v soft_v * (x_v - log Z), with soft = low + (confidence - low) * one_hot(target).
  loss = -(confidence - low_confidence) * (target_logit - log_z)
  if low_confidence:
    loss = loss - low_confidence * (jnp.sum(x, axis=-1) - vocab_size * log_z)
  token_z_loss = z_loss * jnp.square(log_z)
  return (loss + token_z_loss, token_z_loss), (logits, targets, log_z)


def _fused_cross_entropy_bwd(confidence, low_confidence, z_loss, residuals, cotangents):
  logits, targets, log_z = residuals
  g_loss, g_z = cotangents
  probs = jnp.exp(logits.astype(jnp.float32) - log_z[..., None])
  # d(loss + z)/dx = p (1 + 2 z log Z) - low - (confidence - low) one_hot; d z/dx = 2 z log Z p.
  prob_scale = g_loss * (1.0 + 2.0 * z_loss * log_z) + g_z * (2.0 * z_loss * log_z)
  is_target = lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1) == targets[..., None]
  grad = (probs * prob_scale[..., None] - (g_loss * low_confidence)[..., None]
          - jnp.where(is_target, (g_loss * (confidence - low_confidence))[..., None], 0.0))
  return grad.astype(logits.dtype), None


fused_cross_entropy.defvjp(_fused_cross_entropy_fwd, _fused_cross_entropy_bwd)


def compute_weighted_cross_entropy(
    logits: Array, targets: Array, weights: Array | None = None, label_smoothing: float = 0.0,
    z_loss: float = 0.0, loss_normalizing_factor: float | Array | None = None,
) -> tuple[Array, Array, Array]:
  """Returns (summed loss, summed z_loss, weight_sum), each divided by the normaliser if given.

  logits [batch, length, vocab]; targets [batch, length] int; weights [batch,
  length] (0 for padding). Label smoothing puts 1-label_smoothing on the target
  and spreads the rest evenly over the other vocab-1 ids.
  """
  vocab_size = logits.shape[-1]
  confidence = 1.0 - label_smoothing
  low_confidence = (1.0 - confidence) / (vocab_size - 1)
  # Entropy of the smoothed target distribution: the loss floor we subtract.
  normalizing_constant = -(confidence * np.log(confidence)
                           + (vocab_size - 1) * low_confidence * np.log(low_confidence + 1e-20))
  token_loss, token_z_loss = fused_cross_entropy(
      logits, targets, float(confidence), float(low_confidence), float(z_loss))
  token_loss = token_loss - normalizing_constant
  weight_sum = jnp.asarray(np.prod(targets.shape), jnp.float32)
  if weights is not None:
    weights = weights.astype(jnp.float32)
    token_loss, token_z_loss = token_loss * weights, token_z_loss * weights
    weight_sum = jnp.sum(weights)
  if loss_normalizing_factor is not None:
    token_loss = token_loss / loss_normalizing_factor
    token_z_loss = token_z_loss / loss_normalizing_factor
  return jnp.sum(token_loss), jnp.sum(token_z_loss), weight_sum


def _per_segment_weights(weights: Array, segment_ids: Array | None) -> tuple[Array, Array]:
  """AVERAGE_PER_SEQUENCE: each segment's weights sum to 1; returns (weights, num_segments)."""
  weights = weights.astype(jnp.float32)
  if segment_ids is None:  # one example per row
    segment_ids = (weights > 0).astype(jnp.int32)
  max_segments = segment_ids.shape[1] + 1  # ids never exceed the row length
  one_hot = jax.nn.one_hot(segment_ids, max_segments, dtype=jnp.float32)  # [B, L, S]
  one_hot = one_hot.at[..., 0].set(0.0)  # segment id 0 is padding
  per_segment_total = jnp.einsum("bl,bls->bs", weights, one_hot)
  token_total = jnp.einsum("bs,bls->bl", per_segment_total, one_hot)
  new_weights = jnp.where(token_total > 0, weights / jnp.maximum(token_total, 1e-9), 0.0)
  num_segments = jnp.sum(per_segment_total > 0).astype(jnp.float32)
  return new_weights, num_segments


def loss_normalizing_factor_and_weights(
    loss_normalizing_factor: float | str | SpecialLossNormalizingFactor | None,
    batch: dict[str, Array]) -> tuple[float | Array | None, Array | None]:
  """Resolves T5X's `loss_normalizing_factor` option against a batch.

  Accepts None (plain sum), a number (divide by it), or a SpecialLossNormalizingFactor
  (or its name as a string, e.g. "NUM_REAL_TARGET_TOKENS" from gin).
  """
  weights = batch.get("decoder_loss_weights")
  if isinstance(loss_normalizing_factor, str):
    try:
      loss_normalizing_factor = SpecialLossNormalizingFactor[loss_normalizing_factor]
    except KeyError:
      raise ValueError(f"loss_normalizing_factor: unknown name {loss_normalizing_factor!r}; "
                       f"expected one of {[f.name for f in SpecialLossNormalizingFactor]}") from None
  if not isinstance(loss_normalizing_factor, SpecialLossNormalizingFactor):
    return loss_normalizing_factor, weights
  targets = batch["decoder_target_tokens"]
  if weights is None:
    weights = (targets > 0).astype(jnp.float32)
  if loss_normalizing_factor is SpecialLossNormalizingFactor.NUM_REAL_TARGET_TOKENS:
    return jnp.sum(weights.astype(jnp.float32)), weights
  if loss_normalizing_factor is SpecialLossNormalizingFactor.NUM_TOTAL_TARGET_TOKENS:
    return float(np.prod(targets.shape)), weights
  new_weights, num_segments = _per_segment_weights(weights, batch.get("decoder_segment_ids"))
  return num_segments, new_weights
