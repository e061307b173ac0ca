"""benchmarks/decode_throughput.py: the step floor and the report."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common, decode_throughput  # pylint: disable=wrong-import-position
from models import config as config_lib  # pylint: disable=wrong-import-position

TINY = config_lib.T5Config(vocab_size=32128, emb_dim=256, num_heads=4, head_dim=64, mlp_dim=1024,
                           num_encoder_layers=4, num_decoder_layers=4)


def test_weight_count_matches_the_decoder_parameters():
  """Every decoder weight a step multiplies by, counted from the real parameter tree."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from models.models import EncoderDecoderModel  # pylint: disable=g-import-not-at-top
  model = EncoderDecoderModel(TINY)
  shapes = jax.eval_shape(lambda: model.get_initial_variables(
      jax.random.PRNGKey(0), {"encoder_input_tokens": (1, 8), "decoder_input_tokens": (1, 8)}))
  params = jax.tree_util.tree_map_with_path(lambda path, x: (jax.tree_util.keystr(path), x.shape),
                                            shapes["params"])
  used = 0
  for name, shape in jax.tree_util.tree_leaves(params, is_leaf=lambda x: isinstance(x, tuple)):
    in_decoder_matmul = "decoder" in name and "kernel" in name and not (
        "encoder_decoder_attention" in name and ("'key'" in name or "'value'" in name))
    if in_decoder_matmul or "logits_dense" in name:
      used += int(np.prod(shape))
  assert decode_throughput.decoder_weight_count(TINY) == used


def test_floor_is_compute_bound_at_large_batch_and_read_bound_at_one():
  kw = dict(input_length=64, new_tokens=64, flops_per_s=150e9, bytes_per_s=50e9)
  one = decode_throughput.step_floor(TINY, 1, **kw)
  many = decode_throughput.step_floor(TINY, 128, **kw)
  assert one["floor_s"] == one["read_s"] > one["compute_s"]
  assert many["floor_s"] == many["compute_s"] > many["read_s"]
  # FLOPs grow with the rows; the weights are read once per step whatever the batch.
  assert many["flops"] == pytest.approx(128 * one["flops"])
  assert many["weight_bytes"] == one["weight_bytes"]


def _side(tokens_per_s: float) -> dict:
  return {"tokens_per_s": tokens_per_s, "sentences_per_s": tokens_per_s / 64, "compile_s": 1.5,
          "timing": {"all_quiet": True}}


def test_markdown_reports_step_times_and_the_floor():
  floor = {"floor_s": 0.005, "compute_s": 0.005, "read_s": 0.001, "flops": 1.0,
           "weight_bytes": 1.0}
  row = {"method": "greedy", "num_beams": 1, "batch_size": 32, "new_tokens": 64,
         "ours": _side(3200.0), "hf": _side(1600.0), "ratio_tokens_per_s": 2.0,
         "token_agreement": 1.0, "all_quiet": True, "floor": floor}
  result = {"model": {"size": "tiny", "num_params": 25.9e6},
            "settings": {"input_length": 64, "new_tokens": 64, "repeats": 3},
            "torch_threads": 2, "rows": [row],
            "ceilings": {"matmul": {"flops_per_s": 150e9, "n": 2048},
                         "read": {"bytes_per_s": 50e9, "bytes": 100 * 2**20}},
            "machine": common.machine_info()}
  text = decode_throughput.to_markdown(result)
  line = next(l for l in text.splitlines() if l.startswith("| greedy"))
  # 32 rows / 3,200 tok/s = 10 ms a step; HF 20 ms; floor 5 ms, so HF / floor = 4x.
  cells = [c.strip() for c in line.strip("|").split("|")]
  assert cells[8:12] == ["10.00", "20.00", "5.00", "4.00x"]
  assert "150 GFLOP/s" in text and "50 GB/s over 100 MiB" in text
  del row["floor"], result["ceilings"]
  line = next(l for l in decode_throughput.to_markdown(result).splitlines()
              if l.startswith("| greedy"))
  assert "| - | - |" in line
