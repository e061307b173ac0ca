"""The zero-shot NER benchmark: seven test sets, two papers' prompt protocols.

The sets (the first table of InstructUIE, UniversalNER, GLiNER, GoLLIE, GNER,
B2NER): CrossNER AI, literature, music, politics, science, MIT Movie and MIT
Restaurant, test splits. Registered at import (no data is read):

  ie_zeroshot_ner7_instructuie      InstructUIE protocol, original files
  ie_zeroshot_ner7_conversation     UniversalNER protocol, original files
  ie_zeroshot_ner7_instructuie_iei  the same two on InstructUIE's IE
  ie_zeroshot_ner7_conversation_iei INSTRUCTIONS copies of the corpora
and one task per set and format, `ie_zeroshot_<set>_<format>[_iei]`
(e.g. `ie_zeroshot_crossner_ai_conversation`). Every task has a `test`
split only and is scored in both papers' conventions
(`metrics.instructuie_metrics` and `metrics.universalner_metrics`).

Which entity types are asked, and how they are named:
  InstructUIE    one prompt per sentence listing ALL the dataset's labels, in
                 the order and with the names of the IE INSTRUCTIONS
                 `labels.json` (`else` for CrossNER's misc, `program
                 language`, `average ratings`, `Restaurant Name`, ...), with
                 InstructUIE's own NER instruction wording (its first one).
  UniversalNER   one question per (sentence, entity type), every type of the
                 dataset asked on every sentence (negatives included, no
                 sampled extra negatives, no dataset tag), EXCEPT CrossNER's
                 catch-all `misc`/`else`: UniversalNER's released test data
                 (universal-ner/universal-ner, src/eval/test_data/*.json)
                 asks 13 types on CrossNER AI and 8 on politics, never
                 "else", so `else` entities are outside its scoring. Type
                 names are the same natural-language IE INSTRUCTIONS names,
                 which is what that test data asks ("program language",
                 "political party", "musical artist", "Restaurant Name").
                 UniversalNER's MIT Movie file is not public in the copy we
                 could read; we ask the IE INSTRUCTIONS names ("average
                 ratings", ...), as for the six other sets. To ask `else`
                 too: `ie_tasks.zeroshot_protocol.universalner_skipped_types
                 = []`.

Which copy of the corpora: by default the originals (crossner/<domain>/,
mit/<domain>/, datasets `crossner_*`, `mit_*`), read with
`readers.label_maps` names. They agree with InstructUIE's IE INSTRUCTIONS
copies on the same sentences and on >= 98% of the entity sets
(tests/test_readers_compare.py), but the copy of CrossNER music keeps 379 test
entities under the raw types `organisation`/`misc`, outside its own
labels.json, which no prompt asks for; UniversalNER's test data asks
"organization" there. The `_iei` mixtures read the copies (datasets `iei_*`,
the layout InstructUIE evaluated on) with the same type map applied, which
repairs those leftovers.

Caps for quick runs: `ie_tasks.max_instances.evaluation = 200` (or
`.per_dataset = {"mit_movie": 100}`) keeps a seeded subset of sentences per
set; both formats then see the same sentences.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Mapping, Sequence

import gin
import seqio

from ie_tasks import datasets as ds_lib
from ie_tasks import metrics
from ie_tasks import tasks as tasks_lib
from ie_tasks.readers import label_maps
from ie_tasks.records import Record
from ie_tasks.templates import conversation
from ie_tasks.templates import instructuie

ZEROSHOT_NER7 = ("crossner_ai", "crossner_literature", "crossner_music",
                 "crossner_politics", "crossner_science", "mit_movie",
                 "mit_restaurant")
FORMATS = ("instructuie", "conversation")
LAYOUTS = ("original", "iei")
SPLIT = "test"
# The catch-all class UniversalNER's test data never asks about.
UNIVERSALNER_SKIPPED_TYPES = frozenset({"else"})
MIXTURE_PREFIX = "ie_zeroshot_ner7"


def instructuie_labels(dataset: str) -> tuple[str, ...]:
  """All labels, IE INSTRUCTIONS order and names (InstructUIE's option list)."""
  _check_known(dataset)
  return label_maps.IE_INSTRUCTIONS_LABELS[dataset]


@gin.configurable(module="ie_tasks")
def zeroshot_protocol(*, universalner_skipped_types: Sequence[str] = tuple(
    sorted(UNIVERSALNER_SKIPPED_TYPES))) -> dict[str, tuple[str, ...]]:
  """Protocol knobs, read when examples are built (gin).

  `ie_tasks.zeroshot_protocol.universalner_skipped_types = []` asks the
  catch-all `else` too (UniversalNER's released test data does not).
  """
  return {"universalner_skipped_types": tuple(universalner_skipped_types)}


def universalner_types(dataset: str) -> tuple[str, ...]:
  """The types UniversalNER asks, one question each (no catch-all class)."""
  skipped = set(zeroshot_protocol()["universalner_skipped_types"])
  return tuple(t for t in instructuie_labels(dataset) if t not in skipped)


def _check_known(dataset: str) -> None:
  if dataset not in label_maps.IE_INSTRUCTIONS_LABELS:
    known = sorted(label_maps.IE_INSTRUCTIONS_LABELS)
    raise KeyError(
        f"zero-shot dataset {dataset!r} is not registered: known sets are "
        f"{known} (the seven standard ones: {list(ZEROSHOT_NER7)}). A new set "
        "needs a DatasetSpec in ie_tasks/datasets.py and its label names in "
        "ie_tasks/readers/label_maps.py (IE_INSTRUCTIONS_LABELS, "
        "ORIGINAL_LAYOUT).")


def source_dataset(dataset: str, layout: str = "original") -> str:
  """The registry dataset read for a set: `crossner_ai` or `iei_crossner_ai`."""
  _check_known(dataset)
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
  return dataset if layout == "original" else f"iei_{dataset}"


def task_name(dataset: str, fmt: str, layout: str = "original") -> str:
  suffix = "" if layout == "original" else "_iei"
  return f"ie_zeroshot_{dataset}_{fmt}{suffix}"


def mixture_name(fmt: str, layout: str = "original") -> str:
  suffix = "" if layout == "original" else "_iei"
  return f"{MIXTURE_PREFIX}_{fmt}{suffix}"


def missing_files(datasets: Sequence[str] = ZEROSHOT_NER7,
                  layout: str = "original") -> list[str]:
  """'path (how to get it)' for every test file that is not on disk."""
  missing = []
  for dataset in datasets:
    spec = ds_lib.get(source_dataset(dataset, layout))
    path = spec.path(SPLIT)
    if not os.path.exists(path):
      missing.append(f"{spec.name}: {path} (to get it: {spec.how_to_prepare})")
  return missing


def check_data(datasets: Sequence[str] = ZEROSHOT_NER7,
               layout: str = "original") -> None:
  """Raises FileNotFoundError naming every missing test file and its source."""
  from ie_tasks import paths
  missing = missing_files(datasets, layout)
  if missing:
    raise FileNotFoundError(
        f"zero-shot test data missing under the data root {paths.data_dir()!r} "
        f"(gin ie_tasks.data_dir.path or ${paths.ENV_VAR}):\n  "
        + "\n  ".join(missing))


# ----------------------------------------------------------------- examples
def _records(dataset: str, layout: str) -> list[Record]:
  """Test records of a set, IE INSTRUCTIONS type names, capped if asked."""
  name = source_dataset(dataset, layout)
  records = ds_lib.load_records(name, SPLIT)
  type_map = label_maps.ORIGINAL_LAYOUT[dataset][2]
  labels = instructuie_labels(dataset)
  records = [dataclasses.replace(
      r, dataset=dataset, entity_types=labels,
      entities=tuple(dataclasses.replace(e, type=type_map.get(e.type, e.type))
                     for e in r.entities)) for r in records]
  limit = tasks_lib.max_instances(dataset, SPLIT)
  seed = tasks_lib.template_options()["seed"]
  return tasks_lib._cap(records, limit, dataset, seed)  # pylint: disable=protected-access


def instructuie_examples(record: Record) -> list[dict[str, str]]:
  """One NER prompt with every label, in InstructUIE's first wording (or the
  instruction `ie_tasks.template_options.instructions` sets for NER)."""
  overrides = dict(tasks_lib.template_options()["instructions"])
  wording = overrides.get("NER", instructuie.INSTRUCTIONS["NER"][0])
  return instructuie.make_examples(
      record, "NER", labels=instructuie_labels(record.dataset),
      instructions={"NER": wording})


def conversation_examples(record: Record) -> list[dict[str, str]]:
  """One question per type of the set (UniversalNER's evaluation)."""
  return conversation.make_examples(
      record, types=universalner_types(record.dataset), dataset_tag=False)


def make_examples(dataset: str, fmt: str,
                  layout: str = "original") -> list[dict[str, str]]:
  builder = {"instructuie": instructuie_examples,
             "conversation": conversation_examples}.get(fmt)
  if builder is None:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  examples = [ex for r in _records(dataset, layout) for ex in builder(r)]
  return [{k: ex.get(k, "") for k in tasks_lib.EXAMPLE_FIELDS}
          for ex in examples]


class ZeroShotExamples(tasks_lib.ExamplesDataSource):
  """The test examples of one set in one format (cached per gin knobs)."""

  def __init__(self, name: str, dataset: str, fmt: str, layout: str):
    self._dataset, self._fmt, self._layout = dataset, fmt, layout
    self._cache: dict[tuple, list[dict[str, str]]] = {}
    self._lock = threading.Lock()
    super().__init__(name, (SPLIT,))

  def examples(self, split: str) -> list[dict[str, str]]:
    if split != SPLIT:
      raise ValueError(f"{self._name}: zero-shot tasks have only a {SPLIT!r} "
                       f"split, not {split!r}")
    spec = ds_lib.get(source_dataset(self._dataset, self._layout))
    key = (spec.path(SPLIT), tasks_lib.max_instances(self._dataset, SPLIT),
           tasks_lib.template_options()["seed"],
           tasks_lib.template_options()["instructions"],
           tuple(sorted(zeroshot_protocol().items())))
    with self._lock:
      if key not in self._cache:
        self._cache[key] = make_examples(self._dataset, self._fmt,
                                         self._layout)
      return self._cache[key]


def register_task(dataset: str, fmt: str, layout: str = "original") -> str:
  name = task_name(dataset, fmt, layout)
  # Both papers' string conventions, whatever the prompt format.
  return tasks_lib.add_task(
      name, ZeroShotExamples(name, dataset, fmt, layout),
      [metrics.instructuie_metrics, metrics.universalner_metrics])


def _register_mixture(name: str, task_names: Sequence[str]) -> str:
  seqio.MixtureRegistry.remove(name)
  seqio.MixtureRegistry.add(name, list(task_names), default_rate=1.0)
  return name


def register_all() -> list[str]:
  """(Re-)registers every zero-shot task and the four standard mixtures."""
  names = []
  for layout in LAYOUTS:
    for fmt in FORMATS:
      tasks = [register_task(d, fmt, layout) for d in ZEROSHOT_NER7]
      names.append(_register_mixture(mixture_name(fmt, layout), tasks))
  return names


@gin.configurable(module="ie_tasks")
def zeroshot_mixture(fmt: str = "instructuie", *, layout: str = "original",
                     datasets: Sequence[str] | None = None,
                     check_files: bool = True) -> str:
  """A zero-shot mixture name for gin (`@ie_tasks.zeroshot_mixture()`).

  Args:
    fmt: "instructuie" or "conversation": the prompt format the model was
      trained with.
    layout: "original" files or the "iei" (IE INSTRUCTIONS) copies.
    datasets: a subset of the sets (default: all seven); a custom subset
      registers `ie_zeroshot_custom_<fmt>[_iei]`.
    check_files: fail now, naming every missing test file and where to get
      it, rather than after a model is loaded.
  """
  if fmt not in FORMATS:
    raise ValueError(f"zeroshot_mixture: format must be one of {FORMATS}, "
                     f"got {fmt!r}")
  chosen = list(datasets) if datasets is not None else list(ZEROSHOT_NER7)
  for dataset in chosen:
    _check_known(dataset)
  if check_files:
    check_data(chosen, layout)
  if chosen == list(ZEROSHOT_NER7):
    name = mixture_name(fmt, layout)
  else:
    suffix = "" if layout == "original" else "_iei"
    name = f"ie_zeroshot_custom_{fmt}{suffix}"
  return _register_mixture(
      name, [register_task(d, fmt, layout) for d in chosen])


def dataset_of_task(name: str) -> str | None:
  """`ie_zeroshot_crossner_ai_conversation_iei` -> `crossner_ai` (else None)."""
  for dataset in ZEROSHOT_NER7:
    for fmt in FORMATS:
      for layout in LAYOUTS:
        if name == task_name(dataset, fmt, layout):
          return dataset
  return None


def protocol_summary() -> Mapping[str, Mapping[str, Sequence[str]]]:
  """{set: {"instructuie": labels, "universalner": types}} (docs, demo)."""
  return {d: {"instructuie": instructuie_labels(d),
              "universalner": universalner_types(d)} for d in ZEROSHOT_NER7}


register_all()
