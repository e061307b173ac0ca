"""IE metrics over postprocessed examples, per dataset and averaged.

Inputs are the dicts `ie_tasks.parsing.postprocess` returns: {"task",
"dataset", "id", "items", "parse_ok", "num_unparsable", "num_unknown"};
targets and predictions are aligned lists (seqio's metric_fn signature).

Metric families (which items are compared):
  entity             (type, span)              NER, ET, CONV (type = the asked type)
  entity_span        (span,)                   ES
  relation_strict    (relation, head, tail)    RE, EPR
  relation_boundary  (head, tail)              RE, EP
  event_trigger      (event type, trigger)     EE, EET
  event_argument     (event type, role, arg)   EE; EEA (role, arg) -- the event
                                               type is fixed by the EEA input
Our outputs hold span texts, not entity types of the relation arguments, so
`relation_strict` is what InstructUIE reports as RE F1 (its evaluator matches
"(head, relation, tail)" strings), which is UIE's "relation boundary" score
(boundaries + relation type, no entity types). Our `relation_boundary` drops
the relation type too: did the model find the right pairs.

Counting, both papers: per example, gold and predicted items are sets
(duplicates count once); TP, gold and predicted counts are summed over the
examples of a dataset (micro), giving P, R, F1 per dataset (in percent, 0
when undefined); "average" is the unweighted mean over datasets, as both
papers average their per-dataset tables. The conventions differ only in how
strings are normalised before matching:
  instructuie   lower-cased, runs of whitespace collapsed (InstructUIE's
                evaluator removes redundant spaces; we add lower-casing as the
                issue asks)
  universalner  SQuAD normalisation: lower-cased, punctuation and the articles
                a/an/the removed, whitespace collapsed (UniversalNER's
                evaluate.py); a (passage, type) example is one set.
"unparsable" counts predictions with parse_ok False; "unknown_type" counts
predicted items whose type was not an option (kept, they are false positives).
"""
from __future__ import annotations

import re
import string
from typing import Any, Callable, Iterable, Mapping, Sequence

FAMILY_TASKS: dict[str, tuple[str, ...]] = {
    "entity": ("NER", "ET", "CONV"),
    "entity_span": ("ES",),
    "relation_strict": ("RE", "EPR"),
    "relation_boundary": ("RE", "EP"),
    "event_trigger": ("EE", "EET"),
    "event_argument": ("EE", "EEA"),
}
CONVENTIONS = ("instructuie", "universalner")

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_instructuie(text: str) -> str:
  return " ".join(str(text).lower().split())


def normalize_universalner(text: str) -> str:
  text = "".join(ch for ch in str(text).lower() if ch not in _PUNCTUATION)
  return " ".join(_ARTICLES.sub(" ", text).split())


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "instructuie": normalize_instructuie,
    "universalner": normalize_universalner,
}


def family_keys(family: str, task: str, items: Iterable[Sequence[Any]]
                ) -> list[tuple]:
  """The comparable tuples of one example for one family (unnormalised)."""
  keys: list[tuple] = []
  for item in items:
    item = tuple(item)
    if family in ("entity", "entity_span", "relation_strict"):
      keys.append(item)
    elif family == "relation_boundary":
      keys.append(item[1:] if task == "RE" else item)
    elif family == "event_trigger":
      keys.append(item[:2])
    elif family == "event_argument":
      if task == "EE":
        keys.extend((item[0],) + tuple(arg) for arg in item[2])
      else:
        keys.append(item)
  return keys


def _normalized_set(keys: Iterable[tuple], normalize: Callable[[str], str]
                    ) -> set[tuple]:
  return {tuple(normalize(part) for part in key) for key in keys}


def _prf(tp: int, support: int, predicted: int) -> dict[str, float]:
  precision = 100.0 * tp / predicted if predicted else 0.0
  recall = 100.0 * tp / support if support else 0.0
  f1 = (2 * precision * recall / (precision + recall)
        if precision + recall else 0.0)
  return {"precision": precision, "recall": recall, "f1": f1}


def score_family(golds: Sequence[Mapping[str, Any]],
                 preds: Sequence[Mapping[str, Any]], family: str, *,
                 convention: str = "instructuie") -> dict[str, Any] | None:
  """{"per_dataset": {name: {precision, recall, f1, support, num_predicted,
  true_positives, unparsable, unknown_type, num_examples}}, "average": {...}};
  None when no example belongs to the family."""
  if len(golds) != len(preds):
    raise ValueError(f"{len(golds)} targets but {len(preds)} predictions")
  normalize = NORMALIZERS[convention]
  tasks = FAMILY_TASKS[family]
  counts: dict[str, dict[str, int]] = {}
  for gold, pred in zip(golds, preds):
    task = gold["task"]
    if task not in tasks:
      continue
    c = counts.setdefault(gold["dataset"], dict.fromkeys(
        ("true_positives", "support", "num_predicted", "unparsable",
         "unknown_type", "num_examples"), 0))
    gold_set = _normalized_set(family_keys(family, task, gold["items"]),
                               normalize)
    pred_set = _normalized_set(family_keys(family, task, pred["items"]),
                               normalize)
    c["true_positives"] += len(gold_set & pred_set)
    c["support"] += len(gold_set)
    c["num_predicted"] += len(pred_set)
    c["unparsable"] += 0 if pred.get("parse_ok", True) else 1
    c["unknown_type"] += int(pred.get("num_unknown", 0))
    c["num_examples"] += 1
  if not counts:
    return None
  per_dataset = {}
  for name in sorted(counts):
    c = counts[name]
    per_dataset[name] = {**_prf(c["true_positives"], c["support"],
                                c["num_predicted"]), **c}
  n = len(per_dataset)
  average: dict[str, Any] = {
      k: sum(d[k] for d in per_dataset.values()) / n
      for k in ("precision", "recall", "f1")}
  for k in ("support", "num_predicted", "true_positives", "unparsable",
            "unknown_type", "num_examples"):
    average[k] = sum(d[k] for d in per_dataset.values())
  average["num_datasets"] = n
  return {"per_dataset": per_dataset, "average": average}


def score_examples(golds: Sequence[Mapping[str, Any]],
                   preds: Sequence[Mapping[str, Any]], *,
                   convention: str = "instructuie",
                   families: Sequence[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
  """Every family that applies: {family: {"per_dataset", "average"}}."""
  if convention not in NORMALIZERS:
    raise ValueError(f"unknown convention {convention!r}; one of {CONVENTIONS}")
  result = {}
  for family in families or FAMILY_TASKS:
    scores = score_family(golds, preds, family, convention=convention)
    if scores is not None:
      result[family] = scores
  return result


def score_both_conventions(golds, preds) -> dict[str, dict[str, Any]]:
  """{"instructuie": score_examples(...), "universalner": score_examples(...)}."""
  return {c: score_examples(golds, preds, convention=c) for c in CONVENTIONS}


def evaluate_outputs(examples: Sequence[Mapping[str, Any]],
                     outputs: Sequence[str], *, convention: str = "instructuie"
                     ) -> dict[str, dict[str, Any]]:
  """Scores raw generated texts against template examples (no seqio needed)."""
  from ie_tasks.parsing import postprocess
  golds = [postprocess(ex["targets"], ex, is_target=True) for ex in examples]
  preds = [postprocess(out, ex) for ex, out in zip(examples, outputs)]
  return score_examples(golds, preds, convention=convention)


def flatten(scores: Mapping[str, Mapping[str, Any]], prefix: str = ""
            ) -> dict[str, float]:
  """{family: {per_dataset, average}} -> {"family/dataset/f1": value, ...}."""
  flat = {}
  for family, result in scores.items():
    for dataset, values in result["per_dataset"].items():
      for k, v in values.items():
        flat[f"{prefix}{family}/{dataset}/{k}"] = float(v)
    for k, v in result["average"].items():
      flat[f"{prefix}{family}/average/{k}"] = float(v)
  return flat


# --- seqio metric functions: fn(targets, predictions) -> {name: float} ------

def instructuie_metrics(targets, predictions) -> dict[str, float]:
  """All families, InstructUIE normalisation, flat names for seqio."""
  return flatten(score_examples(targets, predictions,
                                convention="instructuie"))


def universalner_metrics(targets, predictions) -> dict[str, float]:
  """All families, UniversalNER (SQuAD) normalisation, prefixed "uniner/"."""
  return flatten(score_examples(targets, predictions,
                                convention="universalner"), prefix="uniner/")


def _family_metric(family: str, convention: str = "instructuie"):
  def metric(targets, predictions) -> dict[str, float]:
    scores = score_family(targets, predictions, family, convention=convention)
    return flatten({family: scores}) if scores else {}
  metric.__name__ = f"{family}_f1"
  metric.__doc__ = f"{family} P/R/F1 per dataset and averaged ({convention})."
  return metric


entity_f1 = _family_metric("entity")
entity_span_f1 = _family_metric("entity_span")
relation_strict_f1 = _family_metric("relation_strict")
relation_boundary_f1 = _family_metric("relation_boundary")
event_trigger_f1 = _family_metric("event_trigger")
event_argument_f1 = _family_metric("event_argument")
