"""Registry of known datasets: name -> where its files lie and how to read them.

Paths are relative to the data root (`ie_tasks.paths.data_dir()`, i.e. gin
`ie_tasks.data_dir.path` or `$IE_DATA_DIR`). Records are read lazily, the
first time a task asks for a split, and cached per process.

Naming: the originals get plain names (`conll2003`, `crossner_ai`, ...,
`mit_movie`, `conll04`, `casie`, `pile_ner`); InstructUIE's IE INSTRUCTIONS
copies of the same corpora get an `iei_` prefix (`iei_conll2003`,
`iei_crossner_ai`, `iei_mit_movie`, ...), so both layouts can be trained or
evaluated side by side. Type names of the originals are mapped to the
natural-language names the IE INSTRUCTIONS copies use (`misc` -> `else`,
`organisation` -> `organization`, `RATINGS_AVERAGE` -> `average ratings`, ...),
so a model sees the same label names whichever layout it was trained on.
`sample` is the embedded default (`ie_tasks.sample`), built on first use.

Optional TFDS source: with gin `ie_tasks.tfds_data_dir.path` set, datasets
that have one of our TFDS builders are read from the prepared TFDS copy.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from typing import Any, Callable, Mapping, Sequence

import gin

from ie_tasks import paths
from ie_tasks import records as rec
from ie_tasks.readers import label_maps

# seqio split names; files use `dev` where we say `validation`.
SPLITS = ("train", "validation", "test")
NER, RE, EE = "NER", "RE", "EE"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to find and read one dataset.

  Attributes:
    name: lower_snake registry name.
    reader: key into `_READERS` ("bio", "spert", "casie", "ie_instructions",
      "pile_ner", "sample").
    files: seqio split -> path relative to the data root.
    tasks: which of NER/RE/EE the annotations support.
    entity_types / relation_types / event_types: the label universe, in the
      names the prompts use (after `type_map`).
    type_map: original label -> prompt label (entities, relations and events).
    reader_kwargs: extra keyword arguments for the reader.
    how_to_prepare: a hint shown when the files are missing.
    domain: a short description (shown by the demo).
    formats: which prompt formats apply ("instructuie", "conversation");
      open-type corpora (teacher-named types) have no fixed label set, so
      only the conversation format fits them.
    dataset_tag: whether conversation prompts carry the "Dataset:" tag (the
      supervised UniversalNER variant) or not (open-type distillation data).
  """
  name: str
  reader: str
  files: Mapping[str, str]
  tasks: tuple[str, ...] = (NER,)
  entity_types: tuple[str, ...] = ()
  relation_types: tuple[str, ...] = ()
  event_types: tuple[str, ...] = ()
  type_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
  reader_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  how_to_prepare: str = ""
  domain: str = ""
  tfds_name: str | None = None  # our TFDS builder, when one exists
  formats: tuple[str, ...] = ("instructuie", "conversation")
  dataset_tag: bool = True

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(s for s in SPLITS if s in self.files)

  def path(self, split: str) -> str:
    """Absolute path of a split under the current data root (may not exist)."""
    if split not in self.files:
      raise KeyError(f"dataset {self.name!r} has no split {split!r}; it has "
                     f"{list(self.splits)}")
    if self.reader == "sample":
      from ie_tasks import sample
      return os.path.join(sample.sample_dir(), self.files[split])
    return os.path.join(paths.data_dir(), self.files[split])

  def is_present(self) -> bool:
    if self.reader == "sample":
      return True  # written on first use
    return all(os.path.exists(self.path(s)) for s in self.splits)


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
  _REGISTRY[spec.name] = spec
  return spec


def get(name: str) -> DatasetSpec:
  if name not in _REGISTRY:
    raise KeyError(f"unknown dataset {name!r}; known: {sorted(_REGISTRY)}")
  return _REGISTRY[name]


_BUILTIN: tuple[str, ...] = ()


def builtin_names() -> tuple[str, ...]:
  """The datasets this module registers itself (others register their own tasks)."""
  return _BUILTIN


def names() -> list[str]:
  return list(_REGISTRY)


def present() -> list[str]:
  """Datasets whose files exist under the current data root."""
  return [n for n, s in _REGISTRY.items() if s.reader != "sample" and
          s.is_present()]


# ----------------------------------------------------------------- readers
def _read_bio(spec: DatasetSpec, path: str, split: str) -> list[rec.Record]:
  from ie_tasks.readers import bio
  return bio.read_bio(path, dataset=spec.name, split=split,
                      **spec.reader_kwargs)


def _read_spert(spec: DatasetSpec, path: str, split: str) -> list[rec.Record]:
  from ie_tasks.readers import spert
  types_path = os.path.join(os.path.dirname(path), "conll04_types.json")
  return spert.read_spert_json(
      path, dataset=spec.name, split=split,
      types_path=types_path if os.path.exists(types_path) else None)


def _read_casie(spec: DatasetSpec, path: str, split: str) -> list[rec.Record]:
  from ie_tasks.readers import casie
  return casie.read_casie(path, split=split, dataset=spec.name)


def _read_ie_instructions(spec: DatasetSpec, path: str,
                          split: str) -> list[rec.Record]:
  from ie_tasks.readers import ie_instructions
  labels = os.path.join(os.path.dirname(path), "labels.json")
  return ie_instructions.read_ie_instructions(
      path, dataset=spec.name, split=split, task=spec.tasks[0],
      labels_path=labels if os.path.exists(labels) else None)


def _read_pile_ner(spec: DatasetSpec, path: str, split: str) -> list[rec.Record]:
  """The Pile-NER slice has one file; passages are split 90/10 by id hash."""
  from ie_tasks.readers import conversation
  records = conversation.read_pile_ner_pairs(path, dataset=spec.name,
                                             split=split)

  def held_out(r: rec.Record) -> bool:
    return int(hashlib.md5(r.id.encode()).hexdigest(), 16) % 10 == 0

  keep = [r for r in records if held_out(r) == (split != "train")]
  return [dataclasses.replace(r, split=split) for r in keep]


def _read_sample(spec: DatasetSpec, path: str, split: str) -> list[rec.Record]:
  from ie_tasks import sample
  sample.prepare_sample(os.path.dirname(path))
  return list(rec.read_jsonl(path))


_READERS: dict[str, Callable[[DatasetSpec, str, str], list[rec.Record]]] = {
    "bio": _read_bio, "spert": _read_spert, "casie": _read_casie,
    "ie_instructions": _read_ie_instructions, "pile_ner": _read_pile_ner,
    "sample": _read_sample,
}


def register_reader(name: str,
                    fn: Callable[[DatasetSpec, str, str], list[rec.Record]]) -> None:
  """Adds a reader that `DatasetSpec.reader == name` selects.

  `fn(spec, path, split) -> list[Record]`; registering a name again replaces
  it (modules may be imported twice).
  """
  if not callable(fn):
    raise TypeError(f"register_reader({name!r}): {fn!r} is not callable")
  _READERS[name] = fn


def _rename(record: rec.Record, spec: DatasetSpec) -> rec.Record:
  """Applies the type map and fills the label universe from the spec."""
  m = spec.type_map

  def ent(e: rec.Entity) -> rec.Entity:
    return dataclasses.replace(e, type=m.get(e.type, e.type))

  def names_(types: Sequence[str], fallback: Sequence[str]) -> tuple[str, ...]:
    return tuple(fallback) if fallback else tuple(m.get(t, t) for t in types)

  return dataclasses.replace(
      record,
      entities=tuple(ent(e) for e in record.entities),
      relations=tuple(dataclasses.replace(r, head=ent(r.head), tail=ent(r.tail),
                                          type=m.get(r.type, r.type))
                      for r in record.relations),
      events=tuple(
          dataclasses.replace(
              ev, type=m.get(ev.type, ev.type),
              arguments=tuple(dataclasses.replace(a, role=m.get(a.role, a.role))
                              for a in ev.arguments))
          for ev in record.events),
      entity_types=names_(record.entity_types, spec.entity_types),
      relation_types=names_(record.relation_types, spec.relation_types),
      event_types=names_(record.event_types, spec.event_types))


@gin.configurable(module="ie_tasks")
def tfds_data_dir(path: str | None = None) -> str | None:
  """Where prepared TFDS copies live (gin `ie_tasks.tfds_data_dir.path`).

  None (default): read the raw files under the data root. When set, a
  dataset with a TFDS builder (`DatasetSpec.tfds_name`) prepared there with
  `python -m ie_tasks.tfds_builders.prepare` is read from TFDS instead.
  """
  return os.path.expanduser(path) if path else None


def _tfds_records(spec: DatasetSpec, split: str) -> list[rec.Record] | None:
  """Records from a prepared TFDS copy, or None when there is none."""
  data_dir = tfds_data_dir()
  if not data_dir or not spec.tfds_name:
    return None
  import tensorflow_datasets as tfds
  from ie_tasks import tfds_builders
  builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(
        f"dataset {spec.name!r}: TFDS copy {spec.tfds_name!r} is not prepared "
        f"in {data_dir!r} (gin ie_tasks.tfds_data_dir.path). To prepare it: "
        f"python -m ie_tasks.tfds_builders.prepare --dataset={spec.tfds_name} "
        f"--data_dir={data_dir} [--manual_dir=<data root>]")
  tfds_split = "dev" if split == "validation" else split
  ds = builder.as_dataset(split=tfds_split, shuffle_files=False)
  records = [dataclasses.replace(tfds_builders.decode_record(ex), split=split)
             for ex in tfds.as_numpy(ds)]
  return sorted(records, key=_file_order)  # TFDS shuffles at preparation


def _file_order(record: rec.Record) -> tuple:
  """Sort key restoring file order from ids like `crossner_ai-dev-120`."""
  head, _, tail = record.id.rpartition("-")
  return (head, int(tail)) if tail.isdigit() else (record.id, -1)


_CACHE: dict[tuple, list[rec.Record]] = {}
_LOCK = threading.Lock()


def load_records(name: str, split: str) -> list[rec.Record]:
  """Reads (once per process and data root) the records of a dataset split.

  Raises FileNotFoundError naming the path looked for and how to prepare it.
  """
  spec = get(name)
  path = spec.path(split)
  key = (name, split, path, tfds_data_dir())
  with _LOCK:
    if key in _CACHE:
      return _CACHE[key]
  from_tfds = _tfds_records(spec, split)
  if from_tfds is not None:
    records = [_rename(r, spec) for r in from_tfds]
    with _LOCK:
      _CACHE[key] = records
    return records
  if spec.reader != "sample" and not os.path.exists(path):
    raise FileNotFoundError(
        f"dataset {name!r} split {split!r}: file not found: {path!r} (data "
        f"root {paths.data_dir()!r}, set by gin ie_tasks.data_dir.path or "
        f"${paths.ENV_VAR}). To prepare it: {spec.how_to_prepare}")
  # Readers (and the TFDS copies) call the held-out split "dev", as the files
  # do; record ids keep that name, the records' split is seqio's name.
  file_split = "dev" if split == "validation" and spec.reader != "sample" \
      else split
  records = [_rename(dataclasses.replace(r, split=split), spec)
             for r in _READERS[spec.reader](spec, path, file_split)]
  with _LOCK:
    _CACHE[key] = records
  return records


def clear_cache() -> None:
  with _LOCK:
    _CACHE.clear()


# ---------------------------------------------------------------- the table
_CROSSNER_HINT = (
    "download the CrossNER data (github.com/zliucr/CrossNER, folder "
    "ner_data/{domain}) into <data root>/crossner/{domain}/ as "
    "train.txt, dev.txt, test.txt (or run the TFDS builder with manual_dir)")
_IEI_HINT = (
    "download InstructUIE's IE INSTRUCTIONS (github.com/BeyonderXX/InstructUIE) "
    "and put {task}/{folder}/{{train,dev,test,labels}}.json under "
    "<data root>/ie_instructions/")

# Original CrossNER / CoNLL-2003 tags -> the IE INSTRUCTIONS names.
# The IE INSTRUCTIONS names of the original tags (one table, in the readers).
CROSSNER_TYPE_MAP = label_maps.CROSSNER_TO_IE_INSTRUCTIONS
CROSSNER_TYPES = {
    "conll2003": ("person", "organisation", "location", "misc"),
    "ai": ("algorithm", "conference", "country", "field", "location", "metrics",
           "misc", "organisation", "person", "product", "programlang",
           "researcher", "task", "university"),
    "literature": ("award", "book", "country", "event", "literarygenre",
                   "location", "magazine", "misc", "organisation", "person",
                   "poem", "writer"),
    "music": ("album", "award", "band", "country", "event", "location", "misc",
              "musicalartist", "musicalinstrument", "musicgenre",
              "organisation", "person", "song"),
    "politics": ("country", "election", "event", "location", "misc",
                 "organisation", "person", "politicalparty", "politician"),
    "science": ("academicjournal", "astronomicalobject", "award",
                "chemicalcompound", "chemicalelement", "country", "discipline",
                "enzyme", "event", "location", "misc", "organisation", "person",
                "protein", "scientist", "theory", "university"),
}
MIT_TYPE_MAP = {"movie": label_maps.MIT_MOVIE_TO_IE_INSTRUCTIONS,
                "restaurant": label_maps.MIT_RESTAURANT_TO_IE_INSTRUCTIONS}
CONLL04_TYPE_MAP = {
    "Loc": "location", "Org": "organization", "Peop": "person",
    "Other": "other", "Work_For": "work for", "Kill": "kill",
    "OrgBased_In": "organization in", "Live_In": "live in",
    "Located_In": "located in",
}
# IE INSTRUCTIONS folder names (note the space in `CoNLL 2003`).
IEI_NER_FOLDERS = {
    "conll2003": "CoNLL 2003", "crossner_ai": "CrossNER_AI",
    "crossner_literature": "CrossNER_literature",
    "crossner_music": "CrossNER_music",
    "crossner_politics": "CrossNER_politics",
    "crossner_science": "CrossNER_science",
    "mit_movie": "mit-movie", "mit_restaurant": "mit-restaurant",
}
CROSSNER_DOMAINS = ("ai", "literature", "music", "politics", "science")


def _mapped(types: Sequence[str], type_map: Mapping[str, str]) -> tuple[str, ...]:
  return tuple(type_map.get(t, t) for t in types)


def _register_defaults() -> None:
  for domain, types in CROSSNER_TYPES.items():
    name = "conll2003" if domain == "conll2003" else f"crossner_{domain}"
    register(DatasetSpec(
        name=name, reader="bio",
        files={s: f"crossner/{domain}/{f}.txt"
               for s, f in (("train", "train"), ("validation", "dev"),
                            ("test", "test"))},
        entity_types=_mapped(types, CROSSNER_TYPE_MAP),
        type_map=CROSSNER_TYPE_MAP,
        how_to_prepare=_CROSSNER_HINT.format(domain=domain),
        domain="news" if domain == "conll2003" else domain,
        tfds_name="ie_conll2003" if domain == "conll2003" else
        f"ie_crossner/{domain}"))
  for domain, type_map in MIT_TYPE_MAP.items():
    register(DatasetSpec(
        name=f"mit_{domain}", reader="bio",
        files={"train": f"mit/{domain}/train.txt",
               "test": f"mit/{domain}/test.txt"},
        entity_types=tuple(type_map.values()), type_map=type_map,
        reader_kwargs={"token_column": 1, "tag_column": 0},
        how_to_prepare=(
            f"download the MIT {domain} corpus (engtrain.bio/engtest.bio from "
            f"groups.csail.mit.edu/sls/downloads/{domain}/) into "
            f"<data root>/mit/{domain}/train.txt and test.txt (tag column "
            "first, tab separated)"),
        domain=domain, tfds_name=f"ie_mit_{domain}"))
  register(DatasetSpec(
      name="conll04", reader="spert",
      files={s: f"conll04/conll04_{f}.json"
             for s, f in (("train", "train"), ("validation", "dev"),
                          ("test", "test"))},
      tasks=(NER, RE),
      entity_types=("location", "organization", "person", "other"),
      relation_types=("work for", "kill", "organization in", "live in",
                      "located in"),
      type_map=CONLL04_TYPE_MAP,
      how_to_prepare=(
          "download SpERT's CoNLL04 JSON (conll04_{train,dev,test}.json and "
          "conll04_types.json, e.g. `bash scripts/fetch_datasets.sh` in "
          "github.com/lavis-nlp/spert) into <data root>/conll04/"),
      domain="news", tfds_name="ie_conll04"))
  register(DatasetSpec(
      name="casie", reader="casie",
      files={s: "casie/annotation" for s in SPLITS},
      tasks=(EE,),
      how_to_prepare=(
          "clone github.com/Ebiquity/CASIE and copy data/annotation/ to "
          "<data root>/casie/annotation/"),
      domain="cybersecurity", tfds_name="ie_casie"))
  register(DatasetSpec(
      name="pile_ner", reader="pile_ner",
      files={"train": "pile_ner_sample/slimer_validation.jsonl",
             "validation": "pile_ner_sample/slimer_validation.jsonl"},
      how_to_prepare=(
          "copy UniversalNER/SLIMER's Pile-NER pairs file (SLIMER "
          "data/pileNER/5pos_5neg_perNE_top391NEs_FalseDef/validation.jsonl) to "
          "<data root>/pile_ner_sample/slimer_validation.jsonl, or produce your "
          "own with the distillation pipeline"),
      domain="open (Pile passages, ChatGPT types)",
      formats=("conversation",), dataset_tag=False))
  for base, folder in IEI_NER_FOLDERS.items():
    original = _REGISTRY[base]
    register(DatasetSpec(
        name=f"iei_{base}", reader="ie_instructions",
        files={s: f"ie_instructions/NER/{folder}/{f}.json"
               for s, f in (("train", "train"), ("validation", "dev"),
                            ("test", "test"))},
        how_to_prepare=_IEI_HINT.format(task="NER", folder=folder),
        domain=original.domain))
  register(DatasetSpec(
      name="sample", reader="sample",
      files={s: f"{s}.jsonl" for s in SPLITS},
      tasks=(NER, RE, EE),
      how_to_prepare="built automatically by ie_tasks.sample",
      domain="embedded default (generated)"))


_register_defaults()
_BUILTIN = tuple(_REGISTRY)
