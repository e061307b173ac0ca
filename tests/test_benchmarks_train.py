"""benchmarks/train_throughput.py: its report and README section, and the quiet-run filter."""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common, train_throughput  # pylint: disable=wrong-import-position


def _side(tokens_per_s: float, quiet: bool = True) -> dict:
  return {"tokens_per_s": tokens_per_s, "step_s": 3072 / tokens_per_s, "compile_s": 12.0,
          "mfu": 0.4, "memory": {"peak_rss_increase_bytes": 512 * 2**20},
          "timing": {"all_quiet": quiet}}


def _result() -> dict:
  row = {"size": "tiny", "optimizer": "adafactor", "batch_size": 16, "input_length": 128,
         "target_length": 64, "dtype": "float32", "ours": _side(3000.0),
         "hf": _side(2000.0, quiet=False), "ratio_tokens_per_s": 1.5, "all_quiet": False}
  return {"settings": {"batch_size": 16, "input_length": 128, "target_length": 64,
                       "dropout_rate": 0.1, "steps_per_run": 2, "repeats": 3},
          "peak_flops_per_s": 160e9, "peak_source": "measured fp32 matmul ceiling",
          "torch_threads": 2, "rows": [row], "batch_sweep": [dict(row, batch_size=8)],
          "machine": common.machine_info()}


def test_markdown_reports_ratio_memory_and_busy_runs():
  text = train_throughput.to_markdown(_result())
  line = next(l for l in text.splitlines() if l.startswith("| tiny"))
  assert "1.50x" in line and "512" in line and "NO (busy machine)" in line
  assert "160 GFLOP/s (measured fp32 matmul ceiling)" in text
  assert "| 8 |" in text  # the batch-size sweep


def test_update_readme_replaces_only_its_section(tmp_path):
  readme = tmp_path / "README.md"
  readme.write_text(f"intro\n{train_throughput.README_BEGIN}\nold table\n"
                    f"{train_throughput.README_END}\nafter\n")
  train_throughput.update_readme("## Train throughput\nnew table", str(readme))
  text = readme.read_text()
  assert "old table" not in text and "### Train throughput\nnew table" in text
  assert text.startswith("intro\n") and text.endswith("after\n")
  with pytest.raises(ValueError, match="markers"):
    (tmp_path / "plain.md").write_text("no markers")
    train_throughput.update_readme("x", str(tmp_path / "plain.md"))


def test_interleaved_timing_prefers_quiet_runs(monkeypatch):
  busy = iter([True, False, False, False])  # the first round is busy for side "a"
  real_exit = common.OtherCpuMonitor.__exit__

  def fake_exit(self, *exc):
    real_exit(self, *exc)
    self.timing.busy = next(busy)
    if self.timing.busy:
      self.timing.wall_s = 0.0  # a busy run must not win the minimum
  monkeypatch.setattr(common.OtherCpuMonitor, "__exit__", fake_exit)
  summaries = common.time_interleaved({"a": lambda: None, "b": lambda: None}, repeats=1,
                                      max_extra_runs=1)
  assert summaries["a"].quiet_runs == 1 and len(summaries["a"].runs) == 2
  assert summaries["a"].best_s > 0.0 and not summaries["a"].all_quiet
