"""benchmarks/trainer_steps.py: end-to-end trainer steps/s on the T5X reference shape."""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import trainer_steps  # pylint: disable=wrong-import-position


def test_too_few_steps_and_a_missing_data_dir_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="--steps must be >= 12"):
    trainer_steps.parse_args(["--steps=5"])
  args = trainer_steps.parse_args([f"--data_dir={tmp_path}/nope", f"--work_dir={tmp_path}"])
  with pytest.raises(FileNotFoundError, match="nope.*does not exist"):
    trainer_steps.run(args)


@pytest.mark.slow
def test_runs_the_reference_gin_end_to_end_and_reports_steps_per_second(
    shared_data, tmp_path):
  results = tmp_path / "results"
  trainer_steps.main([f"--data_dir={shared_data}", f"--work_dir={tmp_path}/work",
                      "--steps=20", f"--results_dir={results}"])
  result = json.loads((results / "trainer_steps.json").read_text())
  assert result["steps"] == 20
  # Windows ending at steps 20 (the first, at 10, is warm-up and dropped).
  assert len(result["window_step_times_s"]) == 1
  assert result["steps_per_s"] == pytest.approx(1 / result["median_step_s"])
  assert result["ratio_to_t5x_recorded"] == pytest.approx(result["steps_per_s"] / 0.40)
  markdown = (results / "trainer_steps.md").read_text()
  assert "not a same-run peer" in markdown and "bench_t5x_reference.gin" in markdown
