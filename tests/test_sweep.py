"""launch/sweep.py: a grid of gin overrides -> one MODEL_DIR per point -> one table."""
from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys

import pytest

from launch import sweep
from models import evaluation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_sweep_keeps_each_value_as_typed():
  assert sweep.parse_sweep("LEARNING_RATE=[1e-3, 3e-3]") == (
      "LEARNING_RATE", ["1e-3", "3e-3"])
  assert sweep.parse_sweep("MIXTURE_OR_TASK_NAME=['a', \"b,c\"]") == (
      "MIXTURE_OR_TASK_NAME", ["'a'", '"b,c"'])
  # Nested values stay whole; gin references are not Python but still split.
  assert sweep.parse_sweep("TASK_FEATURE_LENGTHS=[{'inputs': 64, 'targets': 8}]")[1] == [
      "{'inputs': 64, 'targets': 8}"]
  assert sweep.parse_sweep(
      "optimizers.create_optimizer.optimizer_fn=[@optimizers.adamw, @optimizers.adafactor]"
  )[1] == ["@optimizers.adamw", "@optimizers.adafactor"]
  for bad in ("LEARNING_RATE", "LEARNING_RATE=1e-3", "LEARNING_RATE=[]", "=[1]"):
    with pytest.raises(ValueError, match="sweep"):
      sweep.parse_sweep(bad)


def test_the_grid_is_the_product_of_the_axes_first_axis_slowest():
  grid = sweep.expand_grid([("A", ["1", "2"]), ("B", ["'x'", "'y'", "'z'"])])
  assert len(grid) == 6
  assert grid[0] == {"A": "1", "B": "'x'"} and grid[1] == {"A": "1", "B": "'y'"}
  assert grid[-1] == {"A": "2", "B": "'z'"}
  with pytest.raises(ValueError, match="twice"):
    sweep.expand_grid([("A", ["1"]), ("A", ["2"])])


def test_run_directories_have_readable_safe_unique_names():
  assert sweep.run_name({"LEARNING_RATE": "1e-3", "MIXTURE_OR_TASK_NAME": "'a'"}) == (
      "LEARNING_RATE=1e-3,MIXTURE_OR_TASK_NAME=a")
  assert sweep.run_name({"config.T5Config.emb_dim": "64",
                         "gin_file": "'models/small.gin'"}) == "emb_dim=64,gin_file=small"
  assert sweep.run_name({"X": "'a/b c'"}) == "X=a_b_c"
  long_a = sweep.run_name({"X": "'" + "a" * 200 + "1'"})
  long_b = sweep.run_name({"X": "'" + "a" * 200 + "2'"})
  assert len(long_a) <= 120 and long_a != long_b


def test_dry_run_prints_one_train_sh_command_per_point(capsys):
  assert sweep.main([
      "--gin_file=gin/local/default.gin", "--sweep=LEARNING_RATE=[1e-3,3e-3]",
      "--sweep=MIXTURE_OR_TASK_NAME=['ie_sample_default','ie_ner_sample_instructuie']",
      "--sweep=gin_file=['models/tiny.gin']",
      "--base_dir=/tmp/sw", "--gin.TRAIN_STEPS=50", "--dry_run"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 4
  first = shlex.split(lines[0])
  assert first[0] == sweep.TRAIN_SH
  # Base gin files, then the swept file, the shared flags, the point's
  # bindings and its own MODEL_DIR.
  assert first[1:] == [
      "--gin_file=gin/local/default.gin", "--gin_file=models/tiny.gin",
      "--gin.TRAIN_STEPS=50", "--gin.LEARNING_RATE=1e-3",
      "--gin.MIXTURE_OR_TASK_NAME='ie_sample_default'",
      "--gin.MODEL_DIR='/tmp/sw/LEARNING_RATE=1e-3,MIXTURE_OR_TASK_NAME="
      "ie_sample_default,gin_file=tiny'"]
  dirs = [shlex.split(line)[-1] for line in lines]
  assert len(set(dirs)) == 4 and all(d.startswith("--gin.MODEL_DIR='/tmp/sw/") for d in dirs)
  assert not os.path.exists("/tmp/sw/sweep.json")  # a dry run writes nothing


def test_dry_run_on_a_tpu_goes_through_train_sh_on_all_workers(capsys):
  assert sweep.main(["--gin_file=gin/local/default.gin", "--sweep=LEARNING_RATE=[1e-3]",
                     "--base_dir=gs://bucket/sw", "--tpu=v4-32", "--zone=us-central2-b",
                     "--dry_run"]) == 0
  command = shlex.split(capsys.readouterr().out.strip())
  assert command[:3] == [sweep.TRAIN_SH, "--tpu=v4-32", "--zone=us-central2-b"]
  assert command[-1] == "--gin.MODEL_DIR='gs://bucket/sw/LEARNING_RATE=1e-3'"
  # And train.sh turns it into the all-workers ssh command.
  out = subprocess.run(command + ["--dry_run"], capture_output=True, text=True,
                       check=True).stdout
  ssh = shlex.split(out)
  remote = next(a for a in ssh if a.startswith("--command="))
  assert "--worker=all" in ssh and "python3 -m launch.train" in remote
  assert "gs://bucket/sw/LEARNING_RATE=1e-3" in remote
  with pytest.raises(SystemExit):  # a TPU sweep needs a shared (GCS) base_dir
    sweep.main(["--sweep=A=[1]", "--base_dir=/tmp/sw", "--tpu=x", "--zone=z",
                "--dry_run"])


def _write_run(model_dir, step, ner_f1, re_f1, split="validation"):
  """Metrics files exactly as models/evaluation.py writes them."""
  per_task = {
      "ie_ner_sample_instructuie": {"entity/sample/f1": ner_f1,
                                    "entity/average/f1": ner_f1, "num_examples": 8.0},
      "ie_re_conll04_instructuie": {"relation_strict/conll04/f1": re_f1,
                                    "relation_strict/average/f1": re_f1,
                                    "num_examples": 8.0}}
  evaluation.write_reports(str(model_dir), split, step, per_task,
                           evaluation.summarize(per_task))


def test_collect_reads_each_runs_newest_metrics_into_one_table(tmp_path, capsys):
  base = tmp_path / "sweep"
  points = sweep.plan(str(base), [("LEARNING_RATE", ["1e-3", "3e-3"])],
                      gin_files=["gin/local/default.gin"], extra_args=[])
  sweep.write_manifest(str(base), points, [("LEARNING_RATE", ["1e-3", "3e-3"])])
  low, high = (p["model_dir"] for p in points)
  _write_run(low, 100, 10.0, 4.0)
  _write_run(low, 200, 20.0, 6.0)  # newest: this one counts
  _write_run(low, 300, 99.0, 99.0, split="test")  # another split
  _write_run(high, 200, 40.0, 30.0)

  rows = sweep.collect(str(base), split="validation")
  assert [(r["run"], r["LEARNING_RATE"], r["step"]) for r in rows] == [
      ("LEARNING_RATE=1e-3", "1e-3", 200), ("LEARNING_RATE=3e-3", "3e-3", 200)]
  assert rows[0]["average_f1"] == pytest.approx(13.0)
  assert rows[0]["sample/entity"] == 20.0 and rows[0]["conll04/relation_strict"] == 6.0
  assert rows[1]["average_f1"] == pytest.approx(35.0)
  assert sweep.collect(str(base))[0]["step"] == 300  # no split: newest of any

  assert sweep.main(["collect", f"--base_dir={base}", "--split=validation"]) == 0
  printed = capsys.readouterr().out
  assert "| run | LEARNING_RATE | step | average_f1 | conll04/relation_strict | sample/entity |" in printed
  assert "| LEARNING_RATE=3e-3 | 3e-3 | 200 | 35.00 | 30.00 | 40.00 |" in printed
  with open(base / "results.csv") as f:
    table = list(csv.DictReader(f))
  assert [float(r["average_f1"]) for r in table] == pytest.approx([13.0, 35.0])
  assert json.loads((base / "results.json").read_text())[1]["sample/entity"] == 40.0
  assert "35.00" in (base / "results.md").read_text()


def test_collect_without_a_manifest_lists_every_run_dir(tmp_path):
  _write_run(tmp_path / "b_run", 5, 50.0, 50.0)
  (tmp_path / "a_empty").mkdir()
  rows = sweep.collect(str(tmp_path))
  assert [(r["run"], r["step"]) for r in rows] == [("a_empty", None), ("b_run", 5)]


@pytest.mark.slow
def test_a_real_two_point_sweep_trains_and_collects(tmp_path):
  base = tmp_path / "sweep"
  out = subprocess.run(
      [sys.executable, "-m", "launch.sweep", "--gin_file=gin/local/default.gin",
       "--sweep=LEARNING_RATE=[1e-3,1e-2]", f"--base_dir={base}",
       "--gin.TRAIN_STEPS=3", "--gin.EVAL_PERIOD=None", "--gin.CHECKPOINT_PERIOD=3",
       "--gin.EVAL_EXAMPLES_PER_TASK=2", "--gin.BATCH_SIZE=8",
       "--gin.WARMUP_STEPS=1"],
      cwd=REPO, env={**os.environ, "XLA_FLAGS": ""}, capture_output=True, text=True)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert "2/2 points ok" in out.stdout
  rows = json.loads((base / "results.json").read_text())
  assert [(r["LEARNING_RATE"], r["step"]) for r in rows] == [("1e-3", 3), ("1e-2", 3)]
  assert all(r["average_f1"] is not None for r in rows)
  for row in rows:
    assert (base / row["run"] / "config.gin").exists()
    assert (base / row["run"] / sweep.DONE_MARKER).exists()
  # Run again: both points are done, nothing trains.
  again = subprocess.run(
      [sys.executable, "-m", "launch.sweep", "--gin_file=gin/local/default.gin",
       "--sweep=LEARNING_RATE=[1e-3,1e-2]", f"--base_dir={base}", "--gin.TRAIN_STEPS=3"],
      cwd=REPO, capture_output=True, text=True, check=True).stdout
  assert again.count("skipped") == 2
