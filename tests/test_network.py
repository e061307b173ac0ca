"""The T5 network: T5X parameter tree, cached decoding, scan/remat equivalence, logical axes."""
from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization
from flax import traverse_util

from models import layers
from models.network import T5Config, Transformer, stack_layers, unstack_layers

# Upstream T5X gin/models/t5_1_1/tiny.gin shapes: the shapes of the real checkpoint.
T5X_TINY = T5Config(vocab_size=32128, emb_dim=8, num_heads=4, head_dim=3, mlp_dim=16,
                    num_encoder_layers=2, num_decoder_layers=2, mlp_activations=("gelu", "linear"),
                    dropout_rate=0.0, dtype="float32")
SMALL = T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=4, mlp_dim=24,
                 num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0, dtype="float32")


def _batch(vocab: int, batch: int = 2, enc_len: int = 7, dec_len: int = 5, seed: int = 0):
  rs = np.random.RandomState(seed)
  enc = rs.randint(2, vocab, (batch, enc_len)).astype(np.int32)
  enc[1, enc_len - 2:] = 0  # a padded row
  targets = rs.randint(2, vocab, (batch, dec_len)).astype(np.int32)
  targets[1, dec_len - 1:] = 0
  inputs = np.concatenate([np.zeros((batch, 1), np.int32), targets[:, :-1]], axis=1)
  return jnp.asarray(enc), jnp.asarray(inputs), jnp.asarray(targets)


def _flat_shapes(tree) -> dict[str, tuple]:
  flat = traverse_util.flatten_dict(nn.unbox(tree), sep="/")
  return {k: tuple(v.shape) for k, v in flat.items()}


@pytest.fixture(scope="module")
def t5x_tiny_params(shared_data):
  path = os.path.join(shared_data, "t5x_checkpoints", "test_t5_tiny.checkpoint_0")
  with open(path, "rb") as f:
    state = serialization.msgpack_restore(f.read())
  return jax.tree_util.tree_map(jnp.asarray, state["optimizer"]["target"])


def _init(config: T5Config, enc, dec_in, targets):
  init = jax.jit(lambda rng: Transformer(config).init(rng, enc, dec_in, targets, enable_dropout=False))
  return init(jax.random.PRNGKey(0))


def _abstract_init(config: T5Config, enc, dec_in, targets):
  """Shapes and axis metadata only (no compute)."""
  return jax.eval_shape(lambda: Transformer(config).init(
      jax.random.PRNGKey(0), enc, dec_in, targets, enable_dropout=False))


def test_param_tree_equals_the_real_t5x_checkpoint(t5x_tiny_params):
  enc, dec_in, targets = _batch(T5X_TINY.vocab_size)
  ours = _flat_shapes(_abstract_init(T5X_TINY, enc, dec_in, targets)["params"])
  theirs = _flat_shapes(t5x_tiny_params)
  assert ours == theirs
  assert "decoder/relpos_bias/rel_embedding" in ours and ours["encoder/layers_0/attention/query/kernel"] == (8, 12)


def test_forward_pass_on_the_real_checkpoint_is_finite_and_deterministic(t5x_tiny_params):
  enc, dec_in, targets = _batch(T5X_TINY.vocab_size)
  module = Transformer(T5X_TINY)
  run = jax.jit(lambda p: module.apply({"params": p}, enc, dec_in, targets, enable_dropout=False))
  first, second = run(t5x_tiny_params), run(t5x_tiny_params)
  assert first.shape == (2, 5, 32128) and first.dtype == jnp.float32
  assert np.isfinite(np.asarray(first)).all()
  np.testing.assert_array_equal(first, second)
  # The weights matter: a perturbed decoder norm changes the logits.
  perturbed = jax.tree_util.tree_map(lambda x: x, t5x_tiny_params)
  perturbed["decoder"]["decoder_norm"]["scale"] = perturbed["decoder"]["decoder_norm"]["scale"] * 2
  assert not np.allclose(run(perturbed), first)


def test_every_param_has_logical_axis_names():
  enc, dec_in, targets = _batch(SMALL.vocab_size)
  for config in (SMALL, SMALL.replace(scan_layers=True)):
    variables = _abstract_init(config, enc, dec_in, targets)
    specs = traverse_util.flatten_dict(nn.get_partition_spec(variables)["params"], sep="/")
    shapes = _flat_shapes(variables["params"])
    for name, spec in specs.items():
      assert spec is not None and len(spec) == len(shapes[name]), (name, spec)
      assert all(axis is not None for axis in spec), (name, spec)
    if config.scan_layers:
      assert specs["encoder/layers/mlp/wi_0/kernel"] == jax.sharding.PartitionSpec("layers", "embed", "mlp")
    else:
      assert specs["decoder/layers_1/self_attention/out/kernel"] == jax.sharding.PartitionSpec("joined_kv", "embed")
      assert specs["token_embedder/embedding"] == jax.sharding.PartitionSpec("vocab", "embed")


def test_v1_0_layout_has_relu_mlp_and_tied_logits():
  config = SMALL.replace(mlp_activations=("relu",), logits_via_embedding=True)
  enc, dec_in, targets = _batch(config.vocab_size)
  shapes = _flat_shapes(_abstract_init(config, enc, dec_in, targets)["params"])
  assert "encoder/layers_0/mlp/wi/kernel" in shapes and "encoder/layers_0/mlp/wi_0/kernel" not in shapes
  assert not any("logits_dense" in k for k in shapes)


def test_attention_logits_are_not_scaled_but_query_init_is():
  """T5 convention: softmax(q.k) with the 1/sqrt(head_dim) folded into the query init."""
  config = SMALL.replace(head_dim=16)
  enc, dec_in, targets = _batch(config.vocab_size)
  params = nn.unbox(_init(config, enc, dec_in, targets)["params"])
  attention = params["encoder"]["layers_0"]["attention"]
  ratio = np.std(attention["query"]["kernel"]) / np.std(attention["key"]["kernel"])
  assert 0.15 < ratio < 0.35  # about 1/sqrt(16) = 0.25
  # With unit-ish q and k, unscaled logits differ from scaled ones: check against a hand computation.
  q = jax.random.normal(jax.random.PRNGKey(1), (1, 3, 2, 16))
  k = jax.random.normal(jax.random.PRNGKey(2), (1, 3, 2, 16))
  v = jax.random.normal(jax.random.PRNGKey(3), (1, 3, 2, 16))
  out = layers.dot_product_attention(q, k, v, None, None, 0.0, True, jnp.float32, False)
  weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k))
  np.testing.assert_allclose(out, jnp.einsum("bhqk,bkhd->bqhd", weights, v), rtol=1e-5, atol=1e-6)


def test_relative_position_buckets_match_t5():
  rel = np.arange(-200, 201)[None, :]
  uni = layers.relative_position_bucket(rel, False, 32, 128)[0]
  # Causal: keys in the future (positive offsets) share bucket 0; exact buckets below 16.
  assert (uni[200:] == 0).all() and list(uni[200 - 15:201][::-1]) == list(range(16))
  assert uni[0] == 31 and uni[200 - 127] == 31 and uni[200 - 64] < 31
  bi = layers.relative_position_bucket(rel, True, 32, 128)[0]
  assert bi[200 + 3] == 16 + 3 and bi[200 - 3] == 3 and bi[-1] == 31 and bi[0] == 15


def _cached_decode_logits(module, params, enc, dec_in, steps):
  encoded = module.apply({"params": params}, enc, enable_dropout=False, method=module.encode)
  length = dec_in.shape[1]
  _, variables = module.apply({"params": params}, encoded, enc, dec_in[:, :1], None, enable_dropout=False,
                              decode=True, max_decode_length=length, mutable=["cache"], method=module.decode)
  cache = variables["cache"]
  step = jax.jit(lambda c, tok: module.apply(
      {"params": params, "cache": c}, None, None, tok, None, enable_dropout=False, decode=True,
      max_decode_length=length, mutable=["cache"], method=module.decode))
  outs = []
  for t in range(steps):
    token = dec_in[:, min(t, length - 1)][:, None]
    logits, variables = step(cache, token)
    cache = variables["cache"]
    outs.append(logits[:, 0])
  return outs, cache


@pytest.mark.parametrize("config", [SMALL, SMALL.replace(mlp_activations=("relu",), logits_via_embedding=True)],
                         ids=["v1_1", "v1_0"])
def test_cached_decoding_equals_full_forward_step_by_step(config):
  enc, dec_in, targets = _batch(config.vocab_size, dec_len=6)
  targets = jnp.where(targets == 0, 5, targets)  # full-length targets: no decoder padding mask
  module = Transformer(config)
  params = nn.unbox(_init(config, enc, dec_in, targets)["params"])
  full = module.apply({"params": params}, enc, dec_in, targets, enable_dropout=False)
  steps, cache = _cached_decode_logits(module, params, enc, dec_in, dec_in.shape[1])
  np.testing.assert_allclose(np.stack(steps, axis=1), full, rtol=1e-5, atol=1e-5)
  # Cross-attention keys/values were projected once, into batch-first cache leaves.
  cross = cache["decoder"]["layers_0"]["encoder_decoder_attention"]
  assert cross["cached_key"].shape == (2, config.num_heads, enc.shape[1], config.head_dim)
  assert int(cache["decoder"]["layers_0"]["self_attention"]["cache_index"]) == dec_in.shape[1]


def test_decoding_past_the_cache_gives_nan_not_garbage():
  enc, dec_in, targets = _batch(SMALL.vocab_size, dec_len=3)
  module = Transformer(SMALL)
  params = nn.unbox(_init(SMALL, enc, dec_in, targets)["params"])
  steps, _ = _cached_decode_logits(module, params, enc, dec_in, 4)
  assert np.isfinite(steps[2]).all() and np.isnan(steps[3]).all()


def test_packed_sequences_do_not_see_each_other():
  """Two examples packed into one row give the logits they give alone."""
  module = Transformer(SMALL)
  enc_a, enc_b = np.array([5, 6, 7, 1]), np.array([9, 8, 1])
  tgt_a, tgt_b = np.array([11, 12, 1]), np.array([13, 1])
  def shift(t):
    return np.concatenate([[0], t[:-1]])
  packed = dict(
      encoder_input_tokens=np.concatenate([enc_a, enc_b, [0]])[None],
      encoder_segment_ids=np.array([[1, 1, 1, 1, 2, 2, 2, 0]]),
      decoder_target_tokens=np.concatenate([tgt_a, tgt_b, [0]])[None],
      decoder_input_tokens=np.concatenate([shift(tgt_a), shift(tgt_b), [0]])[None],
      decoder_segment_ids=np.array([[1, 1, 1, 2, 2, 0]]))
  params = nn.unbox(_init(SMALL, *(jnp.asarray(packed[k]) for k in (
      "encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")))["params"])
  apply = jax.jit(lambda *args: module.apply({"params": params}, *args, enable_dropout=False))
  logits = apply(packed["encoder_input_tokens"], packed["decoder_input_tokens"],
                 packed["decoder_target_tokens"], packed["encoder_segment_ids"], packed["decoder_segment_ids"])
  alone_a = apply(enc_a[None], shift(tgt_a)[None], tgt_a[None])
  alone_b = apply(enc_b[None], shift(tgt_b)[None], tgt_b[None])
  np.testing.assert_allclose(logits[0, :3], alone_a[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits[0, 3:5], alone_b[0], rtol=1e-5, atol=1e-5)


def test_scan_and_remat_give_the_same_numbers():
  config = SMALL.replace(dropout_rate=0.1)
  enc, dec_in, targets = _batch(config.vocab_size)
  params = nn.unbox(_init(config, enc, dec_in, targets)["params"])
  stacked = stack_layers(params, config)
  assert stacked["encoder"]["layers"]["attention"]["query"]["kernel"].shape == (2, 16, 8)
  jax.tree_util.tree_map(np.testing.assert_array_equal, unstack_layers(stacked, config), params)

  def loss_and_grad(p, cfg, dropout):
    def loss(p):
      logits = Transformer(cfg).apply({"params": p}, enc, dec_in, targets, enable_dropout=dropout,
                                      rngs={"dropout": jax.random.PRNGKey(3)})
      return jnp.mean(jax.nn.log_softmax(logits)[..., 3])
    return jax.jit(jax.value_and_grad(loss))(p)

  plain = loss_and_grad(params, config, False)
  scanned = loss_and_grad(stacked, config.replace(scan_layers=True), False)
  np.testing.assert_allclose(scanned[0], plain[0], rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                         unstack_layers(scanned[1], config), plain[1])
  # Remat recomputes the forward pass (dropout included) bit-compatibly.
  scanned_config = config.replace(scan_layers=True)
  ref = loss_and_grad(stacked, scanned_config, True)
  got = loss_and_grad(stacked, scanned_config.replace(remat_policy="full"), True)
  np.testing.assert_allclose(got[0], ref[0], rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), got[1], ref[1])


def test_bfloat16_activations_keep_float32_params_and_logits():
  config = SMALL.replace(dtype="bfloat16")
  enc, dec_in, targets = _batch(config.vocab_size)
  variables = _init(config, enc, dec_in, targets)
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(nn.unbox(variables)))
  run = lambda cfg: jax.jit(lambda v: Transformer(cfg).apply(v, enc, dec_in, targets, enable_dropout=False))(
      nn.unbox(variables))
  logits, full = run(config), run(SMALL)
  assert logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, full, atol=0.1)


def test_row_major_grads_match_the_plain_dot():
  """The CPU backward of `dense_matmul` (LM head, MLP wi) is the plain dot's."""
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (48, 32))
  kernel = jax.random.normal(kk, (32, 80))
  g = jax.random.normal(kg, (48, 80))
  out, vjp = jax.vjp(layers.dense_matmul, x, kernel)
  ref_out, ref_vjp = jax.vjp(jnp.dot, x, kernel)
  np.testing.assert_allclose(out, ref_out, rtol=1e-6, atol=1e-6)
  for got, want in zip(vjp(g), ref_vjp(g)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  # Through the MLP block, whose wi_0/wi_1 use it: the same parameter gradients.
  block = layers.MlpBlock(64, ("gelu", "linear"), dropout_rate=0.0)
  inputs = jax.random.normal(kx, (2, 6, 32))
  params = nn.unbox(block.init(kk, inputs))
  loss = lambda p: jnp.sum(block.apply(p, inputs) ** 2)
  def reference(p):
    h = jax.nn.gelu(inputs @ p["params"]["wi_0"]["kernel"]) * (inputs @ p["params"]["wi_1"]["kernel"])
    return jnp.sum((h @ p["params"]["wo"]["kernel"]) ** 2)
  got, want = jax.grad(loss)(params), jax.grad(reference)(params)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
