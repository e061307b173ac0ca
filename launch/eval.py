r"""Evaluates a checkpoint on a mixture's eval split with the IE metrics (T5X's eval.py).

  python -m launch.eval --gin_file=gin/models/tiny.gin --gin_file=gin/runs/eval.gin \
    --gin.MIXTURE_OR_TASK_NAME="'ie_sample_default'" \
    --gin.CHECKPOINT_PATH="'/tmp/ie_t5x/default'" --gin.EVAL_OUTPUT_DIR="'/tmp/ie_eval'"

CHECKPOINT_PATH: one of our runs (its latest step), a step dir, a T5X
checkpoint or a Hugging Face folder. Writes metrics JSON/markdown and
predictions JSONL under EVAL_OUTPUT_DIR/eval/ and prints the F1 table.
"""
from __future__ import annotations

import os
import re
from typing import Any, Sequence

import gin
import jax

from launch import gin_utils
from models import checkpoints
from models import evaluation
from models import partitioning as partitioning_lib
from models import trainer as trainer_lib


def load_params(model: Any, partitioner: partitioning_lib.Partitioner,
                checkpoint_path: str, lengths: dict[str, int]) -> tuple[Any, int]:
  """Sharded params from any checkpoint kind, and its step (0 if unknown)."""
  shapes = {"encoder_input_tokens": (1, lengths["inputs"]),
            "decoder_input_tokens": (1, lengths["targets"])}
  abstract, shardings = trainer_lib.abstract_params_and_shardings(model, partitioner, shapes)
  params = checkpoints.load_initial_params(checkpoint_path, abstract, shardings)
  step = 0
  if checkpoints.checkpoint_kind(checkpoint_path) == "ours":
    step = int(os.path.basename(checkpoints.our_step_dir(checkpoint_path)))
  elif m := re.search(r"checkpoint_(\d+)", checkpoint_path):
    step = int(m.group(1))
  return params, step


def evaluate(*, model: Any, evaluator: evaluation.Evaluator, checkpoint_path: str,
             output_dir: str, partitioner: partitioning_lib.Partitioner | None = None,
             score: bool = True) -> dict[str, float]:
  partitioner = partitioner or partitioning_lib.Partitioner()
  gin_utils.write_gin_config(output_dir, "eval_config.gin")
  params, step = load_params(model, partitioner, checkpoint_path,
                             evaluator.task_feature_lengths)
  results = evaluator.evaluate(model, params, partitioner, step,
                               output_dir=output_dir, score=score)
  if jax.process_index() == 0:
    print(evaluation.format_console_summary(step, results) if score else
          f"predictions written under {os.path.join(output_dir, 'eval', 'predictions')}",
          flush=True)
  return results


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  evaluate_using_gin = gin.configurable(evaluate)
  gin_utils.setup_from_flags()
  evaluate_using_gin()


if __name__ == "__main__":
  gin_utils.run(main)
