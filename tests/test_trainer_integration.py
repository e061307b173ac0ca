"""The embedded default trains for real: the loss falls and held-out F1 rises.

Slow (a few minutes on 2 CPU cores): `pytest -m slow tests/test_trainer_integration.py`.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_default_run_learns_the_sample(tmp_path):
  model_dir = tmp_path / "run"
  out = subprocess.run(
      [sys.executable, "-m", "launch.train", "--gin_file=gin/local/default.gin",
       "--gin.TRAIN_STEPS=400", "--gin.EVAL_PERIOD=100", f"--gin.MODEL_DIR='{model_dir}'"],
      cwd=REPO, env={**os.environ, "XLA_FLAGS": ""}, check=True, capture_output=True,
      text=True).stdout
  losses = [float(m) for m in re.findall(r"^step \d+/400 \| loss ([\d.]+)", out, re.M)]
  assert len(losses) >= 30
  first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
  assert last < 0.6 * first, (first, last)
  f1 = {step: json.loads((model_dir / "eval" / f"metrics_validation_step{step}.json")
                         .read_text())["average"]["f1"] for step in (100, 400)}
  assert f1[400] > f1[100] + 3.0, f1  # percent points, on held-out examples
