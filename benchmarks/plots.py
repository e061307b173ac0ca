r"""Pictures of a run: learning curves, per-dataset F1 bars, throughput vs batch size (PNG).

- `learning_curves(model_dir, path)`: training loss against steps from the
  TensorBoard event files the trainer writes (MODEL_DIR/train, any scalar tag
  ending in `loss`), and F1 against steps from the event files' `eval/...f1`
  scalars and the evaluation JSONs in MODEL_DIR/eval/metrics_<split>_step<N>.json.
- `dataset_f1_bars(metrics_json, path)`: one bar per dataset (and structure
  family) from an evaluation's metrics_*.json or report_*.json.
- `throughput_vs_batch(train_throughput_json, path)`: tokens/s of our train step
  (and the peer's, when measured) against batch size, from train_throughput.json.

Run:
  .venv/bin/python benchmarks/plots.py curves  --model_dir=runs/conll --out=curves.png
  .venv/bin/python benchmarks/plots.py f1_bars --metrics=runs/conll/eval/metrics_test_step2000.json --out=f1.png
  .venv/bin/python benchmarks/plots.py throughput --results=benchmarks/results/train_throughput.json \
      --out=benchmarks/results/train_throughput_vs_batch.png
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

_METRICS_FILE = re.compile(r"metrics_(?P<split>.+)_step(?P<step>\d+)\.json$")


# --------------------------------------------------------------------------
# Reading a run


def read_event_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
  """{tag: [(step, value), ...]} from every TensorBoard event file under `logdir`.

  Reads both TF1 `simple_value` and TF2 tensor summaries (what clu's writer
  stores); steps are sorted and a repeated step keeps its last value.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  series: dict[str, dict[int, float]] = {}
  files = sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True))
  for path in files:
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
          number = float(value.simple_value)
        elif kind == "tensor":
          array = tf.make_ndarray(value.tensor)
          if array.size != 1 or array.dtype.kind not in "fiu":
            continue
          number = float(array.reshape(()))
        else:
          continue
        series.setdefault(value.tag, {})[int(event.step)] = number
  return {tag: sorted(points.items()) for tag, points in series.items()}


def read_eval_f1(eval_dir: str, split: str | None = None) -> dict[str, list[tuple[int, float]]]:
  """{split: [(step, average F1), ...]} from metrics_<split>_step<N>.json files."""
  out: dict[str, list[tuple[int, float]]] = {}
  for path in glob.glob(os.path.join(eval_dir, "metrics_*_step*.json")):
    match = _METRICS_FILE.search(os.path.basename(path))
    if not match or (split and match["split"] != split):
      continue
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
    f1 = data.get("average", {}).get("f1")
    if f1 is not None:
      out.setdefault(match["split"], []).append((int(match["step"]), float(f1)))
  return {s: sorted(points) for s, points in out.items()}


# --------------------------------------------------------------------------
# Figures


def _save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, format="png", dpi=120)
  plt.close(fig)
  return path


def learning_curves(model_dir: str, path: str, title: str | None = None) -> str:
  """Loss (left) and F1 (right) against training steps for one MODEL_DIR."""
  scalars = read_event_scalars(model_dir)
  eval_f1 = read_eval_f1(os.path.join(model_dir, "eval"))
  loss_tags = sorted(t for t in scalars if t.endswith("loss") and "z_loss" not in t)
  f1_tags = sorted(t for t in scalars if t.startswith("eval/") and t.endswith("f1"))
  if not loss_tags and not eval_f1 and not f1_tags:
    raise ValueError(f"{model_dir}: no loss scalars in TensorBoard event files and no "
                     "eval/metrics_*_step*.json")
  fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(11, 4))
  for tag in loss_tags:
    steps, values = zip(*scalars[tag])
    loss_ax.plot(steps, values, label=tag, marker="." if len(steps) < 30 else None)
  loss_ax.set_xlabel("step")
  loss_ax.set_ylabel("loss")
  loss_ax.set_title("Loss")
  loss_ax.grid(alpha=0.3)
  if loss_tags:
    loss_ax.legend(fontsize=8)
  # Prefer the JSON reports (one per eval); fall back to the event-file scalars.
  curves = {f"{s} average F1": pts for s, pts in eval_f1.items()} or {
      t: scalars[t] for t in f1_tags[:6]}
  for label, points in curves.items():
    steps, values = zip(*points)
    f1_ax.plot(steps, values, marker="o", label=label)
  f1_ax.set_xlabel("step")
  f1_ax.set_ylabel("F1 (%)")
  f1_ax.set_ylim(0, 100)
  f1_ax.set_title("F1")
  f1_ax.grid(alpha=0.3)
  if curves:
    f1_ax.legend(fontsize=8)
  else:
    f1_ax.text(0.5, 0.5, "no evaluations yet", ha="center", va="center",
               transform=f1_ax.transAxes)
  fig.suptitle(title or f"Learning curves: {os.path.basename(os.path.normpath(model_dir))}")
  return _save(fig, path)


def _dataset_f1(data: Mapping[str, Any]) -> dict[str, float]:
  """{label: F1} from a metrics_*.json (per_dataset) or report_*.json (scores)."""
  if "per_dataset" in data:
    bars = {}
    families = {f for fams in data["per_dataset"].values() for f in fams}
    for dataset, fams in sorted(data["per_dataset"].items()):
      for family, f1 in sorted(fams.items()):
        bars[dataset if len(families) == 1 else f"{dataset} ({family})"] = float(f1)
    if "f1" in data.get("average", {}):
      bars["average"] = float(data["average"]["f1"])
    return bars
  if "scores" in data:
    convention = sorted(data["scores"])[0]
    bars = {}
    for family, table in sorted(data["scores"][convention].items()):
      for dataset, stats in sorted(table["datasets"].items()):
        bars[f"{dataset} ({family})"] = float(stats["f1"])
      bars[f"average ({family})"] = float(table["average"]["f1"])
    return bars
  raise ValueError("expected an evaluation metrics_*.json (with 'per_dataset') or "
                   "report_*.json (with 'scores')")


def dataset_f1_bars(metrics_json: str, path: str, title: str | None = None) -> str:
  with open(metrics_json, encoding="utf-8") as f:
    data = json.load(f)
  try:
    bars = _dataset_f1(data)
  except ValueError as e:
    raise ValueError(f"{metrics_json}: {e}") from None
  if not bars:
    raise ValueError(f"{metrics_json}: no per-dataset F1 values")
  fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(bars) + 2), 4))
  colors = ["tab:gray" if k.startswith("average") else "tab:blue" for k in bars]
  drawn = ax.bar(range(len(bars)), list(bars.values()), color=colors)
  ax.bar_label(drawn, fmt="%.1f", fontsize=8)
  ax.set_xticks(range(len(bars)), list(bars), rotation=25, ha="right", fontsize=8)
  ax.set_ylabel("F1 (%)")
  ax.set_ylim(0, 100)
  ax.grid(axis="y", alpha=0.3)
  split, step = data.get("split"), data.get("step")
  ax.set_title(title or f"F1 per dataset ({split}, step {step})")
  return _save(fig, path)


def throughput_vs_batch(results_json: str, path: str, title: str | None = None) -> str:
  with open(results_json, encoding="utf-8") as f:
    data = json.load(f)
  sweep = data.get("batch_sweep") or []
  if not sweep:
    raise ValueError(f"{results_json}: no 'batch_sweep' rows (run train_throughput.py "
                     "with --batch_sweep)")
  sweep = sorted(sweep, key=lambda row: row["batch_size"])
  batches = [row["batch_size"] for row in sweep]
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(batches, [row["ours"]["tokens_per_s"] for row in sweep], marker="o", label="ours (JAX)")
  hf = [(row["batch_size"], row["hf"]["tokens_per_s"]) for row in sweep if "hf" in row]
  if hf:
    ax.plot(*zip(*hf), marker="s", label="Hugging Face (PyTorch)")
  ax.set_xscale("log", base=2)
  ax.set_xticks(batches, [str(b) for b in batches])
  ax.set_xlabel("batch size")
  ax.set_ylabel("training tokens / s")
  ax.set_ylim(bottom=0)
  ax.grid(alpha=0.3)
  ax.legend()
  first = sweep[0]
  ax.set_title(title or f"Train throughput, T5 v1.1 {first['size']}, {first['optimizer']}, "
               f"lengths {first['input_length']}/{first['target_length']}", fontsize=10)
  return _save(fig, path)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  sub = parser.add_subparsers(dest="command", required=True)
  curves = sub.add_parser("curves", help="loss and F1 vs steps of a MODEL_DIR")
  curves.add_argument("--model_dir", required=True)
  bars = sub.add_parser("f1_bars", help="per-dataset F1 from an evaluation JSON")
  bars.add_argument("--metrics", required=True)
  throughput = sub.add_parser("throughput", help="tokens/s vs batch size")
  throughput.add_argument("--results", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "results", "train_throughput.json"))
  for p in (curves, bars, throughput):
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--title", default=None)
  args = parser.parse_args(argv)
  if args.command == "curves":
    out = learning_curves(args.model_dir, args.out, args.title)
  elif args.command == "f1_bars":
    out = dataset_f1_bars(args.metrics, args.out, args.title)
  else:
    out = throughput_vs_batch(args.results, args.out, args.title)
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
