"""benchmarks/plots.py draws readable PNGs from what a run and the benchmarks write."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import plots  # pylint: disable=wrong-import-position

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: str) -> bool:
  with open(path, "rb") as f:
    return f.read(8) == PNG_MAGIC and os.path.getsize(path) > 5000


@pytest.fixture
def model_dir(tmp_path):
  """A MODEL_DIR as launch/train.py leaves it: TF2 summaries in train/, eval JSONs in eval/."""
  import tensorflow as tf
  writer = tf.summary.create_file_writer(str(tmp_path / "train"))
  with writer.as_default():
    for step in range(0, 200, 10):
      tf.summary.scalar("train/loss", 10.0 * np.exp(-step / 60) + 0.5, step=step)
      tf.summary.scalar("train/z_loss", 1e-3, step=step)
    tf.summary.scalar("eval/average/f1", 40.0, step=100)
  writer.close()
  (tmp_path / "eval").mkdir()
  for step, f1 in ((100, 41.5), (200, 63.0)):
    (tmp_path / "eval" / f"metrics_test_step{step}.json").write_text(json.dumps({
        "split": "test", "step": step, "tasks": {},
        "per_dataset": {"conll2003": {"entity": f1}, "ai": {"entity": f1 / 2}},
        "average": {"f1": f1 * 0.75}}))
  return tmp_path


def test_event_files_are_read_as_scalar_series(model_dir):
  scalars = plots.read_event_scalars(str(model_dir))
  steps, values = zip(*scalars["train/loss"])
  assert steps == tuple(range(0, 200, 10))
  assert values[0] == pytest.approx(10.5) and values[-1] < values[0]
  assert plots.read_eval_f1(str(model_dir / "eval")) == {"test": [(100, 41.5 * 0.75),
                                                                  (200, 63.0 * 0.75)]}


def test_learning_curves_png(model_dir, tmp_path):
  out = plots.learning_curves(str(model_dir), str(tmp_path / "curves.png"))
  assert _is_png(out)


def test_learning_curves_without_anything_to_plot_names_the_dir(tmp_path):
  with pytest.raises(ValueError, match=str(tmp_path)):
    plots.learning_curves(str(tmp_path), str(tmp_path / "x.png"))


def test_dataset_f1_bars_from_metrics_json(model_dir, tmp_path):
  metrics = model_dir / "eval" / "metrics_test_step200.json"
  assert plots._dataset_f1(json.loads(metrics.read_text())) == {
      "ai": 31.5, "conll2003": 63.0, "average": 63.0 * 0.75}
  assert _is_png(plots.dataset_f1_bars(str(metrics), str(tmp_path / "f1.png")))


def test_throughput_vs_batch_png(tmp_path):
  sweep = [{"batch_size": b, "size": "tiny", "optimizer": "adafactor", "input_length": 128,
            "target_length": 64, "ours": {"tokens_per_s": 1000.0 * b ** 0.5},
            "hf": {"tokens_per_s": 500.0 * b ** 0.5}} for b in (4, 8, 16, 32)]
  results = tmp_path / "train_throughput.json"
  results.write_text(json.dumps({"batch_sweep": sweep}))
  assert _is_png(plots.throughput_vs_batch(str(results), str(tmp_path / "tp.png")))
  results.write_text(json.dumps({"batch_sweep": []}))
  with pytest.raises(ValueError, match="batch_sweep"):
    plots.throughput_vs_batch(str(results), str(tmp_path / "none.png"))
