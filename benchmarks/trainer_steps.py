r"""Trainer steps/s end to end on the upstream-T5X reference shape.

PERFORMANCE.md's second target is train steps/s against upstream T5X
(`t5x.train`) on the same gin config. t5x is not on the package registry this
project installs from, so the peer cannot run in the same invocation; its
figure on this 2-core CPU is the one PERFORMANCE.md records (T5 v1.1 layout,
d_model 256, 4+4 layers, vocab 4096, batch 32, lengths 128/64, Adafactor,
float32: about 0.40 steps/s, 0.52 with bf16 activations). This script runs
that shape (`gin/runs/bench_t5x_reference.gin`) through our whole trainer,
`launch/train.py` with the real CoNLL-2003 data pipeline, packing and logging,
as `t5x.train` would run it, and reports the median logged step time, the
CPU other processes used meanwhile, and the ratio to the recorded T5X figure
(a recorded number, not a same-run peer: say so beside it).

  IE_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.trainer_steps
  .venv/bin/python -m benchmarks.trainer_steps --steps=12 --results_dir=/tmp/bench  # smoke

Writes <results_dir>/trainer_steps.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Any

from benchmarks import common
from benchmarks import quality

GIN_FILE = "gin/runs/bench_t5x_reference.gin"
VOCAB_SIZE = 4096
# PERFORMANCE.md, "What the peers look like on this 2-core CPU": t5x.train, fp32.
T5X_STEPS_PER_S = 0.40
T5X_TARGET_RATIO = 1.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--steps", type=int, default=60, help="train steps (logged every 10)")
  p.add_argument("--work_dir", default="/tmp/ie_trainer_steps",
                 help="vocabulary cache and the (replaced) run directory")
  p.add_argument("--data_dir", default=None,
                 help="the shared data folder (default: $IE_DATA_DIR or ../shared/data)")
  p.add_argument("--gin", action="append", default=[], help="extra gin bindings")
  p.add_argument("--busy_threshold", type=float, default=0.2,
                 help="mean cores other processes may use before the run counts as busy")
  p.add_argument("--results_dir", default=common.RESULTS_DIR)
  p.add_argument("--name", default="trainer_steps")
  args = p.parse_args(argv)
  if args.steps < 12:
    raise ValueError("--steps must be >= 12: the first logged window is dropped as warm-up")
  args.data_dir = args.data_dir or os.environ.get("IE_DATA_DIR") or quality.DEFAULT_DATA_DIR
  return args


def run(args: argparse.Namespace) -> dict[str, Any]:
  if not os.path.isdir(args.data_dir):
    raise FileNotFoundError(f"--data_dir {args.data_dir!r} does not exist (CoNLL-2003 is read "
                            f"from <data_dir>/crossner/conll2003)")
  env = {**os.environ, "IE_DATA_DIR": args.data_dir}
  os.makedirs(args.work_dir, exist_ok=True)
  vocab = quality.build_vocabulary(args.work_dir, VOCAB_SIZE, env)
  model_dir = os.path.join(args.work_dir, "run")
  shutil.rmtree(model_dir, ignore_errors=True)  # a leftover checkpoint would resume
  bindings = [f"MODEL_DIR='{model_dir}'", f"ie_tasks.get_vocabulary.path='{vocab}'",
              f"TRAIN_STEPS={args.steps}", *args.gin]
  cmd = [sys.executable, "-m", "launch.train", f"--gin_file={GIN_FILE}",
         *quality.gin_flags(bindings)]
  log_path = os.path.join(args.work_dir, "train_log.txt")
  print(f"[trainer_steps] {args.steps} steps; log: {log_path}", file=sys.stderr, flush=True)
  monitor = common.OtherCpuMonitor(args.busy_threshold)
  with open(log_path, "w", encoding="utf-8") as log, monitor:
    proc = subprocess.run(cmd, cwd=common.REPO_ROOT, env=env, stdout=log,
                          stderr=subprocess.STDOUT, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"launch/train.py failed (exit {proc.returncode}); see {log_path}")
  with open(log_path, encoding="utf-8") as f:
    log = quality.parse_train_log(f.read())
  # Logged windows of 10 steps; the first follows compilation and warms the input pipeline.
  windows = [p for p in log["curve"] if p.get("step_time_s")][1:]
  if not windows:
    raise RuntimeError(f"no timed step windows in {log_path}")
  times = sorted(p["step_time_s"] for p in windows)
  step_s = times[len(times) // 2]
  tokens = sorted(p["tokens_per_second"] for p in windows)
  return {
      "benchmark": args.name,
      "settings": {k: v for k, v in vars(args).items() if k != "results_dir"},
      "gin_file": GIN_FILE,
      "command": " ".join(cmd),
      "steps": log["train_steps"],
      "first_step_s": log["first_step_s"],
      "window_step_times_s": [p["step_time_s"] for p in windows],
      "median_step_s": step_s,
      "steps_per_s": 1.0 / step_s,
      "median_tokens_per_s": tokens[len(tokens) // 2],
      "t5x_recorded_steps_per_s": T5X_STEPS_PER_S,
      "ratio_to_t5x_recorded": (1.0 / step_s) / T5X_STEPS_PER_S,
      "other_cores_mean": monitor.timing.other_cores,
      "quiet": not monitor.timing.busy,
      "machine": common.machine_info(),
  }


def to_markdown(result: dict[str, Any]) -> str:
  headers = ["config", "steps", "ours steps/s", "ours step s", "ours tok/s (packed rows)",
             "ours first step s", "T5X steps/s (recorded)", "ours / T5X", "target", "quiet"]
  row = [f"`{result['gin_file']}`", result["steps"], result["steps_per_s"],
         result["median_step_s"], result["median_tokens_per_s"], result["first_step_s"],
         result["t5x_recorded_steps_per_s"], f"{result['ratio_to_t5x_recorded']:.2f}x",
         f">= {T5X_TARGET_RATIO}x",
         "yes" if result["quiet"] else
         f"NO (others used {result['other_cores_mean']:.2f} cores)"]
  return "\n\n".join([
      "## Trainer steps/s end to end: launch/train.py vs upstream T5X (recorded)",
      "T5 v1.1 layout, d_model 256, 4+4 layers, vocab 4096 (SentencePiece on CoNLL-2003 "
      "train), batch 32 packed rows of 128/64 tokens, Adafactor, float32, dropout 0.1; the "
      "real data pipeline, logging and checkpointing run as in any training job. Step time "
      "is the median over the logged 10-step windows after the first.",
      common.markdown_table(headers, [row]),
      "The T5X figure is PERFORMANCE.md's measurement of `t5x.train` on this machine with "
      "this shape, not a same-run peer: t5x cannot be installed here (not on the package "
      "registry), so it could not run in this invocation.",
      common.machine_markdown(result["machine"]),
  ])


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  result = run(args)
  markdown = to_markdown(result)
  common.report(result, markdown, args.name, args.results_dir)


if __name__ == "__main__":
  main()
