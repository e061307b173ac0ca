r"""Quality on real data: CoNLL-2003 from scratch on a CPU budget, then zero-shot CrossNER.

(a) Trains gin/runs/conll2003_cpu.gin (a small T5 from random init on
    `ie_ner_conll2003_instructuie`, with a SentencePiece vocabulary this
    script first trains on CoNLL-2003's train split and caches) for a wall
    budget (--budget_s, default one hour) or a step count, whichever comes
    first; dev F1 on a fixed subset every EVAL_PERIOD steps gives the learning
    curve. At the budget the trainer gets SIGTERM, saves and exits (the
    preemption path), so the last state is always evaluated.
(b) Scores the final checkpoint on CoNLL-2003's full test split, and zero-shot
    on the five CrossNER domains' test splits (`ie_crossner_zeroshot_eval`),
    both with launch/eval.py and our strict entity F1 (type + entity text).
Writes benchmarks/results/quality.{json,md} (per-dataset P/R/F1, per-type
scores on CoNLL-2003 test, steps, tokens/s, wall time, learning curve,
machine, load, commit) and PNG plots (benchmarks/plots.py): quality_curve.png (loss,
dev F1 vs steps), quality_{conll2003_test,crossner_zeroshot}_f1.png (F1 bars).

  IE_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.quality
  .venv/bin/python -m benchmarks.quality --smoke          # a minute or two
  # an existing run (e.g. launched by hand with launch/train.py):
  .venv/bin/python -m benchmarks.quality --model_dir=/tmp/ie_quality/run \
      --skip_train --train_log=/tmp/ie_quality/run.log
  # zero-shot only, any checkpoint of this model config:
  .venv/bin/python -m benchmarks.quality --skip_train --skip_test \
      --model_dir=/tmp/ie_quality/run

Timed numbers taken while other processes share the CPU are not comparable:
the report records the load average and the CPU others used during training.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Iterable, Mapping, Sequence

from benchmarks import common

TRAIN_GIN = "gin/runs/conll2003_cpu.gin"
EVAL_GIN = "gin/runs/conll2003_cpu_eval.gin"
CONLL_TASK = "ie_ner_conll2003_instructuie"
ZEROSHOT_MIXTURE = "ie_crossner_zeroshot_eval"
DEFAULT_WORK_DIR = "/tmp/ie_quality"
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(common.REPO_ROOT), "shared", "data")

# Tiny everything: proves the whole path (vocabulary, training, SIGTERM-free
# finish, dev curve, test and zero-shot scoring, report) in about a minute.
SMOKE_GIN = (
    "TRAIN_STEPS=4", "EVAL_PERIOD=2", "CHECKPOINT_PERIOD=2", "BATCH_SIZE=4",
    "TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 32}",
    "EVAL_TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 16}",
    "EVAL_EXAMPLES_PER_TASK=8", "WARMUP_STEPS=1",
    "config.T5Config.vocab_size=1024", "config.T5Config.emb_dim=32",
    "config.T5Config.num_heads=2", "config.T5Config.head_dim=16",
    "config.T5Config.mlp_dim=64", "config.T5Config.num_encoder_layers=1",
    "config.T5Config.num_decoder_layers=1")
SMOKE_EVAL_GIN = (
    "TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 16}",
    "config.T5Config.vocab_size=1024", "config.T5Config.emb_dim=32",
    "config.T5Config.num_heads=2", "config.T5Config.head_dim=16",
    "config.T5Config.mlp_dim=64", "config.T5Config.num_encoder_layers=1",
    "config.T5Config.num_decoder_layers=1")

_STEP_LINE = re.compile(
    r"^step (\d+)/(\d+) \| loss ([\d.naninf]+)(?: \| acc ([\d.]+))? \| lr ([\d.e+-]+)"
    r"(?: \| (\d+) ms/step \| ([\d,]+) tok/s)?")
_FIRST_STEP = re.compile(r"^step (\d+): first step \(compile \+ run\) took ([\d.]+)s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m benchmarks.quality",
                              description=__doc__.split("\n")[0])
  p.add_argument("--budget_s", type=float, default=3600.0,
                 help="training wall budget (s): SIGTERM, save, evaluate")
  p.add_argument("--train_steps", type=int, default=None,
                 help="TRAIN_STEPS (default: the gin file's); the LR decays to 0 there")
  p.add_argument("--work_dir", default=DEFAULT_WORK_DIR,
                 help="vocabulary cache and default model dir")
  p.add_argument("--model_dir", default=None, help="default: <work_dir>/run[_smoke]")
  p.add_argument("--data_dir", default=None,
                 help="IE_DATA_DIR (default: $IE_DATA_DIR or ../shared/data)")
  p.add_argument("--vocab_size", type=int, default=8000)
  p.add_argument("--gin", action="append", default=[],
                 help="extra training bindings, NAME=VALUE (repeatable)")
  p.add_argument("--skip_train", action="store_true",
                 help="reuse the checkpoint and log already in --model_dir")
  p.add_argument("--train_log", default=None,
                 help="training console log (default: <model_dir>/train_log.txt)")
  p.add_argument("--skip_test", action="store_true")
  p.add_argument("--skip_zeroshot", action="store_true")
  p.add_argument("--test_examples", type=int, default=None,
                 help="first N test sentences only (default: the whole split)")
  p.add_argument("--zeroshot_examples", type=int, default=None,
                 help="first N test sentences per CrossNER domain (default: all)")
  p.add_argument("--results_dir", default=common.RESULTS_DIR)
  p.add_argument("--name", default=None, help="results file name (default: quality)")
  p.add_argument("--note", action="append", default=[],
                 help="a line for the report's notes (repeatable), e.g. the load")
  p.add_argument("--smoke", action="store_true",
                 help="tiny model, vocabulary and budget: proves the path end to end")
  args = p.parse_args(argv)
  if args.smoke:
    args.vocab_size = min(args.vocab_size, 1000)
    args.test_examples = args.test_examples or 16
    args.zeroshot_examples = args.zeroshot_examples or 4
    args.budget_s = min(args.budget_s, 600.0)
  args.model_dir = args.model_dir or os.path.join(
      args.work_dir, "run_smoke" if args.smoke else "run")
  args.train_log = args.train_log or os.path.join(args.model_dir, "train_log.txt")
  args.name = args.name or ("quality_smoke" if args.smoke else "quality")
  args.data_dir = args.data_dir or os.environ.get("IE_DATA_DIR") or DEFAULT_DATA_DIR
  return args


# --------------------------------------------------------------------------
# Vocabulary


def vocabulary_path(work_dir: str, vocab_size: int) -> str:
  return os.path.join(work_dir, f"conll2003_spm{vocab_size}.model")


def build_vocabulary(work_dir: str, vocab_size: int, env: Mapping[str, str],
                     max_examples: int | None = None) -> str:
  """Trains (once; cached by size) the SentencePiece model on CoNLL-2003 train."""
  path = vocabulary_path(work_dir, vocab_size)
  if os.path.exists(path):
    return path
  cmd = [sys.executable, "-m", "ie_tasks.vocab", "train",
         f"--output={path[:-len('.model')]}", "--datasets=conll2003",
         "--formats=instructuie", f"--vocab_size={vocab_size}"]
  if max_examples:
    cmd.append(f"--max_examples_per_task={max_examples}")
  subprocess.run(cmd, check=True, cwd=common.REPO_ROOT, env=dict(env))
  return path


# --------------------------------------------------------------------------
# Training


def gin_flags(bindings: Iterable[str]) -> list[str]:
  return [f"--gin.{b}" for b in bindings]


def run_training(args: argparse.Namespace, vocab: str, env: Mapping[str, str],
                 extra_gin: Sequence[str]) -> dict[str, Any]:
  """Runs launch/train.py under the wall budget; returns wall time and load."""
  os.makedirs(args.model_dir, exist_ok=True)
  bindings = [f"MODEL_DIR='{args.model_dir}'",
              f"ie_tasks.get_vocabulary.path='{vocab}'", *extra_gin]
  if args.train_steps:
    bindings.append(f"TRAIN_STEPS={args.train_steps}")
  cmd = [sys.executable, "-m", "launch.train", f"--gin_file={TRAIN_GIN}",
         *gin_flags(bindings)]
  load_before = os.getloadavg()
  stopped_by_budget = False
  monitor = common.OtherCpuMonitor()
  with open(args.train_log, "w", encoding="utf-8") as log, monitor:
    proc = subprocess.Popen(cmd, cwd=common.REPO_ROOT, env=dict(env), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
      proc.wait(timeout=args.budget_s)
    except subprocess.TimeoutExpired:
      # The trainer's preemption path: save the current step, then exit.
      stopped_by_budget = True
      proc.send_signal(signal.SIGTERM)
      try:
        proc.wait(timeout=600)
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
  if proc.returncode != 0:
    raise RuntimeError(f"training failed (exit {proc.returncode}); see {args.train_log}")
  return {"command": " ".join(cmd), "wall_s": monitor.timing.wall_s,
          "budget_s": args.budget_s, "stopped_by_budget": stopped_by_budget,
          "other_cores_mean": monitor.timing.other_cores,
          "load_average_before": list(load_before),
          "load_average_after": list(os.getloadavg())}


def parse_train_log(text: str) -> dict[str, Any]:
  """The trainer's console lines -> loss curve, step times, first-step time."""
  curve, first_step_s, total = [], None, None
  for line in text.splitlines():
    if m := _FIRST_STEP.match(line):
      first_step_s = float(m.group(2))
    elif m := _STEP_LINE.match(line):
      total = int(m.group(2))
      point = {"step": int(m.group(1)), "loss": float(m.group(3)),
               "learning_rate": float(m.group(5))}
      if m.group(4):
        point["accuracy"] = float(m.group(4))
      if m.group(6):
        point["step_time_s"] = int(m.group(6)) / 1000
        point["tokens_per_second"] = float(m.group(7).replace(",", ""))
      curve.append(point)
  return {"curve": curve, "first_step_s": first_step_s, "train_steps": total}


def dev_curve(model_dir: str) -> list[dict[str, float]]:
  """Dev-subset entity F1/P/R at each periodic evaluation of the run."""
  points = []
  for path in glob.glob(os.path.join(model_dir, "eval", "metrics_validation_step*.json")):
    with open(path, encoding="utf-8") as f:
      report = json.load(f)
    scores = dataset_scores(report).get("conll2003")
    if scores:
      points.append({"step": report["step"], **scores})
  return sorted(points, key=lambda p: p["step"])


def throughput(log: Mapping[str, Any]) -> dict[str, Any]:
  """Median step time and tokens/s over the logged windows (after compile)."""
  # The console rounds to whole milliseconds: a 0 says nothing about speed.
  timed = [p for p in log["curve"] if p.get("step_time_s")]
  if not timed:
    return {}
  times = sorted(p["step_time_s"] for p in timed)
  tokens = sorted(p["tokens_per_second"] for p in timed)
  return {"median_step_time_s": times[len(times) // 2],
          "median_tokens_per_second": tokens[len(tokens) // 2],
          "steps_per_second": 1.0 / times[len(times) // 2]}


# --------------------------------------------------------------------------
# Evaluation


def run_eval(args: argparse.Namespace, vocab: str, env: Mapping[str, str], *,
             mixture: str, output_dir: str, num_examples: int | None,
             extra_gin: Sequence[str] = ()) -> tuple[dict[str, Any], float, str]:
  """launch/eval.py on the test split; returns (its metrics report, wall s, its path)."""
  bindings = [f"CHECKPOINT_PATH='{args.model_dir}'", f"EVAL_OUTPUT_DIR='{output_dir}'",
              f"MIXTURE_OR_TASK_NAME='{mixture}'", "EVAL_SPLIT='test'",
              f"ie_tasks.get_vocabulary.path='{vocab}'", *extra_gin]
  if num_examples:
    bindings.append(f"EVAL_EXAMPLES_PER_TASK={num_examples}")
  cmd = [sys.executable, "-m", "launch.eval", f"--gin_file={EVAL_GIN}",
         *gin_flags(bindings)]
  os.makedirs(output_dir, exist_ok=True)
  start = time.perf_counter()
  with open(os.path.join(output_dir, "eval_log.txt"), "w", encoding="utf-8") as log:
    subprocess.run(cmd, check=True, cwd=common.REPO_ROOT, env=dict(env), stdout=log,
                   stderr=subprocess.STDOUT)
  wall = time.perf_counter() - start
  reports = glob.glob(os.path.join(output_dir, "eval", "metrics_test_step*.json"))
  latest = max(reports, key=os.path.getmtime)
  with open(latest, encoding="utf-8") as f:
    return json.load(f), wall, latest


def dataset_scores(report: Mapping[str, Any]) -> dict[str, dict[str, float]]:
  """Per dataset: entity precision/recall/F1 (percent) and counts, from a report."""
  scores: dict[str, dict[str, float]] = {}
  for metrics in report["tasks"].values():
    for key, value in metrics.items():
      parts = key.split("/")
      if len(parts) == 3 and parts[0] == "entity" and parts[1] != "average":
        scores.setdefault(parts[1], {})[parts[2]] = value
  return scores


def per_type_scores(predictions_path: str) -> dict[str, dict[str, float]]:
  """Strict (type, entity text) matches per gold type, from a predictions JSONL.

  Matches exactly as the entity metric does (InstructUIE normalisation, a
  set per sentence), so summing the types reproduces the task's F1.
  Predicted types that no gold entity has are pooled as "(other types)".
  """
  from ie_tasks.metrics import normalize_instructuie as norm
  rows = []
  with open(predictions_path, encoding="utf-8") as f:
    for line in f:
      row = json.loads(line)
      rows.append([{(norm(t), norm(x)) for t, x in row[side]["items"]}
                   for side in ("parsed_target", "parsed_prediction")])
  gold_types = {t for gold, _ in rows for t, _ in gold}
  counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for gold, pred in rows:
    for t, _ in gold:
      counts[t]["gold"] += 1
    for item in pred:
      t = item[0] if item[0] in gold_types else "(other types)"
      counts[t]["predicted"] += 1
      counts[t]["tp"] += item in gold
  return {t: _prf(c["tp"], c["predicted"], c["gold"]) for t, c in sorted(counts.items())}


def _prf(tp: int, predicted: int, gold: int) -> dict[str, float]:
  p = 100.0 * tp / predicted if predicted else 0.0
  r = 100.0 * tp / gold if gold else 0.0
  f1 = 2 * p * r / (p + r) if p + r else 0.0
  return {"precision": p, "recall": r, "f1": f1, "true_positives": tp,
          "num_predicted": predicted, "support": gold}


def predictions_file(output_dir: str, task: str, step: int) -> str:
  return os.path.join(output_dir, "eval", "predictions", f"{task}_test_step{step}.jsonl")


# --------------------------------------------------------------------------
# Report


def to_markdown(result: Mapping[str, Any]) -> str:
  lines = ["# Quality: CoNLL-2003 from scratch on a CPU budget, zero-shot CrossNER", ""]
  train = result.get("training", {})
  if train:
    thr = train.get("throughput", {})
    lines += [
        f"Model: {train.get('model', '')}; config `{TRAIN_GIN}`.",
        f"Steps: {train.get('steps')} of {train.get('train_steps')} "
        f"({train.get('epochs', float('nan')):.2f} epochs of the "
        f"{train.get('packing', {}).get('train_examples', '?')} training examples, augmented copies included; "
        f"{train.get('packing', {}).get('examples_per_row', float('nan')):.2f} examples a row, packed "
        f"{train.get('packing', {}).get('packer', 'seqio')}); wall {train.get('wall_s', float('nan')):,.0f} s "
        f"(budget {train.get('budget_s', float('nan')):,.0f} s"
        f"{', stopped by the budget' if train.get('stopped_by_budget') else ''}); "
        f"median {thr.get('median_step_time_s', float('nan')):.2f} s/step, "
        f"{thr.get('median_tokens_per_second', float('nan')):,.0f} tokens/s of packed "
        f"rows ({thr.get('median_real_tokens_per_second', float('nan')):,.0f} "
        "without padding).",
        f"Machine load during training: {_load_note(train)}.", ""]
  test = result.get("conll2003_test")
  if test:
    lines += ["## CoNLL-2003 test (strict entity F1: type + entity text)", "",
              common.markdown_table(
                  ["dataset", "examples", "precision", "recall", "F1"],
                  [[d, int(s.get("num_examples", 0)), s["precision"], s["recall"],
                    s["f1"]] for d, s in test["datasets"].items()]), ""]
    if test.get("per_type"):
      lines += [common.markdown_table(
          ["type", "support", "predicted", "precision", "recall", "F1"],
          [[t, int(s["support"]), int(s["num_predicted"]), s["precision"],
            s["recall"], s["f1"]] for t, s in test["per_type"].items()]), ""]
  zs = result.get("crossner_zeroshot")
  if zs:
    rows = [[d, int(s.get("num_examples", 0)), s["precision"], s["recall"], s["f1"]]
            for d, s in sorted(zs["datasets"].items())]
    rows.append(["average", "", "", "", zs["average_f1"]])
    lines += ["## Zero-shot CrossNER test (the CoNLL-2003 checkpoint, unseen types)", "",
              common.markdown_table(["dataset", "examples", "precision", "recall", "F1"],
                                    rows), ""]
  curve = result.get("learning_curve", {})
  if curve.get("dev"):
    lines += ["## Learning curve (dev subset)", "",
              common.markdown_table(
                  ["step", "train loss", "dev F1", "dev P", "dev R"],
                  [[p["step"], p.get("train_loss", ""), p["f1"], p["precision"],
                    p["recall"]] for p in curve["dev"]]), ""]
  for note in result.get("notes", []):
    lines.append(f"- {note}")
  lines += ["", common.machine_markdown(result["machine"])]
  return "\n".join(lines) + "\n"


def _load_note(train: Mapping[str, Any]) -> str:
  parts = []
  if train.get("other_cores_mean") is not None:
    parts.append(f"other processes kept {train['other_cores_mean']:.2f} of "
                 f"{os.cpu_count()} cores busy on average")
  if train.get("load_average_mean") is not None:
    parts.append(f"1-min load average {train['load_average_mean']:.1f} on average")
  if train.get("load_average_before"):
    parts.append(f"load average {train['load_average_before'][0]:.1f} at the start, "
                 f"{train.get('load_average_after', [float('nan')])[0]:.1f} at the end")
  return "; ".join(parts) or "not recorded"


def _loss_near(curve: Sequence[Mapping[str, Any]], step: int) -> float | None:
  before = [p for p in curve if p["step"] <= step]
  return before[-1]["loss"] if before else None


def plot(model_dir: str, metrics_jsons: Mapping[str, str], results_dir: str,
         name: str) -> dict[str, str]:
  """PNG learning curves (loss, dev F1) and per-dataset F1 bars (benchmarks/plots.py)."""
  from benchmarks import plots
  made = {}
  jobs = [("learning_curve", f"{name}_curve.png",
           lambda p: plots.learning_curves(model_dir, p, "CoNLL-2003 from scratch, CPU budget"))]
  for label, metrics_json in metrics_jsons.items():
    jobs.append((label, f"{name}_{label}_f1.png",
                 lambda p, m=metrics_json: plots.dataset_f1_bars(m, p)))
  for label, file_name, fn in jobs:
    path = os.path.join(results_dir, file_name)
    try:
      fn(path)
    except Exception as e:  # a missing plot must not lose the numbers
      print(f"plot {label} failed: {e!r}", file=sys.stderr)
      continue
    made[label] = os.path.relpath(path, common.REPO_ROOT)
  return made


# --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  env = {**os.environ, "IE_DATA_DIR": args.data_dir}
  env.pop("XLA_FLAGS", None)  # one CPU device: the tests' 8 fake ones only cost time
  os.makedirs(args.work_dir, exist_ok=True)
  vocab = build_vocabulary(args.work_dir, args.vocab_size, env,
                           max_examples=2000 if args.smoke else None)
  train_gin = [*(SMOKE_GIN if args.smoke else ()), *args.gin]
  eval_gin = SMOKE_EVAL_GIN if args.smoke else ()
  result: dict[str, Any] = {"benchmark": "quality", "smoke": args.smoke,
                            "model_dir": args.model_dir, "vocabulary": vocab,
                            "notes": list(args.note)}

  run_info_path = os.path.join(args.model_dir, "run_info.json")
  if not args.skip_train:
    run_info = run_training(args, vocab, env, train_gin)
    with open(run_info_path, "w", encoding="utf-8") as f:
      json.dump(run_info, f, indent=2)
  result["machine"] = common.machine_info()
  if os.path.exists(run_info_path):
    with open(run_info_path, encoding="utf-8") as f:
      run_info = json.load(f)
  else:
    run_info = {}
  log = {"curve": [], "first_step_s": None, "train_steps": None}
  if os.path.exists(args.train_log):
    with open(args.train_log, encoding="utf-8") as f:
      log = parse_train_log(f.read())
  dev = dev_curve(args.model_dir)
  for p in dev:
    p["train_loss"] = _loss_near(log["curve"], p["step"])
  steps = _checkpoint_step(args.model_dir)
  cfg = operative_config(args.model_dir)
  training = {**run_info, "steps": steps, "train_steps": log["train_steps"],
              "first_step_s": log["first_step_s"], "throughput": throughput(log),
              "model": _model_summary(cfg), "parameters": count_parameters(cfg),
              "batch_size": int(cfg.get("BATCH_SIZE", 0)) or None,
              "task_feature_lengths": cfg.get("TASK_FEATURE_LENGTHS")}
  if training["task_feature_lengths"] and training["batch_size"]:
    import ast
    packing = packing_stats(vocab, ast.literal_eval(training["task_feature_lengths"]),
                            args.data_dir, data_bindings(cfg),
                            cfg.get("DatasetConfig.packing", "seqio"))
    training["packing"] = packing
    if steps:
      training["epochs"] = steps * training["batch_size"] * packing[
          "examples_per_row"] / packing["train_examples"]
    if training["throughput"]:
      training["throughput"]["median_real_tokens_per_second"] = (
          training["throughput"]["median_tokens_per_second"] *
          packing["real_token_fraction"])
  result["training"] = training
  result["learning_curve"] = {"train": log["curve"], "dev": dev}

  metrics_jsons: dict[str, str] = {}
  if not args.skip_test:
    out = os.path.join(args.model_dir, "test_eval")
    report, wall, metrics_jsons["conll2003_test"] = run_eval(
        args, vocab, env, mixture=CONLL_TASK, output_dir=out,
        num_examples=args.test_examples, extra_gin=eval_gin)
    preds = predictions_file(out, CONLL_TASK, report["step"])
    result["conll2003_test"] = {
        "step": report["step"], "wall_s": wall, "datasets": dataset_scores(report),
        "per_type": per_type_scores(preds) if os.path.exists(preds) else {},
        "num_examples_limit": args.test_examples}
  if not args.skip_zeroshot:
    out = os.path.join(args.model_dir, "zeroshot_eval")
    report, wall, metrics_jsons["crossner_zeroshot"] = run_eval(
        args, vocab, env, mixture=ZEROSHOT_MIXTURE, output_dir=out,
        num_examples=args.zeroshot_examples, extra_gin=eval_gin)
    datasets = dataset_scores(report)
    result["crossner_zeroshot"] = {
        "step": report["step"], "wall_s": wall, "datasets": datasets,
        "average_f1": sum(d["f1"] for d in datasets.values()) / max(len(datasets), 1),
        "num_examples_limit": args.zeroshot_examples}
  result["plots"] = plot(args.model_dir, metrics_jsons, args.results_dir, args.name)
  json_path, md_path = common.write_results(args.name, result, to_markdown(result),
                                            args.results_dir)
  print(f"wrote {json_path} and {md_path}")
  return result


def _checkpoint_step(model_dir: str) -> int | None:
  """The newest saved step of one of our runs (<model_dir>/checkpoints/<step>)."""
  folder = os.path.join(model_dir, "checkpoints")
  steps = [int(d) for d in os.listdir(folder) if d.isdigit()] if os.path.isdir(
      folder) else []
  return max(steps) if steps else None


def operative_config(model_dir: str) -> dict[str, str]:
  """Macros, T5Config fields (macros resolved) and the data-side options
  (mention replacement, templates) of a run's config.gin."""
  path = os.path.join(model_dir, "config.gin")
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    text = f.read()
  macros = dict(re.findall(r"^([A-Z][A-Z0-9_]*) = (.+)$", text, re.M))
  fields = dict(re.findall(r"^config\.T5Config\.(\w+) = (.+)$", text, re.M))
  fields = {k: macros.get(v[1:], v) if v.startswith("%") else v
            for k, v in fields.items()}
  data = re.findall(r"^(?:[\w.]+\.)?((?:mention_replacement|template)_options)\.(\w+) = (.+)$",
                    text, re.M)
  # Runs written before DatasetConfig.packing existed packed with seqio's packer.
  packing = re.search(r"^train/utils\.DatasetConfig\.packing = '(\w+)'$", text, re.M)
  return {**macros, **{f"T5Config.{k}": v for k, v in fields.items()},
          **{f"{fn}.{k}": v for fn, k, v in data},
          "DatasetConfig.packing": packing.group(1) if packing else "seqio"}


def count_parameters(cfg: Mapping[str, str]) -> int | None:
  """Parameters of the T5 layout (relpos per stack; untied head unless
  logits_via_embedding; gated MLP when an activation is 'linear')."""
  try:
    d, h, k, m, v = (int(cfg[f"T5Config.{n}"]) for n in (
        "emb_dim", "num_heads", "head_dim", "mlp_dim", "vocab_size"))
    enc, dec = (int(cfg[f"T5Config.num_{n}_layers"]) for n in ("encoder", "decoder"))
  except (KeyError, ValueError):
    return None
  gated = "linear" in cfg.get("T5Config.mlp_activations", "")
  mlp = (3 if gated else 2) * d * m
  attention = 4 * d * h * k
  embeddings = (1 if cfg.get("T5Config.logits_via_embedding") == "True" else 2) * v * d
  return (embeddings + enc * (attention + mlp + 2 * d) + dec * (2 * attention + mlp + 3 * d)
          + 2 * d + 2 * 32 * h)


def _model_summary(cfg: Mapping[str, str]) -> str:
  keys = ("emb_dim", "num_heads", "head_dim", "mlp_dim", "num_encoder_layers",
          "num_decoder_layers", "vocab_size", "dropout_rate", "logits_via_embedding")
  text = ", ".join(f"{k} {cfg['T5Config.' + k]}" for k in keys if "T5Config." + k in cfg)
  params = count_parameters(cfg)
  return text + (f" ({params / 1e6:.1f}M parameters)" if params else "")


def data_bindings(cfg: Mapping[str, str]) -> list[str]:
  """The run's settings that shape its examples (mention replacement, templates;
  from `operative_config`) as bindings."""
  prefixes = ("mention_replacement_options.", "template_options.")
  return [f"ie_tasks.{k} = {v}" for k, v in cfg.items() if k.startswith(prefixes)]


def packing_stats(vocab: str, lengths: Mapping[str, int], data_dir: str,
                  bindings: Sequence[str] = (), packing: str = "first_fit"
                  ) -> dict[str, float]:
  """One epoch of the packed training data: examples per row and real-token share.

  Runs the same seqio pipeline as training (same vocabulary, all sentences,
  the run's augmented copies and templates via `bindings`, the run's packer
  `packing`), so steps convert to epochs and padded tokens/s to real tokens/s.
  """
  os.environ.setdefault("IE_DATA_DIR", data_dir)
  import gin
  import numpy as np
  import seqio
  import ie_tasks  # registers the tasks
  from models import utils
  del ie_tasks
  with gin.unlock_config():
    gin.parse_config([f"ie_tasks.get_vocabulary.path = '{vocab}'",
                      "ie_tasks.get_vocabulary.extra_ids = 0",
                      "ie_tasks.max_instances.per_dataset = {'conll2003': None}",
                      *bindings])
  ds = seqio.get_dataset(CONLL_TASK, task_feature_lengths=dict(lengths),
                         feature_converter=utils.feature_converter(True, packing),
                         dataset_split="train", shuffle=False, num_epochs=1)
  rows = examples = real = 0
  for row in ds.as_numpy_iterator():
    rows += 1
    examples += int(row["encoder_segment_ids"].max())
    real += int((row["encoder_input_tokens"] != 0).sum() +
                (row["decoder_target_tokens"] != 0).sum())
  per_row = lengths["inputs"] + lengths["targets"]
  return {"packer": packing, "train_examples": examples, "packed_rows": rows,
          "examples_per_row": examples / rows, "real_token_fraction": real / (rows * per_row)}


if __name__ == "__main__":
  main()
