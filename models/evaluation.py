"""Sharded decoding on a mixture's eval split, scored by each task's own metrics.

For every task of the mixture: read its eval split (in order, no packing),
decode in global batches with `model.predict_batch` (inputs sharded over the
mesh's `data` axis), detokenize with the task's vocabulary, run the task's
`postprocess_fn` on predictions and targets and its `metric_fns` (the IE
metrics, per dataset and averaged). Writes into `<output_dir>/eval/`:
  metrics_<split>_step<N>.json   every task's metrics + averages
  metrics_<split>_step<N>.md     the same as markdown tables
  report_<split>_step<N>.json    per dataset: precision, recall, F1, support,
                                 predicted, unparsable outputs, in each
                                 scoring convention the tasks report
                                 ("instructuie", "universalner"), and the
                                 unweighted average over the datasets
  report_<split>_step<N>.md      the same as markdown tables
  report_<split>_step<N>.png     bar chart of per-dataset F1 and the average
  predictions/<task>_<split>_step<N>.jsonl  input, target, prediction and
                                            the parsed structures per example
F1 values are in percent (0-100), as the IE metrics report them. The
headline `average/f1` is the mean over tasks of each task's F1 averaged
over its datasets and structure families (entity, relation, event ...).
"""
from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Mapping, Sequence

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import seqio
import tensorflow as tf

from models import utils

# "entity/average/f1" (not "uniner/entity/average/f1"): a task's own F1 per family.
_FAMILY_AVERAGE_F1 = re.compile(r"^[^/]+/average/f1$")
_FAMILY_DATASET_F1 = re.compile(r"^([^/]+)/([^/]+)/f1$")


def _to_text(value: Any) -> str:
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O"):
    return _to_text(value.item())
  return str(value)


def _jsonable(value: Any) -> Any:
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  if isinstance(value, np.ndarray):
    return _jsonable(value.tolist())
  if isinstance(value, (np.integer, np.floating, np.bool_)):
    return value.item()
  if isinstance(value, Mapping):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple, set)):
    return [_jsonable(v) for v in value]
  return value


class Evaluator:
  """Decodes and scores a mixture's tasks; gin: `evaluation.Evaluator`.

  Args:
    mixture_or_task_name: task or mixture whose subtasks are evaluated.
    task_feature_lengths: {"inputs": Li, "targets": Lt}; Lt is the decode length.
    split: eval split ("validation" or "test"); tasks without it are skipped.
    batch_size: GLOBAL decode batch (a multiple of the data shards).
    num_examples: per task, the first this many (None: all).
    module: import to register the tasks (MIXTURE_OR_TASK_MODULE).
    use_cached: read seqio's cache.
    decode_kwargs: passed to predict_batch (e.g. {"method": "beam"}).
    write_predictions: write the JSONL files.
  """

  def __init__(self, mixture_or_task_name: str,
               task_feature_lengths: Mapping[str, int],
               split: str = "validation", batch_size: int = 32,
               num_examples: int | None = None,
               module: str | Sequence[str] | None = None,
               use_cached: bool = False,
               decode_kwargs: Mapping[str, Any] | None = None,
               write_predictions: bool = True):
    self.mixture_or_task_name = mixture_or_task_name
    self.task_feature_lengths = dict(task_feature_lengths)
    self.split = split
    self.batch_size = batch_size
    self.num_examples = num_examples
    self.module = module
    self.use_cached = use_cached
    self.decode_kwargs = dict(decode_kwargs or {})
    self.write_predictions = write_predictions
    self._cache: dict[str, tuple[list[dict], dict[str, np.ndarray]]] | None = None

  # --- data --------------------------------------------------------------------
  def tasks(self) -> list[seqio.Task]:
    utils.import_modules(self.module)
    tasks = seqio.get_subtasks(get_mixture_or_task(self.mixture_or_task_name,
                                                   self.module))
    kept = [t for t in tasks if self.split in t.splits]
    if not kept:
      raise ValueError(f"no task of {self.mixture_or_task_name!r} has a "
                       f"{self.split!r} split")
    return kept

  def _examples(self) -> dict[str, tuple[list[dict], dict[str, np.ndarray]]]:
    """Per task: raw examples (for postprocessing) and stacked model features."""
    if self._cache is not None:
      return self._cache
    converter = seqio.EncDecFeatureConverter(pack=False)
    self._cache = {}
    for task in self.tasks():
      ds = task.get_dataset(self.task_feature_lengths, split=self.split,
                            shuffle=False, num_epochs=1, use_cached=self.use_cached,
                            seed=0)
      if self.num_examples:
        ds = ds.take(self.num_examples)
      examples = list(ds.as_numpy_iterator())
      if not examples:
        continue
      features = list(converter(ds, self.task_feature_lengths).as_numpy_iterator())
      stacked = {k: np.stack([f[k] for f in features])
                 for k in ("encoder_input_tokens", "decoder_input_tokens")}
      self._cache[task.name] = (examples, stacked)
    return self._cache

  # --- decoding ---------------------------------------------------------------------
  def predict_tokens(self, model: Any, params: Any, partitioner: Any,
                     features: Mapping[str, np.ndarray]) -> np.ndarray:
    """[N, Lt] decoded ids; every process passes the same full features."""
    n = len(features["encoder_input_tokens"])
    outputs = []
    sharding = partitioner.batch_sharding(2)
    # The batch must split evenly over the data axis: round it up (padding).
    ways = batch_ways(partitioner)
    batch_size = -(-self.batch_size // ways) * ways
    for start in range(0, n, batch_size):
      chunk = {k: v[start:start + batch_size] for k, v in features.items()}
      valid = len(chunk["encoder_input_tokens"])
      padded = {k: np.pad(v, ((0, batch_size - valid), (0, 0)))
                for k, v in chunk.items()}
      batch = {k: jax.make_array_from_callback(v.shape, sharding, lambda i, v=v: v[i])
               for k, v in padded.items()}
      with partitioner.activation_context():
        tokens = model.predict_batch(params, batch, **self.decode_kwargs)
      if not tokens.is_fully_addressable:
        tokens = multihost_utils.process_allgather(tokens, tiled=True)
      outputs.append(np.asarray(tokens)[:valid])
    return np.concatenate(outputs)

  # --- scoring ------------------------------------------------------------------------
  def evaluate(self, model: Any, params: Any, partitioner: Any, step: int,
               output_dir: str | None = None, score: bool = True) -> dict[str, float]:
    """Decodes every task, scores it, writes the reports; returns flat metrics.

    With `score=False` (inference) only the predictions are written.
    """
    start = time.perf_counter()
    per_task: dict[str, dict[str, float]] = {}
    for task_name, (examples, features) in self._examples().items():
      task = seqio.get_mixture_or_task(task_name)
      tokens = self.predict_tokens(model, params, partitioner, features)
      vocab = task.output_features["targets"].vocabulary
      texts = [vocab.decode([int(t) for t in row]) for row in tokens]
      targets, predictions = [], []
      for ex, text in zip(examples, texts):
        target_text = _to_text(ex.get("targets_pretokenized", b""))
        targets.append(task.postprocess_fn(target_text, example=ex, is_target=True)
                       if task.postprocess_fn else target_text)
        predictions.append(task.postprocess_fn(text, example=ex, is_target=False)
                           if task.postprocess_fn else text)
      metrics: dict[str, float] = {}
      for fn in task.predict_metric_fns if score else ():
        metrics.update({k: float(v) for k, v in fn(targets, predictions).items()})
      metrics["num_examples"] = float(len(examples))
      per_task[task_name] = metrics
      if output_dir and self.write_predictions and jax.process_index() == 0:
        self._write_predictions(output_dir, task_name, step, examples, texts,
                                targets, predictions)
    summary = summarize(per_task)
    flat = {f"{t}/{k}": v for t, m in per_task.items() for k, v in m.items()}
    flat.update({f"average/{k}": v for k, v in summary["average"].items()})
    logging.info("Eval at step %d took %.1fs: average F1 %.4f", step,
                 time.perf_counter() - start, summary["average"].get("f1", float("nan")))
    if output_dir and score and jax.process_index() == 0:
      write_reports(output_dir, self.split, step, per_task, summary)
      write_dataset_report(output_dir, self.split, step, per_task)
    return flat

  def _write_predictions(self, output_dir, task_name, step, examples, texts,
                         targets, predictions) -> None:
    folder = os.path.join(output_dir, "eval", "predictions")
    tf.io.gfile.makedirs(folder)
    path = os.path.join(folder, f"{task_name}_{self.split}_step{step}.jsonl")
    with tf.io.gfile.GFile(path, "w") as f:
      for ex, text, target, pred in zip(examples, texts, targets, predictions):
        f.write(json.dumps(_jsonable({
            "id": ex.get("id", b""),
            "input": ex.get("inputs_pretokenized", b""),
            "target": ex.get("targets_pretokenized", b""),
            "prediction": text,
            "parsed_target": target,
            "parsed_prediction": pred}), ensure_ascii=False) + "\n")


def get_mixture_or_task(name: str, module: Any = None) -> Any:
  """seqio's lookup, with an error that lists what is registered."""
  try:
    return seqio.get_mixture_or_task(name)
  except ValueError as e:
    import difflib
    known = sorted(set(seqio.MixtureRegistry.names()) |
                   set(seqio.TaskRegistry.names()))
    close = difflib.get_close_matches(str(name), known, n=5, cutoff=0.5)
    mixtures = [n for n in sorted(seqio.MixtureRegistry.names())
                if n.startswith("ie_")]
    raise ValueError(
        f"mixture or task {name!r} is not registered (modules imported: "
        f"{module!r}, MIXTURE_OR_TASK_MODULE). Close names: {close}. "
        f"Registered IE mixtures: {mixtures}. The zero-shot sets register "
        "with `import ie_tasks.zeroshot` (ie_zeroshot_ner7_instructuie, "
        "ie_zeroshot_ner7_conversation, ...); a distilled dataset with "
        "`@ie_tasks.register_distilled_dataset()`.") from e


def batch_ways(partitioner: Any) -> int:
  """Into how many pieces the mesh splits the batch dimension."""
  spec = partitioner.batch_spec(2)
  axes = spec[0] if len(spec) else None
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else axes
  return int(np.prod([partitioner.mesh.shape[a] for a in axes]))


def summarize(per_task: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
  """Task F1s, per-dataset F1 by family, and the averages over tasks."""
  task_f1 = {}
  datasets: dict[str, dict[str, list[float]]] = {}
  for task, metrics in per_task.items():
    family_f1 = [v for k, v in metrics.items() if _FAMILY_AVERAGE_F1.match(k)]
    if family_f1:
      task_f1[task] = float(np.mean(family_f1))
    for key, value in metrics.items():
      m = _FAMILY_DATASET_F1.match(key)
      if m and m.group(2) != "average":
        datasets.setdefault(m.group(2), {}).setdefault(m.group(1), []).append(value)
  per_dataset = {d: {fam: float(np.mean(v)) for fam, v in fams.items()}
                 for d, fams in datasets.items()}
  average = {}
  if task_f1:
    average["f1"] = float(np.mean(list(task_f1.values())))
  shared = set.intersection(*(set(m) for m in per_task.values())) if per_task else set()
  for key in sorted(shared):
    if key != "num_examples":
      average[key] = float(np.mean([per_task[t][key] for t in per_task]))
  return {"task_f1": task_f1, "per_dataset": per_dataset, "average": average}


def markdown_report(split: str, step: int, per_task: Mapping[str, Mapping[str, float]],
                    summary: Mapping[str, Any]) -> str:
  lines = [f"# Evaluation on `{split}` at step {step}", "",
           f"Average F1 over tasks: **{summary['average'].get('f1', float('nan')):.2f}**",
           "", "| task | examples | F1 |", "|---|---:|---:|"]
  for task, metrics in per_task.items():
    f1 = summary["task_f1"].get(task)
    lines.append(f"| {task} | {int(metrics.get('num_examples', 0))} | "
                 f"{'' if f1 is None else f'{f1:.2f}'} |")
  families = sorted({f for fams in summary["per_dataset"].values() for f in fams})
  if families:
    lines += ["", "| dataset | " + " | ".join(f"{f} F1" for f in families) + " |",
              "|---|" + "---:|" * len(families)]
    for dataset, fams in sorted(summary["per_dataset"].items()):
      cells = [f"{fams[f]:.2f}" if f in fams else "" for f in families]
      lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_reports(output_dir: str, split: str, step: int,
                  per_task: Mapping[str, Mapping[str, float]],
                  summary: Mapping[str, Any]) -> tuple[str, str]:
  folder = os.path.join(output_dir, "eval")
  tf.io.gfile.makedirs(folder)
  base = os.path.join(folder, f"metrics_{split}_step{step}")
  with tf.io.gfile.GFile(base + ".json", "w") as f:
    json.dump({"split": split, "step": step, "tasks": per_task, **summary}, f,
              indent=2, sort_keys=True)
  with tf.io.gfile.GFile(base + ".md", "w") as f:
    f.write(markdown_report(split, step, per_task, summary))
  return base + ".json", base + ".md"


def format_console_summary(step: int, flat: Mapping[str, float]) -> str:
  """One block for the console: average F1 and each task's/dataset's F1."""
  lines = [f"eval step {step} | average F1 {flat.get('average/f1', float('nan')):.2f}"]
  for key, value in sorted(flat.items()):
    m = re.match(r"^(.+?)/([^/]+)/([^/]+)/f1$", key)
    if m and not key.startswith("average/") and "uniner/" not in key:
      lines.append(f"  {m.group(1)} {m.group(2)}/{m.group(3)} F1 {value:.2f}")
  return "\n".join(lines)


# --- per-dataset report in each scoring convention ----------------------------------
# The IE metrics name instructuie-convention keys "<family>/<dataset>/<stat>"
# and universalner-convention keys "uniner/<family>/<dataset>/<stat>".
CONVENTION_PREFIXES = {"instructuie": "", "universalner": "uniner/"}
CONVENTION_NOTES = {
    "instructuie": "InstructUIE's scoring: strings lower-cased and whitespace "
                   "collapsed; micro P/R/F1 per dataset over (type, span) sets",
    "universalner": "UniversalNER's scoring (src/eval/evaluate.py): SQuAD "
                    "normalisation (lower case, no punctuation, no articles); "
                    "micro P/R/F1 per dataset over (type, span) sets",
}
REPORT_STATS = ("precision", "recall", "f1", "support", "num_predicted",
                "true_positives", "unparsable", "unknown_type", "num_examples")
_STAT_KEY = re.compile(r"^(uniner/)?([^/]+)/([^/]+)/(\w+)$")


def dataset_scores(per_task: Mapping[str, Mapping[str, float]]
                   ) -> dict[str, dict[str, dict[str, Any]]]:
  """{convention: {family: {"datasets": {name: stats}, "average": stats}}}.

  A dataset scored by several tasks of the mixture (say both prompt
  formats) gets one row per task, named "<dataset> [<task>]". The average is
  the unweighted mean of precision, recall and F1 over the rows (both papers
  average their per-dataset tables so); counts are summed.
  """
  rows: dict[tuple[str, str], dict[tuple[str, str], dict[str, float]]] = {}
  for task, metrics in per_task.items():
    for key, value in metrics.items():
      m = _STAT_KEY.match(key)
      if not m or m.group(3) == "average" or m.group(4) not in REPORT_STATS:
        continue
      convention = "universalner" if m.group(1) else "instructuie"
      rows.setdefault((convention, m.group(2)), {}).setdefault(
          (task, m.group(3)), {})[m.group(4)] = float(value)
  result: dict[str, dict[str, dict[str, Any]]] = {}
  for (convention, family), by_task in sorted(rows.items()):
    by_task = {k: v for k, v in by_task.items()
               if all(s in v for s in ("precision", "recall", "f1"))}
    if not by_task:  # not an IE metric (no P/R/F1 per dataset)
      continue
    names = [d for _, d in by_task]
    datasets = {}
    for (task, dataset), stats in sorted(by_task.items(), key=lambda kv: kv[0][1]):
      label = dataset if names.count(dataset) == 1 else f"{dataset} [{task}]"
      datasets[label] = {"task": task, **stats}
    n = len(datasets)
    average: dict[str, Any] = {
        k: sum(d.get(k, 0.0) for d in datasets.values()) / n
        for k in ("precision", "recall", "f1")}
    for k in REPORT_STATS[3:]:
      average[k] = sum(d.get(k, 0.0) for d in datasets.values())
    average["num_datasets"] = n
    result.setdefault(convention, {})[family] = {"datasets": datasets,
                                                 "average": average}
  return result


def dataset_report_markdown(split: str, step: int,
                            scores: Mapping[str, Mapping[str, Any]]) -> str:
  lines = [f"# Per-dataset scores on `{split}` at step {step}", ""]
  for convention, families in scores.items():
    for family, table in families.items():
      lines += [f"## {family}, {convention} scoring", "",
                f"{CONVENTION_NOTES.get(convention, '')}.", "",
                "| dataset | precision | recall | F1 | support | predicted "
                "| unparsable | examples |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
      for name, d in list(table["datasets"].items()) + [
          (f"**average ({table['average']['num_datasets']} sets)**",
           table["average"])]:
        lines.append(
            f"| {name} | {d['precision']:.2f} | {d['recall']:.2f} | "
            f"{d['f1']:.2f} | {int(d.get('support', 0))} | "
            f"{int(d.get('num_predicted', 0))} | "
            f"{int(d.get('unparsable', 0))} | {int(d.get('num_examples', 0))} |")
      lines.append("")
  return "\n".join(lines)


def plot_dataset_f1(scores: Mapping[str, Mapping[str, Any]], path: str,
                    title: str = "") -> str:
  """Grouped bars: F1 per dataset (and the average), one bar per convention."""
  import matplotlib
  matplotlib.use("Agg")  # files only, never a display
  import matplotlib.pyplot as plt
  families = sorted({f for fams in scores.values() for f in fams})
  fig, axes = plt.subplots(len(families), 1, squeeze=False,
                           figsize=(10, 3.6 * max(len(families), 1)))
  for ax, family in zip(axes[:, 0], families):
    conventions = [c for c in scores if family in scores[c]]
    names = list(dict.fromkeys(n for c in conventions
                               for n in scores[c][family]["datasets"]))
    labels = names + ["average"]
    width = 0.8 / max(len(conventions), 1)
    for i, convention in enumerate(conventions):
      table = scores[convention][family]
      values = [table["datasets"].get(n, {}).get("f1", 0.0) for n in names]
      values.append(table["average"]["f1"])
      xs = np.arange(len(labels)) + (i - (len(conventions) - 1) / 2) * width
      bars = ax.bar(xs, values, width, label=f"{convention} scoring")
      ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=20, ha="right",
                  fontsize=8)
    ax.set_ylabel(f"{family} F1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  with tf.io.gfile.GFile(path, "wb") as f:
    fig.savefig(f, format="png", dpi=120)
  plt.close(fig)
  return path


def write_dataset_report(output_dir: str, split: str, step: int,
                         per_task: Mapping[str, Mapping[str, float]]
                         ) -> tuple[str, str, str] | None:
  """report_<split>_step<N>.{json,md,png} under <output_dir>/eval/."""
  scores = dataset_scores(per_task)
  if not scores:
    return None
  folder = os.path.join(output_dir, "eval")
  tf.io.gfile.makedirs(folder)
  base = os.path.join(folder, f"report_{split}_step{step}")
  with tf.io.gfile.GFile(base + ".json", "w") as f:
    json.dump({"split": split, "step": step,
               "conventions": {c: CONVENTION_NOTES.get(c, "") for c in scores},
               "scores": scores}, f, indent=2, sort_keys=True)
  with tf.io.gfile.GFile(base + ".md", "w") as f:
    f.write(dataset_report_markdown(split, step, scores))
  plot_dataset_f1(scores, base + ".png",
                  title=f"F1 per dataset on {split}, step {step}")
  return base + ".json", base + ".md", base + ".png"
