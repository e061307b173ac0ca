"""gin/models/*.gin parse and build the model with the shapes they promise."""
from __future__ import annotations

import glob
import os

import gin
import jax
import pytest
from flax import traverse_util

import models.models  # noqa: F401  (registers nothing; gin uses dynamic registration)
from models.network import Transformer

GIN_DIR = os.path.join(os.path.dirname(__file__), "..", "gin", "models")
GIN_FILES = sorted(os.path.relpath(p, GIN_DIR) for p in glob.glob(os.path.join(GIN_DIR, "**", "*.gin"), recursive=True))


def _build(relative_path: str, *bindings: str):
  gin.clear_config()
  try:
    gin.parse_config_files_and_bindings(
        [os.path.join(GIN_DIR, relative_path)],
        ["VOCABULARY = None", "DROPOUT_RATE = 0.1", *bindings])
    return gin.query_parameter("%MODEL").scoped_configurable_fn()
  finally:
    gin.clear_config()


def test_every_size_is_there():
  for family in ("t5_1_1", "flan_t5"):
    for size in ("small", "base", "large", "xl", "xxl"):
      assert f"{family}/{size}.gin" in GIN_FILES
  assert {"t5_1_1/tiny.gin", "tiny.gin", "t5_1_0/small.gin", "t5_1_0/base.gin", "byt5/small.gin",
          "mt5/base.gin"} <= set(GIN_FILES)


@pytest.mark.parametrize("path", GIN_FILES)
def test_gin_file_builds_a_model(path):
  model = _build(path)
  cfg = model.config
  assert cfg.dropout_rate == 0.1 and model.z_loss == 1e-4
  assert (cfg.mlp_activations == ("relu",)) == path.startswith("t5_1_0/") == cfg.logits_via_embedding


def test_known_parameter_counts():
  """Shapes give the published sizes (T5 v1.1 base 247.6M, Flan-T5 small 77M)."""
  def count(path):
    model = _build(path)
    shapes = jax.eval_shape(lambda: Transformer(model.config).init(
        jax.random.PRNGKey(0), jax.numpy.ones((1, 4), "int32"), jax.numpy.ones((1, 4), "int32"),
        jax.numpy.ones((1, 4), "int32"), enable_dropout=False))
    return sum(x.value.size if hasattr(x, "value") else x.size
               for x in traverse_util.flatten_dict(shapes["params"]).values())
  assert round(count("t5_1_1/base.gin") / 1e6, 1) == 247.6
  assert round(count("flan_t5/small.gin") / 1e6) == 77


def test_overrides_from_the_command_line():
  model = _build("tiny.gin", "config.T5Config.scan_layers = True", "config.T5Config.remat_policy = 'full'",
                 "LOSS_NORMALIZING_FACTOR = 'NUM_REAL_TARGET_TOKENS'")
  assert model.config.scan_layers and model.config.remat_policy == "full"
  assert model.loss_normalizing_factor == "NUM_REAL_TARGET_TOKENS"
