"""Registers a distilled dataset directory as a dataset and two seqio tasks.

  ie_ner_<name>_conversation         UniversalNER open-type conversations (no
                                     dataset tag), negatives drawn by the
                                     frequencies in type_counts.json
  ie_ner_<name>_tagged_conversation  the supervised variant: the same
                                     examples prefixed "Dataset: <name> \\n"

Passages are split into train / validation by a hash of the passage id
(`validation_fraction`), so the split is stable as the dataset grows.

From Python: `register_distilled_dataset("my_ner", "/data/my_ner")`.
From gin only (the function returns the task name, so it can stand where a
task name is expected, as `ie_tasks.define_mixture` does):
  MIXTURE_OR_TASK_NAME = @ie_tasks.register_distilled_dataset()
  ie_tasks.register_distilled_dataset.name = "my_ner"
  ie_tasks.register_distilled_dataset.directory = "/data/my_ner"
or on the command line
  --gin.MIXTURE_OR_TASK_NAME=@ie_tasks.register_distilled_dataset()
  --gin.ie_tasks.register_distilled_dataset.name="'my_ner'"
  --gin.ie_tasks.register_distilled_dataset.directory="'/data/my_ner'"
A relative `directory` is taken under the data root (`ie_tasks.data_dir`).
Number of negatives and seed: `ie_tasks.template_options` (as every task).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from typing import Sequence

import gin

from ie_tasks import datasets as ds_lib
from ie_tasks import paths
from ie_tasks import postprocessors
from ie_tasks import tasks as tasks_lib
from ie_tasks.distill import write
from ie_tasks.records import Record
from ie_tasks.templates import conversation

READER = "distilled"
TAGGED_SUFFIX = "_tagged"


def is_validation(record_id: str, validation_fraction: float) -> bool:
  bucket = int(hashlib.md5(record_id.encode()).hexdigest()[:8], 16) % 10_000
  return bucket < round(validation_fraction * 10_000)


def _read_distilled(spec: ds_lib.DatasetSpec, path: str,
                    split: str) -> list[Record]:
  """Records of one split of a distilled directory (`path` is the directory)."""
  held_out = split != "train"  # the data layer calls validation "dev"
  fraction = spec.reader_kwargs.get("validation_fraction", 0.0)
  dataset = spec.reader_kwargs.get("record_dataset", spec.name)
  return [dataclasses.replace(r, dataset=dataset, split=split)
          for r in write.read_records(path)
          if is_validation(r.id, fraction) == held_out]


# The data layer looks readers up by `DatasetSpec.reader`.
ds_lib.register_reader(READER, _read_distilled)


class DistilledExamples(tasks_lib.ExamplesDataSource):
  """Conversation examples of a distilled dataset, negatives by type_counts."""

  def __init__(self, name: str, dataset: str, directory: str, tagged: bool,
               splits: Sequence[str]):
    self._dataset, self._directory, self._tagged = dataset, directory, tagged
    self._cache: dict[tuple, list[dict[str, str]]] = {}
    self._lock = threading.Lock()
    super().__init__(name, splits)

  def examples(self, split: str) -> list[dict[str, str]]:
    options = tasks_lib.template_options()
    limit = tasks_lib.max_instances(self._dataset, split)
    key = (split, limit, tuple(sorted(options.items())))
    with self._lock:
      if key in self._cache:
        return self._cache[key]
    records = ds_lib.load_records(self._dataset, split)
    records = tasks_lib._cap(records, limit, self._dataset, options["seed"])  # pylint: disable=protected-access
    sampler = conversation.TypeSampler(write.read_type_counts(self._directory))
    examples = []
    for record in records:
      examples.extend(conversation.make_examples(
          record, seed=options["seed"], type_sampler=sampler,
          num_negatives=options["num_negatives"], dataset_tag=self._tagged))
    examples = [{k: ex.get(k, "") for k in tasks_lib.EXAMPLE_FIELDS}
                for ex in examples]
    with self._lock:
      self._cache[key] = examples
    return examples


@gin.configurable(module="ie_tasks")
def register_distilled_dataset(name: str = gin.REQUIRED,
                               directory: str = gin.REQUIRED, *,
                               validation_fraction: float = 0.05,
                               tagged: bool = False) -> str:
  """Registers dataset `name` (and `<name>_tagged`) and their two tasks.

  Args:
    name: registry name (lower_snake), e.g. "my_ner".
    directory: the cleaned dataset dir (records + type_counts.json).
    validation_fraction: share of passages (by id hash) held out.
    tagged: which task name to return: the supervised tagged variant
      instead of the open-type one (both are registered).
  Returns: the task name, `ie_ner_<name>_conversation` (or the tagged one).
  """
  if not 0.0 <= validation_fraction < 1.0:
    raise ValueError(f"validation_fraction must be in [0, 1), got "
                     f"{validation_fraction}")
  directory = os.path.join(paths.data_dir(), os.path.expanduser(
      directory))  # an absolute directory stays as it is
  write.record_files(directory)  # fails early, naming what is missing
  write.read_type_counts(directory)
  names = {}
  for dataset, tag in ((name, False), (name + TAGGED_SUFFIX, True)):
    # The tagged alias keeps `name` as the record dataset (the tag text);
    # it exists so mixtures and rates can resolve the tagged task's name.
    ds_lib.register(ds_lib.DatasetSpec(
        name=dataset, reader=READER,
        files={"train": directory, "validation": directory},
        reader_kwargs={"validation_fraction": validation_fraction,
                       "record_dataset": name},
        how_to_prepare=("run the distillation pipeline (launch/distill.py) "
                        "or ie_tasks.distill.clean.clean_annotations"),
        domain=f"distilled ({directory})",
        formats=("conversation",), dataset_tag=tag))
    task = tasks_lib.task_name("NER", dataset, "conversation")
    splits = ("train", "validation") if validation_fraction else ("train",)
    names[tag] = tasks_lib.add_task(
        task, DistilledExamples(task, dataset, directory, tag, splits),
        postprocessors.metric_fns_for("CONV"))
  return names[tagged]
