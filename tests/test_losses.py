"""Cross-entropy, z-loss, label smoothing and T5X loss normalisation, checked by hand."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from models import losses


def test_cross_entropy_and_z_loss_by_hand():
  logits = jnp.array([[[2.0, 0.0, -1.0]]])
  targets = jnp.array([[0]])
  z = np.log(np.exp(2.0) + 1.0 + np.exp(-1.0))
  loss, z_loss, weight_sum = losses.compute_weighted_cross_entropy(logits, targets, z_loss=0.1)
  np.testing.assert_allclose(z_loss, 0.1 * z**2, rtol=1e-6)
  np.testing.assert_allclose(loss, (z - 2.0) + 0.1 * z**2, rtol=1e-6)  # loss includes z-loss
  assert float(weight_sum) == 1.0


def test_label_smoothing_by_hand():
  logits = jnp.array([[[1.0, 0.0, 0.0, -2.0]]])
  log_p = np.array([1.0, 0.0, 0.0, -2.0]) - np.log(np.exp([1.0, 0.0, 0.0, -2.0]).sum())
  smoothing = 0.3
  soft = np.array([0.7, 0.1, 0.1, 0.1])
  entropy = -(soft * np.log(soft)).sum()  # subtracted so a perfect model reaches 0
  loss, _, _ = losses.compute_weighted_cross_entropy(logits, jnp.array([[0]]), label_smoothing=smoothing)
  np.testing.assert_allclose(loss, -(soft * log_p).sum() - entropy, rtol=1e-5)
  # Predicting the smoothed distribution exactly costs nothing.
  perfect, _, _ = losses.compute_weighted_cross_entropy(jnp.log(jnp.array([[soft]])), jnp.array([[0]]),
                                                        label_smoothing=smoothing)
  assert abs(float(perfect)) < 1e-5


def test_weights_and_normalizing_factors():
  rs = np.random.RandomState(0)
  logits = jnp.asarray(rs.randn(2, 3, 5), jnp.float32)
  targets = jnp.array([[1, 2, 0], [3, 0, 0]])
  weights = (targets > 0).astype(jnp.float32)
  log_p = np.asarray(logits) - np.log(np.exp(np.asarray(logits)).sum(-1, keepdims=True))
  token_nll = -np.take_along_axis(log_p, np.asarray(targets)[..., None], -1)[..., 0]
  real = token_nll * np.asarray(weights)

  batch = {"decoder_target_tokens": targets, "decoder_loss_weights": weights}
  def loss_with(factor_name):
    factor, w = losses.loss_normalizing_factor_and_weights(factor_name, batch)
    return float(losses.compute_weighted_cross_entropy(logits, targets, w, loss_normalizing_factor=factor)[0])

  np.testing.assert_allclose(loss_with(None), real.sum(), rtol=1e-5)
  np.testing.assert_allclose(loss_with(2.0), real.sum() / 2, rtol=1e-5)
  np.testing.assert_allclose(loss_with("NUM_REAL_TARGET_TOKENS"), real.sum() / 3, rtol=1e-5)
  np.testing.assert_allclose(loss_with("NUM_TOTAL_TARGET_TOKENS"), real.sum() / 6, rtol=1e-5)
  per_sequence = (real[0].sum() / 2 + real[1].sum() / 1) / 2
  np.testing.assert_allclose(loss_with("AVERAGE_PER_SEQUENCE"), per_sequence, rtol=1e-5)
  with pytest.raises(ValueError, match="NUM_REAL_TARGET_TOKENZ"):
    loss_with("NUM_REAL_TARGET_TOKENZ")


def test_average_per_sequence_counts_packed_segments():
  """Packed row [a a b 0] = two sequences; each weighs 1/2 whatever its length."""
  weights = jnp.array([[1.0, 1.0, 1.0, 0.0]])
  segments = jnp.array([[1, 1, 2, 0]])
  new_weights, count = losses._per_segment_weights(weights, segments)
  np.testing.assert_allclose(new_weights, [[0.5, 0.5, 1.0, 0.0]])
  assert float(count) == 2.0
