"""The main job on the embedded default: look at the data, train, show F1 rise.

  python -m launch.demo               # examples + mixture stats, then train
                                      # gin/local/default.gin and print
                                      # per-dataset F1 at step 0 vs the end
  python -m launch.demo --no_train    # the quick look only (seconds)
  python -m launch.demo --gin.TRAIN_STEPS=100   # --gin.X flags go to training
  IE_DATA_DIR=../shared/data python -m launch.demo --no_train   # your data
  python -m launch.demo --no_train --mixture=ie_crossner_zeroshot_eval

The look prints one instruction example per task (inputs -> targets) and,
per task of the mixture, the number of examples, the mixing rate and share,
and token lengths under the vocabulary the tasks use (`--vocab`, default:
the sample's own SentencePiece model, built at first use). Training runs
`launch.train` (the same command `launch/train.sh` runs) into `--model_dir`,
evaluating at step 0 and at the end; the table compares the two.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Mapping, Sequence

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


# --- training and the F1 table -----------------------------------------------------------
DEFAULT_GIN = "gin/local/default.gin"
_TASK_F1 = re.compile(r"^(?P<family>[^/]+)/(?P<dataset>[^/]+)/f1$")


def train_command(model_dir: str, gin_args: Sequence[str],
                  gin_file: str = DEFAULT_GIN) -> list[str]:
  """The launch.train command of the demo (what launch/train.sh runs)."""
  return [sys.executable, "-m", "launch.train", f"--gin_file={gin_file}",
          "--gin.train.eval_at_start=True", *gin_args,
          f"--gin.MODEL_DIR='{model_dir}'"]


def run_training(command: Sequence[str], log_path: str) -> int:
  """Runs training, echoing its progress and eval lines (absl's go to the log)."""
  from launch import gin_utils
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  with open(log_path, "w", encoding="utf-8") as log:
    proc = subprocess.Popen(list(command), cwd=gin_utils.REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
      log.write(line)
      if re.match(r"^(step |eval step |\S.*took)", line):
        print(line, end="", flush=True)
    return proc.wait()


def eval_metrics(model_dir: str, split: str = "validation") -> dict[int, dict]:
  """{step: metrics JSON} of every evaluation models/evaluation.py wrote."""
  folder = os.path.join(model_dir, "eval")
  found = {}
  for name in os.listdir(folder) if os.path.isdir(folder) else ():
    m = re.match(rf"^metrics_{re.escape(split)}_step(\d+)\.json$", name)
    if m:
      with open(os.path.join(folder, name), encoding="utf-8") as f:
        found[int(m.group(1))] = json.load(f)
  return found


def f1_rows(start: Mapping[str, Any], end: Mapping[str, Any]) -> list[dict]:
  """Per task, structure family and dataset: F1 at the start and at the end."""
  rows = []
  for task, metrics in sorted(end["tasks"].items()):
    for key, value in sorted(metrics.items()):
      m = _TASK_F1.match(key)
      if m and m.group("dataset") != "average":
        before = start.get("tasks", {}).get(task, {}).get(key)
        rows.append({"task": task, "family": m.group("family"),
                     "dataset": m.group("dataset"), "start": before, "end": value})
  rows.append({"task": "average over tasks", "family": "", "dataset": "",
               "start": start.get("average", {}).get("f1"),
               "end": end.get("average", {}).get("f1")})
  return rows


def show_f1_table(console, rows: Sequence[Mapping[str, Any]], start_step: int,
                  end_step: int) -> None:
  from rich.table import Table
  table = Table(title=f"F1 (%) on held-out validation examples: step {start_step} "
                f"-> step {end_step}")
  for column in ("task", "family", "dataset", f"step {start_step}",
                 f"step {end_step}", "change"):
    table.add_column(column, justify="left" if column in (
        "task", "family", "dataset") else "right", no_wrap=column == "task")
  fmt = lambda v: "" if v is None else f"{v:.1f}"
  for r in rows:
    change = (r["end"] - r["start"]) if None not in (r["start"], r["end"]) else None
    style = "bold" if r["task"].startswith("average") else None
    table.add_row(r["task"], r["family"], r["dataset"], fmt(r["start"]),
                  fmt(r["end"]), "" if change is None else f"{change:+.1f}",
                  style=style)
  console.print(table)


def prepare_model_dir(model_dir: str, resume: bool) -> None:
  """A fresh run each time (so step 0 is evaluated) unless --resume."""
  if resume or not os.path.exists(model_dir):
    return
  if os.listdir(model_dir) and not os.path.exists(os.path.join(model_dir,
                                                              "config.gin")):
    raise SystemExit(f"--model_dir {model_dir} is not empty and holds no run "
                     "(config.gin); choose another directory")
  shutil.rmtree(model_dir)


def train_and_report(console, args, gin_args: Sequence[str]) -> int:
  prepare_model_dir(args.model_dir, args.resume)
  command = train_command(args.model_dir, gin_args)
  shown = " ".join(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else f'"{a}"'
                   for a in command[3:])
  console.print(f"\n[bold]Training[/bold]: launch/train.sh {shown}")
  start = time.time()
  code = run_training(command, os.path.join(args.model_dir, "demo_train.log"))
  wall = time.time() - start
  if code:
    console.print(f"[red]training failed (exit {code}); see "
                  f"{os.path.join(args.model_dir, 'demo_train.log')}[/red]")
    return code
  found = eval_metrics(args.model_dir)
  if not found:
    console.print("[red]no evaluation metrics were written[/red]")
    return 1
  first, last = min(found), max(found)
  show_f1_table(console, f1_rows(found[first], found[last]), first, last)
  console.print(f"trained {last} steps in {wall / 60:.1f} min (wall, incl. "
                f"compiling and {len(found)} evaluations); reports, predictions "
                f"and checkpoints in {args.model_dir}")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      epilog="Other --gin.NAME=VALUE flags are passed to training.")
  parser.add_argument("--mixture", default=None,
                      help="mixture to look at (default: ie_sample_default, or "
                           "ie_instructuie_supervised when $IE_DATA_DIR is set); "
                           "training uses gin/local/default.gin's")
  parser.add_argument("--split", default="validation")
  parser.add_argument("--examples_per_task", type=int, default=1)
  parser.add_argument("--vocab", default="sample",
                      choices=("sample", "byt5", "sentencepiece"),
                      help="vocabulary for token lengths (sentencepiece: "
                           "T5's, needs network for the gs:// default)")
  parser.add_argument("--gin", action="append", default=[],
                      help="gin binding for the look, e.g. "
                           "ie_tasks.mixing_rate.temperature=2")
  parser.add_argument("--no_train", action="store_true",
                      help="only show the examples and mixture statistics")
  parser.add_argument("--model_dir", default="/tmp/ie_t5x/demo",
                      help="the demo's run directory (replaced each run)")
  parser.add_argument("--resume", action="store_true",
                      help="continue the run in --model_dir instead of replacing it")
  args, gin_args = parser.parse_known_args(argv)
  unknown = [a for a in gin_args if not a.startswith("--gin.")]
  if unknown:
    parser.error(f"unrecognised arguments: {' '.join(unknown)}")

  start = time.time()
  import ie_tasks  # registers tasks and mixtures
  from ie_tasks import sample
  from launch import gin_utils
  console = _console()
  mixture = choose_mixture(args.mixture)
  if mixture == "ie_sample_default":
    # The mixing rates training uses (equal shares), not the package default.
    for path in gin_utils.DEFAULT_SEARCH_PATHS:
      gin.add_config_file_search_path(path)
    gin.parse_config_file("mixtures/sample_default.gin")
    console.print(f"[bold]Embedded default[/bold]: sample written to "
                  f"{sample.prepare_sample()}")
  else:
    console.print(f"[bold]Data root[/bold]: {ie_tasks.data_dir()}; datasets "
                  f"present: {', '.join(ie_tasks.datasets.present())}")
  gin.parse_config([f"ie_tasks.get_vocabulary.kind = '{args.vocab}'"] + args.gin)
  show_examples(console, mixture, args.split, args.examples_per_task)
  rows = mixture_rows(mixture, args.split)
  show_statistics(console, mixture, args.split, rows)
  console.print(f"vocabulary: {args.vocab} "
                f"({ie_tasks.tasks.VOCABULARY.vocab_size} ids); "
                f"done in {time.time() - start:.1f} s")
  if args.no_train:
    return 0
  return train_and_report(console, args, gin_args)


if __name__ == "__main__":
  sys.exit(main())
