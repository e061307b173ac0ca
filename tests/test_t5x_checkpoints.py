"""T5X checkpoint import: the real legacy msgpack file and a directory written like T5X does."""
from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorstore as ts
from flax import serialization, traverse_util

from models import t5x_checkpoints
from models.network import T5Config, Transformer

T5X_TINY = T5Config(vocab_size=32128, emb_dim=8, num_heads=4, head_dim=3, mlp_dim=16,
                    num_encoder_layers=2, num_decoder_layers=2, dropout_rate=0.0, dtype="float32")


@pytest.fixture(scope="module")
def tiny_checkpoint(shared_data):
  return os.path.join(shared_data, "t5x_checkpoints", "test_t5_tiny.checkpoint_0")


def _template(config: T5Config):
  enc = jnp.ones((2, 6), jnp.int32)
  dec = jnp.ones((2, 4), jnp.int32)
  return jax.eval_shape(lambda: Transformer(config).init(
      jax.random.PRNGKey(0), enc, dec, dec, enable_dropout=False))["params"]


def _forward(config, params):
  enc = jnp.array([[37, 5, 900, 1, 0, 0], [4, 4, 4, 4, 4, 1]])
  dec_in = jnp.array([[0, 12, 7, 3], [0, 99, 1, 0]])
  targets = jnp.array([[12, 7, 3, 1], [99, 1, 0, 0]])
  return jax.jit(lambda p: Transformer(config).apply({"params": p}, enc, dec_in, targets, enable_dropout=False))(params)


def test_real_legacy_checkpoint_loads_and_runs(tiny_checkpoint):
  loaded = t5x_checkpoints.load_t5x_checkpoint(tiny_checkpoint)
  params = t5x_checkpoints.restore_into(_template(T5X_TINY), loaded)
  assert params["decoder"]["logits_dense"]["kernel"].shape == (8, 32128)
  logits = _forward(T5X_TINY, params)
  assert np.isfinite(np.asarray(logits)).all() and float(jnp.std(logits)) > 0
  np.testing.assert_array_equal(logits, _forward(T5X_TINY, params))


def test_mismatch_lists_paths_with_expected_and_found_shapes(tiny_checkpoint):
  loaded = t5x_checkpoints.load_t5x_checkpoint(tiny_checkpoint)
  wrong = T5X_TINY.replace(mlp_dim=32)
  with pytest.raises(t5x_checkpoints.CheckpointMismatchError) as info:
    t5x_checkpoints.restore_into(_template(wrong), loaded)
  message = str(info.value)
  assert "shape mismatch: decoder/layers_0/mlp/wi_0/kernel: expected (8, 32), found (8, 16)" in message
  assert "and " in message and "more" in message  # 12 mlp kernels, first 10 listed
  del loaded["encoder"]["encoder_norm"]
  with pytest.raises(t5x_checkpoints.CheckpointMismatchError, match="missing in checkpoint: encoder/encoder_norm/scale"):
    t5x_checkpoints.restore_into(_template(T5X_TINY), loaded)


def test_loads_into_a_scanned_template(tiny_checkpoint):
  loaded = t5x_checkpoints.load_t5x_checkpoint(tiny_checkpoint)
  params = t5x_checkpoints.restore_into(_template(T5X_TINY.replace(scan_layers=True)), loaded)
  assert params["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape == (2, 16, 8)


def _write_t5x_directory(step_dir: str, params, optimizer_state) -> None:
  """What T5X's Checkpointer writes: zarr arrays (gzip) per param + a msgpack index of specs."""
  os.makedirs(step_dir)
  index_target = {}
  for name, value in traverse_util.flatten_dict(params, sep="/").items():
    relative = "target." + name.replace("/", ".")
    spec = {"driver": "zarr", "kvstore": {"driver": "file", "path": relative},
            "metadata": {"compressor": {"id": "gzip"}, "shape": list(value.shape),
                         "chunks": list(value.shape), "dtype": "<f4"}}
    ts.open({**spec, "kvstore": {"driver": "file", "path": os.path.join(step_dir, relative)}},
            create=True, open=True).result().write(np.asarray(value)).result()
    index_target[name] = spec
  index = {"version": 3, "optimizer": {"target": traverse_util.unflatten_dict(index_target, sep="/"),
                                       "state": optimizer_state}}
  with open(os.path.join(step_dir, "checkpoint"), "wb") as f:
    f.write(serialization.msgpack_serialize(index))


def test_tensorstore_directory_layout(tiny_checkpoint, tmp_path):
  legacy = t5x_checkpoints.load_t5x_checkpoint(tiny_checkpoint)
  # Trim the vocab to keep the written arrays small; everything else is the real checkpoint.
  legacy["token_embedder"]["embedding"] = legacy["token_embedder"]["embedding"][:256]
  legacy["decoder"]["logits_dense"]["kernel"] = legacy["decoder"]["logits_dense"]["kernel"][:, :256]
  model_dir = tmp_path / "model"
  _write_t5x_directory(str(model_dir / "checkpoint_7"), legacy, {"step": np.asarray(7)})
  os.makedirs(model_dir / "checkpoint_3")  # older step: ignored
  config = T5X_TINY.replace(vocab_size=256)
  for path in (str(model_dir), str(model_dir / "checkpoint_7")):
    loaded = t5x_checkpoints.load_t5x_checkpoint(path)
    params = t5x_checkpoints.restore_into(_template(config), loaded)
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, legacy)
  np.testing.assert_allclose(_forward(config, params), _forward(config, legacy))
