"""seqio Mixtures of the IE tasks; rates, caps and membership come from gin.

Registered at import:
  ie_instructuie_supervised      NER/RE/EE InstructUIE tasks of every original
                                 dataset present under the data root (all known
                                 ones when none is present, so the name exists
                                 and a run says which files to prepare)
  ie_instructuie_supervised_aux  the same plus the auxiliary tasks (ES, ET, EP,
                                 EPR, EET, EEA), as InstructUIE trains
  ie_instructuie_zeroshot_train  CoNLL-2003 (NER) + CoNLL04 (NER, RE) + CASIE (EE)
  ie_crossner_zeroshot_eval      NER on the five CrossNER domains
  (the seven-set zero-shot NER mixtures live in ie_tasks/zeroshot.py)
  ie_universalner_pile_ner       UniversalNER conversations on Pile-NER
  ie_universalner_supervised     dataset-tagged conversations, every NER set present
  ie_sample_default              the embedded default: NER, RE, EE
                                 (InstructUIE) and NER conversations

Rates are functions read when a dataset is built, so gin files parsed after
`import ie_tasks` change them (see gin/mixtures/*.gin):
  ie_tasks.mixing_rate.scheme = "examples" | "equal"
  ie_tasks.mixing_rate.temperature = 2.0      # rate = n ** (1 / T)
  ie_tasks.mixing_rate.maximum = 10000        # n capped before the temperature
  ie_tasks.mixing_rate.overrides = {"ie_re_conll04_instructuie": 3.0}
Per-dataset caps of the instances themselves: `ie_tasks.max_instances`
(tasks.py). A new mixture without code: `MIXTURE_OR_TASK_NAME =
@ie_tasks.define_mixture()` with `ie_tasks.define_mixture.name/datasets/...`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import gin
import seqio

from ie_tasks import datasets as ds_lib
from ie_tasks import tasks as tasks_lib

MAIN_TASKS = ("NER", "RE", "EE")
AUX_TASKS = ("ES", "ET", "EP", "EPR", "EET", "EEA")
ORIGINAL_DATASETS = (
    "conll2003", "crossner_ai", "crossner_literature", "crossner_music",
    "crossner_politics", "crossner_science", "mit_movie", "mit_restaurant",
    "conll04", "casie")
ZEROSHOT_TRAIN = ("conll2003", "conll04", "casie")
CROSSNER = tuple(f"crossner_{d}" for d in ds_lib.CROSSNER_DOMAINS)


@gin.configurable(module="ie_tasks")
def mixing_rate(task: seqio.Task, *, scheme: str = "examples",
                temperature: float = 1.0, maximum: float | None = None,
                scale: float = 1.0,
                overrides: Mapping[str, float] | None = None) -> float:
  """The rate of a task in a mixture.

  scheme "examples": number of training examples n (after the per-dataset
  instance cap), capped at `maximum`, then n ** (1 / temperature) * scale
  (temperature 1 = proportional, larger = flatter, as in T5/mT5);
  "equal": 1.0. `overrides` maps a task or dataset name to a fixed rate.
  """
  if overrides:
    if task.name in overrides:
      return float(overrides[task.name])
    dataset = tasks_lib.parse_task_name(task.name)[1]
    if dataset in overrides:
      return float(overrides[dataset])
  if scheme == "equal":
    return 1.0
  if scheme != "examples":
    raise ValueError(f"mixing_rate: unknown scheme {scheme!r}; expected "
                     "'examples' or 'equal'")
  n = float(len(tasks_lib.task_examples(task.name, "train")))
  if maximum is not None:
    n = min(n, float(maximum))
  return scale * n ** (1.0 / temperature)


def _rate(task: seqio.Task) -> float:
  # A plain function (not a partial) so gin sees the call at rate time.
  return mixing_rate(task)


def register_mixture(name: str, task_names: Sequence[str]) -> str:
  """Registers (or replaces) a mixture whose rates come from `mixing_rate`."""
  seqio.MixtureRegistry.remove(name)
  seqio.MixtureRegistry.add(name, list(task_names), default_rate=_rate)
  return name


@gin.configurable(module="ie_tasks")
def define_mixture(name: str = "ie_custom", *,
                   datasets: Sequence[str] | None = None,
                   tasks: Sequence[str] = MAIN_TASKS,
                   formats: Sequence[str] = ("instructuie",),
                   task_names: Sequence[str] = ()) -> str:
  """Registers a mixture from gin and returns its name.

  Use as `MIXTURE_OR_TASK_NAME = @ie_tasks.define_mixture()`; members are
  the registered tasks of `datasets` (default: every original dataset
  present) x `tasks` x `formats`, plus any explicit `task_names`.
  """
  datasets = list(datasets) if datasets is not None else _present_or_all(
      ORIGINAL_DATASETS)
  members = tasks_lib.task_names(datasets=datasets, tasks=tasks,
                                 formats=formats) + list(task_names)
  if not members:
    raise ValueError(f"define_mixture {name!r}: no registered task matches "
                     f"datasets={datasets}, tasks={tasks}, formats={formats}")
  return register_mixture(name, members)


def _present_or_all(candidates: Sequence[str]) -> list[str]:
  present = set(ds_lib.present())
  chosen = [d for d in candidates if d in present]
  return chosen or list(candidates)


def register_mixtures() -> list[str]:
  """(Re-)registers the standard mixtures for the current data root."""
  supervised = _present_or_all(ORIGINAL_DATASETS)
  ner_sets = [d for d in supervised if "NER" in ds_lib.get(d).tasks]
  names = [
      register_mixture("ie_instructuie_supervised", tasks_lib.task_names(
          datasets=supervised, tasks=MAIN_TASKS, formats=("instructuie",))),
      register_mixture("ie_instructuie_supervised_aux", tasks_lib.task_names(
          datasets=supervised, tasks=MAIN_TASKS + AUX_TASKS,
          formats=("instructuie",))),
      register_mixture("ie_instructuie_zeroshot_train", tasks_lib.task_names(
          datasets=ZEROSHOT_TRAIN, tasks=MAIN_TASKS,
          formats=("instructuie",))),
      register_mixture("ie_crossner_zeroshot_eval", tasks_lib.task_names(
          datasets=CROSSNER, tasks=("NER",), formats=("instructuie",))),
      register_mixture("ie_universalner_pile_ner", tasks_lib.task_names(
          datasets=["pile_ner"], formats=("conversation",))),
      register_mixture("ie_universalner_supervised", tasks_lib.task_names(
          datasets=ner_sets, tasks=("NER",), formats=("conversation",))),
      register_mixture("ie_sample_default", tasks_lib.task_names(
          datasets=["sample"], tasks=MAIN_TASKS,
          formats=("instructuie", "conversation"))),
  ]
  return names


def mixture_statistics(name: str, split: str = "train") -> list[dict]:
  """Per task: examples, rate, share of the mixture (for the demo/reports)."""
  mixture = seqio.get_mixture_or_task(name)
  tasks = mixture.tasks if isinstance(mixture, seqio.Mixture) else [mixture]
  rows = []
  for task in tasks:
    examples = tasks_lib.task_examples(task.name, split) if (
        split in task.splits) else []
    rate = mixture.get_rate(task) if isinstance(mixture, seqio.Mixture) else 1.0
    rows.append({"task": task.name, "examples": len(examples), "rate": rate})
  total = sum(r["rate"] for r in rows) or 1.0
  for r in rows:
    r["share"] = r["rate"] / total
  return rows
