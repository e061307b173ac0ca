"""Sharded evaluation: decoding in padded global batches, task metrics, reports."""
from __future__ import annotations

import json

import flax.linen as nn
import jax
import numpy as np
import pytest

from models import evaluation, partitioning
from test_trainer_standin import COPY_TASK, StandInModel

LENGTHS = {"inputs": 24, "targets": 8}


@pytest.fixture(scope="module")
def model_and_params():
  model = StandInModel()
  variables = model.get_initial_variables(
      jax.random.key(0), {"encoder_input_tokens": (1, 24), "decoder_input_tokens": (1, 8)})
  return model, nn.meta.unbox(variables)["params"]


def test_sharded_decoding_equals_unsharded_and_keeps_order(model_and_params):
  model, params = model_and_params
  ev = evaluation.Evaluator(COPY_TASK, LENGTHS, batch_size=6)  # 16 examples: last batch padded
  _, features = ev._examples()[COPY_TASK]
  sharded = ev.predict_tokens(model, params, partitioning.Partitioner(num_partitions=2), features)
  whole = np.asarray(model.predict_batch(params, features))
  assert sharded.shape == (16, 8)
  np.testing.assert_array_equal(sharded, whole)


def test_evaluate_writes_metrics_tables_and_predictions(tmp_path, model_and_params):
  model, params = model_and_params
  ev = evaluation.Evaluator(COPY_TASK, LENGTHS, batch_size=8, num_examples=10)
  flat = ev.evaluate(model, params, partitioning.Partitioner(), step=7,
                     output_dir=str(tmp_path))
  assert flat[f"{COPY_TASK}/num_examples"] == 10
  assert flat["average/f1"] == flat[f"{COPY_TASK}/copy/average/f1"]
  report = json.loads((tmp_path / "eval/metrics_validation_step7.json").read_text())
  assert report["tasks"][COPY_TASK]["copy/toy/f1"] == flat[f"{COPY_TASK}/copy/toy/f1"]
  lines = (tmp_path / f"eval/predictions/{COPY_TASK}_validation_step7.jsonl").read_text().splitlines()
  assert len(lines) == 10
  first = json.loads(lines[0])
  assert first["input"].startswith("copy: ") and first["target"] == first["input"].split()[1]
  assert isinstance(first["prediction"], str)
  assert "| dataset | copy F1 |" in (tmp_path / "eval/metrics_validation_step7.md").read_text()


def test_summary_averages_family_f1_per_task_then_over_tasks():
  per_task = {
      "ner_task": {"entity/a/f1": 40.0, "entity/b/f1": 60.0, "entity/average/f1": 50.0,
                   "uniner/entity/average/f1": 99.0},
      "re_task": {"relation_strict/a/f1": 10.0, "relation_strict/average/f1": 10.0,
                  "relation_boundary/average/f1": 30.0},
  }
  summary = evaluation.summarize(per_task)
  assert summary["task_f1"] == {"ner_task": 50.0, "re_task": 20.0}  # uniner/ not mixed in
  assert summary["average"]["f1"] == 35.0
  assert summary["per_dataset"]["a"] == {"entity": 40.0, "relation_strict": 10.0}
  table = evaluation.markdown_report("test", 3, per_task, summary)
  assert "| ner_task | 0 | 50.00 |" in table and "| a | 40.00 | 10.00 |" in table
