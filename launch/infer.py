r"""Decodes a mixture's split with a checkpoint; writes predictions JSONL (T5X's infer.py).

  python -m launch.infer --gin_file=gin/models/tiny.gin --gin_file=gin/runs/infer.gin \
    --gin.MIXTURE_OR_TASK_NAME="'ie_sample_default'" --gin.INFER_SPLIT="'test'" \
    --gin.CHECKPOINT_PATH="'/tmp/ie_t5x/default'" --gin.INFER_OUTPUT_DIR="'/tmp/ie_infer'"

One JSONL per task under INFER_OUTPUT_DIR/eval/predictions/ with the input,
the target, the generated text and the parsed structures.
"""
from __future__ import annotations

from typing import Any, Sequence

import gin

from launch import eval as eval_lib
from launch import gin_utils
from models import evaluation
from models import partitioning as partitioning_lib


def infer(*, model: Any, evaluator: evaluation.Evaluator, checkpoint_path: str,
          output_dir: str, partitioner: partitioning_lib.Partitioner | None = None) -> None:
  eval_lib.evaluate(model=model, evaluator=evaluator, checkpoint_path=checkpoint_path,
                    output_dir=output_dir, partitioner=partitioner, score=False)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  infer_using_gin = gin.configurable(infer)
  gin_utils.setup_from_flags()
  infer_using_gin()


if __name__ == "__main__":
  gin_utils.run(main)
