"""seqio postprocess_fn and metric_fns for the IE tasks.

The parsing itself lives in `ie_tasks.parsing` (text -> structure, tolerant of
what models emit) and the scoring in `ie_tasks.metrics`; this module picks
which of them a task uses, so `tasks.py` names one place.
"""
from __future__ import annotations

from typing import Any, Callable

from ie_tasks import metrics
from ie_tasks import parsing


def postprocess(output_or_target: Any, example: Any = None,
                is_target: bool = False) -> dict[str, Any]:
  """seqio postprocess_fn: generated text (or gold) -> {"task", "dataset", "items", ...}.

  Targets take their items from the example's "gold" field (no parsing), so
  the metrics compare against the exact annotation.
  """
  return parsing.postprocess(output_or_target, example, is_target=is_target)


def metric_fns_for(task: str) -> list[Callable[..., dict[str, float]]]:
  """Metric functions for a task type ("NER", ..., or "CONV" for conversation).

  Every InstructUIE task is scored with InstructUIE's string convention;
  conversation tasks get both papers' conventions (UniversalNER's first).
  """
  if task == "CONV":
    return [metrics.universalner_metrics, metrics.instructuie_metrics]
  return [metrics.instructuie_metrics]
