"""seqio Tasks: one per dataset x task type x format.

Names: `ie_<task>_<dataset>_<format>`, task in ner/re/ee and InstructUIE's
auxiliary es/et (NER), ep/epr (RE), eet/eea (EE); format `instructuie` or
`conversation` (UniversalNER; dataset-tagged for supervised sets, untagged
for the open-type `pile_ner`). Examples:
  ie_ner_crossner_ai_instructuie, ie_re_conll04_instructuie,
  ie_ee_casie_instructuie, ie_es_conll2003_instructuie,
  ie_ner_pile_ner_conversation, ie_ner_mit_movie_conversation.

Every task is registered at import (cheap: no file is read). A task's records
are read and turned into example dicts the first time its data is requested;
the examples are cached per process. Each example keeps its string fields
("task", "dataset", "id", "labels", "gold", "text") beside the tokenized
"inputs"/"targets", so the postprocessor and metrics see the gold structure.

gin knobs (all read when data is requested, so they work after import):
  ie_tasks.max_instances.train = 10000       # the paper's per-dataset cap
  ie_tasks.max_instances.evaluation = None   # no cap on validation/test
  ie_tasks.max_instances.per_dataset = {"conll2003": 2000}
  ie_tasks.template_options.seed = 0         # instruction paraphrase choice
  ie_tasks.template_options.num_negatives = 2  # conversation negative types
  ie_tasks.template_options.instructions = {"NER": ""}  # instruction ablation
  ie_tasks.mention_replacement_options.copies = 1  # NER train augmentation (augment.py)
  ie_tasks.mention_replacement_options.novel_rate = 1.0  # swapped-in names are new ones
"""
from __future__ import annotations

import functools
import json
import threading
from typing import Any, Callable, Mapping, Sequence

import gin
import numpy as np
import seqio
import tensorflow as tf

from ie_tasks import augment
from ie_tasks import datasets as ds_lib
from ie_tasks import postprocessors
from ie_tasks import preprocessors
from ie_tasks import vocab as vocab_lib
from ie_tasks.records import Record
from ie_tasks.templates import instructuie

FORMATS = ("instructuie", "conversation")
# InstructUIE task families: the main task first, then its auxiliary tasks.
TASK_FAMILIES = {"NER": ("NER", "ES", "ET"), "RE": ("RE", "EP", "EPR"),
                 "EE": ("EE", "EET", "EEA")}
EXAMPLE_FIELDS = ("inputs", "targets", "task", "dataset", "id", "labels",
                  "gold", "text")
DEFAULT_MAX_INSTANCES = 10_000

# One vocabulary object shared by every task (resolved lazily, see vocab.py).
VOCABULARY = vocab_lib.DeferredVocabulary()


def output_features(vocabulary: seqio.Vocabulary | None = None
                    ) -> dict[str, seqio.Feature]:
  vocabulary = vocabulary or VOCABULARY
  return {"inputs": seqio.Feature(vocabulary, add_eos=True),
          "targets": seqio.Feature(vocabulary, add_eos=True)}


@gin.configurable(module="ie_tasks")
def max_instances(dataset: str, split: str, *,
                  train: int | None = DEFAULT_MAX_INSTANCES,
                  evaluation: int | None = None,
                  per_dataset: Mapping[str, int | None] | None = None
                  ) -> int | None:
  """How many records (instances) of a dataset split a task uses; None: all.

  `per_dataset` overrides the split default for the named datasets (for
  every split). Capped records are a seeded random subset in file order.
  """
  if per_dataset and dataset in per_dataset:
    return per_dataset[dataset]
  return train if split == "train" else evaluation


@gin.configurable(module="ie_tasks")
def template_options(*, seed: int = 0, num_negatives: int = 2,
                     instructions: Mapping[str, str] | None = None) -> dict[str, Any]:
  """Template knobs; `instructions` ({task: text}) replaces InstructUIE's
  paraphrases of those tasks with one fixed instruction ("" for none)."""
  unknown = set(instructions or ()) - set(instructuie.TASKS)
  if unknown:
    raise ValueError(f"ie_tasks.template_options.instructions: unknown task(s) "
                     f"{sorted(unknown)}; expected some of {instructuie.TASKS}")
  return {"seed": seed, "num_negatives": num_negatives,
          "instructions": tuple(sorted((instructions or {}).items()))}


def task_name(task: str, dataset: str, fmt: str) -> str:
  return f"ie_{task.lower()}_{dataset}_{fmt}"


def parse_task_name(name: str) -> tuple[str, str, str]:
  """`ie_ner_crossner_ai_instructuie` -> ("NER", "crossner_ai", "instructuie")."""
  parts = name.split("_")
  if len(parts) < 4 or parts[0] != "ie" or parts[-1] not in FORMATS:
    raise ValueError(f"not an ie task name: {name!r}")
  return parts[1].upper(), "_".join(parts[2:-1]), parts[-1]


def _cap(records: list[Record], limit: int | None, dataset: str,
         seed: int) -> list[Record]:
  if limit is None or len(records) <= limit:
    return records
  rng = np.random.default_rng([seed, len(records), limit])
  keep = np.sort(rng.choice(len(records), size=limit, replace=False))
  return [records[i] for i in keep]


def _event_roles(records: Sequence[Record]) -> dict[str, list[str]]:
  roles: dict[str, dict[str, None]] = {}
  for r in records:
    for ev in r.events:
      for a in ev.arguments:
        roles.setdefault(ev.type, {}).setdefault(a.role, None)
  return {t: list(rs) for t, rs in roles.items()}


def _make_examples(task: str, dataset: str, fmt: str,
                   split: str) -> list[dict[str, str]]:
  spec = ds_lib.get(dataset)
  options = template_options()
  records = ds_lib.load_records(dataset, split)
  records = _cap(records, max_instances(dataset, split), dataset,
                 options["seed"])
  if split == "train" and task in TASK_FAMILIES["NER"]:
    records = augment.augment_records(records, **augment.mention_replacement_options())
  examples: list[dict[str, str]] = []
  if fmt == "instructuie":
    roles = None
    if task in ("EE", "EEA"):
      train = ds_lib.load_records(dataset, "train") if (
          "train" in spec.files) else records
      roles = _event_roles(train)
    for r in records:
      examples.extend(instructuie.make_examples(
          r, task, seed=options["seed"], roles=roles,
          instructions=dict(options["instructions"])))
  else:
    from ie_tasks.templates import conversation
    train = ds_lib.load_records(dataset, "train") if (
        "train" in spec.files) else records
    sampler = conversation.TypeSampler.from_records(train)
    for r in records:
      examples.extend(conversation.make_examples(
          r, seed=options["seed"], type_sampler=sampler,
          num_negatives=options["num_negatives"],
          dataset_tag=spec.dataset_tag))
  return [{k: ex.get(k, "") for k in EXAMPLE_FIELDS} for ex in examples]


_EXAMPLES: dict[tuple, list[dict[str, str]]] = {}
_LOCK = threading.Lock()


def task_examples(name: str, split: str) -> list[dict[str, str]]:
  """The example dicts of a registered task's split (cached per process).

  The cache key holds every gin knob that changes the examples, so a gin
  change after the first call is honoured.
  """
  task, dataset, fmt = parse_task_name(name)
  spec = ds_lib.get(dataset)
  key = (name, split, spec.path(split), max_instances(dataset, split),
         tuple(sorted(template_options().items())),
         tuple(sorted(augment.mention_replacement_options().items())))
  with _LOCK:
    cached = _EXAMPLES.get(key)
  if cached is None:
    cached = _make_examples(task, dataset, fmt, split)
    with _LOCK:
      _EXAMPLES[key] = cached
  return cached


def clear_cache() -> None:
  with _LOCK:
    _EXAMPLES.clear()
  ds_lib.clear_cache()


class ExamplesDataSource(seqio.DataSource):
  """Serves a task's example dicts; shards and shuffles deterministically.

  With `shard_info`, host i of n takes examples i, i+n, ... (before
  shuffling), so every host reads only its own shard; with `shuffle`, the
  order is a permutation seeded by `seed` (0 when none is given).
  """

  def __init__(self, name: str, splits: Sequence[str]):
    self._name = name
    super().__init__(splits=splits, num_input_examples=None,
                     caching_permitted=True)

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str) -> Sequence[str]:
    return [split]

  def examples(self, split: str) -> list[dict[str, str]]:
    """The example dicts of a split; subclasses serve other sources."""
    return task_examples(self._name, split)

  def num_input_examples(self, split: str) -> int:
    return len(self.examples(split))

  def get_dataset(self, split: str = "train", shuffle: bool = True,
                  seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, *,
                  sequence_length=None, use_cached: bool = False,
                  num_epochs: int | None = 1) -> tf.data.Dataset:
    del sequence_length, use_cached, num_epochs  # handled by seqio.Task
    examples = self.examples(split)
    order = np.arange(len(examples))
    if shard_info is not None:
      order = order[shard_info.index::shard_info.num_shards]
    if shuffle:
      order = np.random.default_rng(0 if seed is None else seed).permutation(
          order)
    columns = {k: tf.constant([examples[i][k] for i in order], dtype=tf.string)
               if len(order) else tf.zeros([0], tf.string)
               for k in EXAMPLE_FIELDS}
    return tf.data.Dataset.from_tensor_slices(columns)


def _metric_fns(task: str, fmt: str) -> list:
  return postprocessors.metric_fns_for(task if fmt == "instructuie" else "CONV")


def add_task(name: str, source: seqio.DataSource,
             metric_fns: Sequence[Callable[..., Any]]) -> str:
  """Registers (or replaces) a task over example dicts; returns its name.

  Every IE task tokenizes the same way and scores with our postprocessor;
  only the source and the metric functions differ.
  """
  seqio.TaskRegistry.remove(name)
  seqio.TaskRegistry.add(
      name,
      source=source,
      output_features=output_features(),
      preprocessors=[
          seqio.preprocessors.tokenize,
          seqio.CacheDatasetPlaceholder(),
          preprocessors.append_eos_after_trim,
      ],
      postprocess_fn=postprocessors.postprocess,
      metric_fns=list(metric_fns))
  return name


def register_task(task: str, dataset: str, fmt: str) -> str:
  """Registers (or replaces) one task; returns its name."""
  name = task_name(task, dataset, fmt)
  return add_task(name, ExamplesDataSource(name, ds_lib.get(dataset).splits),
                  _metric_fns(task, fmt))


def tasks_for_dataset(dataset: str) -> list[tuple[str, str]]:
  """(task type, format) pairs registered for a dataset."""
  spec = ds_lib.get(dataset)
  pairs: list[tuple[str, str]] = []
  if "instructuie" in spec.formats:
    for family in spec.tasks:
      pairs.extend((t, "instructuie") for t in TASK_FAMILIES[family])
  if "conversation" in spec.formats and "NER" in spec.tasks:
    pairs.append(("NER", "conversation"))
  return pairs


def task_names(*, datasets: Sequence[str] | None = None,
               tasks: Sequence[str] | None = None,
               formats: Sequence[str] | None = None) -> list[str]:
  """Registered task names, filtered by dataset, task type and format."""
  names = []
  for dataset in datasets if datasets is not None else ds_lib.names():
    for task, fmt in tasks_for_dataset(dataset):
      if tasks is not None and task not in tasks:
        continue
      if formats is not None and fmt not in formats:
        continue
      names.append(task_name(task, dataset, fmt))
  return names


@functools.lru_cache(maxsize=None)
def register_all() -> tuple[str, ...]:
  # Only the built-in datasets: others (distilled sets) register their own
  # tasks, with their own data sources, and must not be replaced here.
  return tuple(register_task(task, dataset, fmt)
               for dataset in ds_lib.builtin_names()
               for task, fmt in tasks_for_dataset(dataset))


def decode_example(example: Mapping[str, Any],
                   vocabulary: seqio.Vocabulary | None = None) -> dict[str, str]:
  """Tokenized example -> {"inputs": str, "targets": str} (EOS dropped)."""
  vocabulary = vocabulary or VOCABULARY
  out = {}
  for key in ("inputs", "targets"):
    ids = [int(i) for i in np.asarray(example[key])]
    if ids and ids[-1] == vocabulary.eos_id:
      ids = ids[:-1]
    out[key] = vocabulary.decode(ids)
  return out


def json_labels(example: Mapping[str, Any]) -> list[str]:
  raw = example["labels"]
  return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
