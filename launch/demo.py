"""The main job on the embedded default: prepare data, show examples and mixture stats.

  python -m launch.demo                       # the built-in sample (offline)
  IE_DATA_DIR=../shared/data python -m launch.demo   # your prepared datasets
  python -m launch.demo --mixture=ie_crossner_zeroshot_eval --split=validation

Prints a few instruction examples per task format (inputs -> targets) and, per
task of the mixture, the number of examples, the mixing rate and share, and
token lengths under the vocabulary the tasks use (`--vocab`, default: the
sample's own SentencePiece model, built at first use).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Sequence

import gin


def _console():
  from rich.console import Console
  return Console(width=max(100, min(160, os.get_terminal_size().columns))
                 if sys.stdout.isatty() else 120)


def choose_mixture(requested: str | None) -> str:
  """The requested mixture, else the user's data (IE_DATA_DIR) or the sample."""
  from ie_tasks import datasets, paths
  if requested:
    return requested
  if os.environ.get(paths.ENV_VAR) and datasets.present():
    return "ie_instructuie_supervised"
  return "ie_sample_default"


def show_examples(console, mixture: str, split: str, per_task: int) -> None:
  import seqio
  from rich.panel import Panel
  from rich.text import Text
  from ie_tasks import tasks
  for task in seqio.get_mixture_or_task(mixture).tasks:
    if split not in task.splits:
      continue
    for ex in tasks.task_examples(task.name, split)[:per_task]:
      body = Text()
      body.append("inputs:  ", style="bold cyan")
      body.append(ex["inputs"] + "\n")
      body.append("targets: ", style="bold green")
      body.append(ex["targets"])
      console.print(Panel(body, title=f"{task.name} [{split}] {ex['id']}",
                          title_align="left"))


def mixture_rows(mixture: str, split: str, max_tokenized: int = 300
                 ) -> list[dict]:
  """Per task: examples in `split`, train-split rate/share, token lengths."""
  import seqio
  from ie_tasks import mixtures, tasks
  rows = mixtures.mixture_statistics(mixture, split="train")
  vocabulary = tasks.VOCABULARY
  for row in rows:
    task = seqio.get_mixture_or_task(row["task"])
    examples = (tasks.task_examples(row["task"], split)
                if split in task.splits else [])
    row["split_examples"] = len(examples)
    for key in ("inputs", "targets"):
      lengths = [len(vocabulary.encode(ex[key])) + 1  # + EOS
                 for ex in examples[:max_tokenized]]
      row[f"{key}_mean"] = statistics.fmean(lengths) if lengths else 0.0
      row[f"{key}_max"] = max(lengths, default=0)
  return rows


def show_statistics(console, mixture: str, split: str, rows: list[dict]) -> None:
  from rich.table import Table
  table = Table(title=f"mixture {mixture}: train rate/share, {split} lengths "
                "(tokens incl. EOS)")
  for column in ("task", "train examples", "rate", "share",
                 f"{split} examples", "inputs mean/max", "targets mean/max"):
    table.add_column(column, justify="left" if column == "task" else "right",
                     no_wrap=column == "task")
  for r in rows:
    table.add_row(r["task"], str(r["examples"]), f"{r['rate']:.1f}",
                  f"{100 * r['share']:.1f}%", str(r["split_examples"]),
                  f"{r['inputs_mean']:.1f}/{r['inputs_max']}",
                  f"{r['targets_mean']:.1f}/{r['targets_max']}")
  console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--mixture", default=None,
                      help="default: ie_sample_default, or "
                           "ie_instructuie_supervised when $IE_DATA_DIR is set")
  parser.add_argument("--split", default="validation")
  parser.add_argument("--examples_per_task", type=int, default=1)
  parser.add_argument("--vocab", default="sample",
                      choices=("sample", "byt5", "sentencepiece"),
                      help="vocabulary for token lengths (sentencepiece: "
                           "T5's, needs network for the gs:// default)")
  parser.add_argument("--gin", action="append", default=[],
                      help="gin binding, e.g. ie_tasks.mixing_rate.temperature=2")
  args = parser.parse_args(argv)

  start = time.time()
  import ie_tasks  # registers tasks and mixtures
  from ie_tasks import sample
  gin.parse_config([f"ie_tasks.get_vocabulary.kind = '{args.vocab}'"] +
                   args.gin)
  console = _console()
  mixture = choose_mixture(args.mixture)
  if mixture == "ie_sample_default":
    console.print(f"[bold]Embedded default[/bold]: sample written to "
                  f"{sample.prepare_sample()}")
  else:
    console.print(f"[bold]Data root[/bold]: {ie_tasks.data_dir()}; datasets "
                  f"present: {', '.join(ie_tasks.datasets.present())}")
  show_examples(console, mixture, args.split, args.examples_per_task)
  rows = mixture_rows(mixture, args.split)
  show_statistics(console, mixture, args.split, rows)
  console.print(f"vocabulary: {args.vocab} "
                f"({ie_tasks.tasks.VOCABULARY.vocab_size} ids); "
                f"done in {time.time() - start:.1f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
