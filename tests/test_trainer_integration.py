"""The embedded default trains for real: the loss falls and held-out F1 rises.

Slow (about 5-6 minutes on a quiet 2-core CPU; it is `make demo`'s run):
`pytest -m slow tests/test_trainer_integration.py`.
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
       "--gin.train.eval_at_start=True", f"--gin.MODEL_DIR='{model_dir}'"],
      cwd=REPO, env={**os.environ, "XLA_FLAGS": ""}, check=True, capture_output=True,
      text=True).stdout
  steps = int(re.search(r"^step \d+/(\d+) \|", out, re.M).group(1))
  losses = [float(m) for m in re.findall(rf"^step \d+/{steps} \| loss ([\d.]+)", out, re.M)]
  assert len(losses) >= steps // 10 - 1
  first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
  assert last < 0.3 * first, (first, last)
  f1 = {step: json.loads((model_dir / "eval" / f"metrics_validation_step{step}.json")
                         .read_text())["average"]["f1"] for step in (0, steps)}
  # Percent points on held-out examples: from nothing to clearly learnt.
  assert f1[0] < 5.0 and f1[steps] > 30.0, f1
