"""EncoderDecoderModel: loss under packing, scoring, decoding with the KV cache."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.models import EncoderDecoderModel
from models.network import T5Config

CONFIG = T5Config(vocab_size=40, emb_dim=16, num_heads=2, head_dim=4, mlp_dim=24,
                  num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0, dtype="float32")


def _features(pairs, enc_len, dec_len):
  """Unpacked EncDecFeatureConverter features for (inputs, targets) token lists (EOS included)."""
  def pad(x, n):
    return np.pad(np.asarray(x, np.int32), (0, n - len(x)))
  enc = np.stack([pad(i, enc_len) for i, _ in pairs])
  tgt = np.stack([pad(t, dec_len) for _, t in pairs])
  dec_in = np.concatenate([np.zeros((len(pairs), 1), np.int32), tgt[:, :-1]], axis=1)
  return {"encoder_input_tokens": enc, "decoder_target_tokens": tgt, "decoder_input_tokens": dec_in,
          "decoder_loss_weights": (tgt > 0).astype(np.int32)}


PAIRS = [([5, 6, 7, 1], [11, 12, 1]), ([9, 8, 1], [13, 1])]


@pytest.fixture(scope="module")
def model_and_params():
  model = EncoderDecoderModel(CONFIG, z_loss=1e-4)
  variables = model.get_initial_variables(
      jax.random.PRNGKey(0), {"encoder_input_tokens": (2, 8), "decoder_input_tokens": (2, 6)})
  assert nn.get_partition_spec(variables)["params"]["token_embedder"]["embedding"] == \
      jax.sharding.PartitionSpec("vocab", "embed")
  return model, nn.unbox(variables)["params"]


def test_packed_batch_gives_the_same_losses_as_unpacked(model_and_params):
  model, params = model_and_params
  unpacked = _features(PAIRS, 8, 6)
  packed = {
      "encoder_input_tokens": np.array([[5, 6, 7, 1, 9, 8, 1, 0]]),
      "encoder_segment_ids": np.array([[1, 1, 1, 1, 2, 2, 2, 0]]),
      "decoder_target_tokens": np.array([[11, 12, 1, 13, 1, 0]]),
      "decoder_input_tokens": np.array([[0, 11, 12, 0, 13, 0]]),
      "decoder_segment_ids": np.array([[1, 1, 1, 2, 2, 0]]),
      "decoder_loss_weights": np.array([[1, 1, 1, 1, 1, 0]]),
  }
  loss_fn = jax.jit(model.loss_fn)
  for factor in (None, "NUM_REAL_TARGET_TOKENS", "AVERAGE_PER_SEQUENCE"):
    model.loss_normalizing_factor = factor
    loss_u, metrics_u = jax.jit(model.loss_fn)(params, unpacked, None)
    loss_p, metrics_p = jax.jit(model.loss_fn)(params, packed, None)
    np.testing.assert_allclose(loss_p, loss_u, rtol=1e-5, err_msg=str(factor))
  model.loss_normalizing_factor = None
  assert float(metrics_p["weight_sum"]) == 5.0 and float(metrics_p["num_examples"]) == 2.0
  np.testing.assert_allclose(metrics_p["accuracy"], metrics_u["accuracy"])
  np.testing.assert_allclose(metrics_u["cross_ent_loss"] + metrics_u["z_loss"], metrics_u["loss"], rtol=1e-6)
  # Scores per example equal the per-sequence negative cross-entropy sums.
  scores = model.score_batch(params, unpacked)
  model.z_loss = 0.0
  first_only = dict(unpacked, decoder_loss_weights=unpacked["decoder_loss_weights"] * np.array([[1], [0]]))
  np.testing.assert_allclose(-loss_fn(params, first_only, None)[0], scores[0], rtol=1e-5)
  model.z_loss = 1e-4


def test_dropout_rng_turns_dropout_on():
  model = EncoderDecoderModel(CONFIG.replace(dropout_rate=0.3))
  params = nn.unbox(model.get_initial_variables(
      jax.random.PRNGKey(0), {"encoder_input_tokens": (2, 8), "decoder_input_tokens": (2, 6)}))["params"]
  batch = _features(PAIRS, 8, 6)
  loss_fn = jax.jit(model.loss_fn)
  off = loss_fn(params, batch, None)[0]
  assert float(off) == float(loss_fn(params, batch, None)[0])
  assert float(loss_fn(params, batch, jax.random.PRNGKey(1))[0]) != float(off)


def _reference_greedy(model, params, batch, steps):
  """Greedy decoding by re-running the full network on the growing prefix (no cache)."""
  enc = jnp.asarray(batch["encoder_input_tokens"])
  length = batch["decoder_input_tokens"].shape[1]
  out = np.zeros((enc.shape[0], length), np.int32)
  done = np.zeros(enc.shape[0], bool)
  apply = jax.jit(lambda d: model.module.apply({"params": params}, enc, d, jnp.ones_like(d), enable_dropout=False))
  for t in range(steps):
    dec_in = np.concatenate([np.zeros((enc.shape[0], 1), np.int32), out[:, :-1]], axis=1)
    token = np.asarray(jnp.argmax(apply(jnp.asarray(dec_in))[:, t], -1))
    out[:, t] = np.where(done, 0, token)
    done |= token == model.eos_id
  return out


def test_greedy_predict_matches_uncached_reference_and_stops_at_eos(model_and_params):
  model, params = model_and_params
  # Make EOS likely so rows stop at different lengths.
  params = jax.tree_util.tree_map(lambda x: x, params)
  kernel = params["decoder"]["logits_dense"]["kernel"]
  params["decoder"]["logits_dense"]["kernel"] = kernel.at[:, 1].add(0.8 * jnp.abs(kernel).mean() * jnp.sign(
      kernel[:, 1]))
  batch = _features(PAIRS, 8, 6)
  tokens, aux = model.predict_batch_with_aux(params, batch)
  expected = _reference_greedy(model, params, batch, 6)
  np.testing.assert_array_equal(tokens, expected)
  assert tokens.shape == (2, 6) and aux["scores"].shape == (2,)
  for row in np.asarray(tokens):
    if (row == 1).any():
      assert (row[np.argmax(row == 1) + 1:] == 0).all()
  # Same shapes: no recompilation.
  size = model._predict_jit._cache_size()
  model.predict_batch(params, _features(PAIRS[::-1], 8, 6))
  assert model._predict_jit._cache_size() == size


def test_sampling_and_too_long_requests(model_and_params):
  model, params = model_and_params
  batch = _features(PAIRS, 8, 6)
  samples, aux = model.predict_batch_with_aux(
      params, batch, jax.random.PRNGKey(2), method="sample", num_decodes=3, return_all_decodes=True,
      decoder_params={"temperature": 1.0, "topk": 5})
  assert samples.shape == (2, 3, 6) and aux["scores"].shape == (2, 3)
  assert np.isfinite(np.asarray(aux["scores"])).all()
  with pytest.raises(ValueError, match="cache length 6"):
    model.predict_batch(params, batch, max_decode_steps=7)


def test_scanned_model_decodes_like_the_unscanned_one(model_and_params):
  model, params = model_and_params
  from models.network import stack_layers
  scanned = EncoderDecoderModel(CONFIG.replace(scan_layers=True))
  batch = _features(PAIRS, 8, 6)
  np.testing.assert_array_equal(scanned.predict_batch(stack_layers(params, CONFIG), batch),
                                model.predict_batch(params, batch))


def test_beam_search_with_one_beam_and_no_length_penalty_is_greedy(model_and_params):
  model, params = model_and_params
  batch = _features(PAIRS, 8, 6)
  greedy = model.predict_batch(params, batch)
  beams, aux = model.predict_batch_with_aux(params, batch, method="beam", num_decodes=3,
                                            return_all_decodes=True)
  assert beams.shape == (2, 3, 6) and aux["scores"].shape == (2, 3)
  one_beam = model.predict_batch(params, batch, method="beam", num_decodes=1, decoder_params={"alpha": 0.0})
  np.testing.assert_array_equal(one_beam, greedy)
