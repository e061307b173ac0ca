"""The embedded default: a small NER/RE/EE sample the project writes itself.

Sentences come from hand-written clause templates filled from small
gazetteers of invented people, organisations and places, so every span, relation
and event is known by construction (char offsets are exact). The generator is
seeded, so the same version always writes the same files; the dev and test
splits draw the same templates with different fillers and seeds, and a quarter
of their people/organisations/places come from held-out gazetteer entries that
never occur in train, so a model must generalise a little to score.

Prepared once to `<cache dir>/sample/v<VERSION>/{train,validation,test}.jsonl`
(canonical record JSONL); `python -m ie_tasks.sample --output_dir=...` writes
it by hand.
"""
from __future__ import annotations

import dataclasses
import os
import random
from typing import Callable, Sequence

import gin

from ie_tasks import records as rec

VERSION = 1
DATASET = "sample"
SPLIT_SIZES = {"train": 1600, "validation": 200, "test": 200}
SPLIT_SEEDS = {"train": 11, "validation": 22, "test": 33}

ENTITY_TYPES = ("person", "organization", "location")
RELATION_TYPES = ("work for", "live in", "organization in")
EVENT_TYPES = ("attack", "meet", "transport")
CACHE_ENV_VAR = "IE_CACHE_DIR"

# Invented names; the last few of each list are held out of train.
_FIRST = ("Anna", "Boris", "Clara", "David", "Elena", "Farid", "Greta", "Hugo",
          "Ines", "Jonas", "Kira", "Lukas", "Maya", "Nils", "Olga", "Pavel",
          "Rosa", "Sami", "Tara", "Viktor", "Wanda", "Yusuf", "Zoe", "Omar")
_LAST = ("Berg", "Castro", "Dahl", "Ekman", "Ferro", "Gupta", "Holm", "Ivanov",
         "Jensen", "Kato", "Lind", "Moreau", "Novak", "Okafor", "Petrov",
         "Quinn", "Rossi", "Silva", "Tanaka", "Urban", "Vega", "Weber")
_ORG_HEAD = ("Acme", "Blue River", "Northwind", "Silverline", "Redstone",
             "Greenfield", "Orion", "Summit", "Harbor", "Falcon", "Granite",
             "Cobalt", "Maple", "Atlas")
_ORG_TAIL = ("Bank", "Labs", "Motors", "Group", "Press", "Airlines",
             "University", "Council")
_PLACES = ("Paris", "Lagos", "Oslo", "Lima", "Kyoto", "Cairo", "Dublin",
           "Quito", "Perth", "Riga", "Tunis", "Hanoi", "Bergen", "Porto",
           "Nairobi", "Seville", "Krakow", "Tbilisi", "Valletta", "Malmo")
_HELD_OUT = 4  # entries at the end of each list used only in validation/test

def _configurable(fn):
  # `python -m ie_tasks.<module>` runs this file a second time as __main__;
  # only the package's copy registers with gin (once), and main() uses it.
  return fn if __name__ == "__main__" else gin.configurable(fn,
                                                            module="ie_tasks")



@dataclasses.dataclass
class _Builder:
  """Accumulates text and exact char-offset annotations for one record."""
  text: str = ""
  entities: list[rec.Entity] = dataclasses.field(default_factory=list)
  relations: list[rec.Relation] = dataclasses.field(default_factory=list)
  events: list[rec.Event] = dataclasses.field(default_factory=list)

  def add(self, piece: str) -> None:
    self.text += piece

  def mention(self, name: str, type_: str) -> rec.Entity:
    entity = rec.Entity(len(self.text), len(self.text) + len(name), type_, name)
    self.text += name
    self.entities.append(entity)
    return entity

  def trigger(self, word: str) -> rec.Span:
    span = rec.Span(len(self.text), len(self.text) + len(word), word)
    self.text += word
    return span


class _Fillers:
  """Draws names; held-out entries are only allowed outside train."""

  def __init__(self, rng: random.Random, split: str):
    self.rng = rng
    self.keep = (lambda xs: xs) if split != "train" else (
        lambda xs: xs[:-_HELD_OUT])

  def person(self) -> str:
    return (f"{self.rng.choice(self.keep(_FIRST))} "
            f"{self.rng.choice(self.keep(_LAST))}")

  def organization(self) -> str:
    return (f"{self.rng.choice(self.keep(_ORG_HEAD))} "
            f"{self.rng.choice(_ORG_TAIL)}")

  def location(self) -> str:
    return self.rng.choice(self.keep(_PLACES))

  def distinct(self, draw: Callable[[], str], n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
      name = draw()
      if name not in names:
        names.append(name)
    return names


def _argument(entity: rec.Entity, role: str) -> rec.Argument:
  return rec.Argument(entity.start, entity.end, role, entity.text)


# Each clause writes one sentence into the builder with its annotations.
def _works_for(b: _Builder, f: _Fillers) -> None:
  verb = f.rng.choice(("works for", "is employed by", "joined"))
  p = b.mention(f.person(), "person")
  b.add(f" {verb} ")
  o = b.mention(f.organization(), "organization")
  b.add(".")
  b.relations.append(rec.Relation(p, o, "work for"))


def _lives_in(b: _Builder, f: _Fillers) -> None:
  p = b.mention(f.person(), "person")
  b.add(f" {f.rng.choice(('lives in', 'has a home in', 'grew up in'))} ")
  l = b.mention(f.location(), "location")
  b.add(".")
  b.relations.append(rec.Relation(p, l, "live in"))


def _based_in(b: _Builder, f: _Fillers) -> None:
  o = b.mention(f.organization(), "organization")
  b.add(f" {f.rng.choice(('is based in', 'has its headquarters in'))} ")
  l = b.mention(f.location(), "location")
  b.add(".")
  b.relations.append(rec.Relation(o, l, "organization in"))


def _employee_of_based(b: _Builder, f: _Fillers) -> None:
  p = b.mention(f.person(), "person")
  b.add(" of ")
  o = b.mention(f.organization(), "organization")
  b.add(" flew home to ")
  l = b.mention(f.location(), "location")
  b.add(".")
  b.relations.append(rec.Relation(p, o, "work for"))
  b.relations.append(rec.Relation(p, l, "live in"))


def _attack(b: _Builder, f: _Fillers) -> None:
  if f.rng.random() < 0.5:
    attacker, target = f.distinct(f.person, 2)
    a_type = t_type = "person"
  else:
    attacker, target = f.distinct(f.organization, 2)
    a_type = t_type = "organization"
  a = b.mention(attacker, a_type)
  b.add(" ")
  trig = b.trigger(f.rng.choice(("attacked", "raided", "assaulted")))
  b.add(" ")
  t = b.mention(target, t_type)
  b.add(" in ")
  l = b.mention(f.location(), "location")
  b.add(".")
  b.events.append(rec.Event(trig, "attack", (
      _argument(a, "attacker"), _argument(t, "target"),
      _argument(l, "place"))))


def _meet(b: _Builder, f: _Fillers) -> None:
  p1, p2 = f.distinct(f.person, 2)
  a = b.mention(p1, "person")
  b.add(" ")
  trig = b.trigger(f.rng.choice(("met", "visited")))
  b.add(" ")
  c = b.mention(p2, "person")
  b.add(" in ")
  l = b.mention(f.location(), "location")
  b.add(f" on {f.rng.choice(('Monday', 'Friday', 'Sunday'))}.")
  b.events.append(rec.Event(trig, "meet", (
      _argument(a, "entity"), _argument(c, "entity"), _argument(l, "place"))))


def _transport(b: _Builder, f: _Fillers) -> None:
  origin, destination = f.distinct(f.location, 2)
  p = b.mention(f.person(), "person")
  b.add(" ")
  trig = b.trigger(f.rng.choice(("traveled", "moved", "drove")))
  b.add(" from ")
  o = b.mention(origin, "location")
  b.add(" to ")
  d = b.mention(destination, "location")
  b.add(".")
  b.events.append(rec.Event(trig, "transport", (
      _argument(p, "artifact"), _argument(o, "origin"),
      _argument(d, "destination"))))


def _entities_only(b: _Builder, f: _Fillers) -> None:
  kind = f.rng.randrange(3)
  if kind == 0:
    b.add("The weather in ")
    b.mention(f.location(), "location")
    b.add(" was mild.")
  elif kind == 1:
    b.mention(f.person(), "person")
    b.add(" said the report from ")
    b.mention(f.organization(), "organization")
    b.add(" was late.")
  else:
    b.add("Prices rose again last week.")  # no entity at all: a true negative


_CLAUSES: Sequence[Callable[[_Builder, _Fillers], None]] = (
    _works_for, _lives_in, _based_in, _employee_of_based, _attack, _meet,
    _transport, _entities_only)


def generate_records(split: str, num: int | None = None,
                     seed: int | None = None) -> list[rec.Record]:
  """Returns the sample records of a split; same arguments, same records."""
  num = SPLIT_SIZES[split] if num is None else num
  rng = random.Random(SPLIT_SEEDS[split] if seed is None else seed)
  fillers = _Fillers(rng, split)
  records = []
  for i in range(num):
    b = _Builder()
    for k in range(1 if rng.random() < 0.6 else 2):
      if k:
        b.add(" ")
      rng.choice(_CLAUSES)(b, fillers)
    record = rec.Record(
        id=f"{DATASET}-{split}-{i}", text=b.text,
        entities=tuple(sorted(b.entities)), relations=tuple(b.relations),
        events=tuple(b.events), dataset=DATASET, split=split,
        entity_types=ENTITY_TYPES, relation_types=RELATION_TYPES,
        event_types=EVENT_TYPES)
    record.validate()
    records.append(record)
  return records


@_configurable
def cache_dir(path: str | None = None) -> str:
  """Where built artefacts (the sample, its vocabulary) live.

  gin `ie_tasks.cache_dir.path`, else `$IE_CACHE_DIR`, else ~/.cache/ie_tasks.
  """
  root = path or os.environ.get(CACHE_ENV_VAR) or os.path.join(
      "~", ".cache", "ie_tasks")
  return os.path.expanduser(root)


def sample_dir() -> str:
  return os.path.join(cache_dir(), "sample", f"v{VERSION}")


def prepare_sample(output_dir: str | None = None) -> str:
  """Writes the sample JSONL files once (atomic per file); returns the folder."""
  output_dir = output_dir or sample_dir()
  os.makedirs(output_dir, exist_ok=True)
  for split in SPLIT_SIZES:
    path = os.path.join(output_dir, f"{split}.jsonl")
    if not os.path.exists(path):
      rec.write_jsonl(generate_records(split), path)
  return output_dir


def sample_path(split: str) -> str:
  return os.path.join(prepare_sample(), f"{split}.jsonl")


def main(argv: Sequence[str] | None = None) -> None:
  import argparse
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output_dir", default=None,
                      help="default: <cache dir>/sample/v<VERSION>")
  args = parser.parse_args(argv)
  folder = prepare_sample(args.output_dir)
  for split in SPLIT_SIZES:
    print(f"{split}: {os.path.join(folder, split + '.jsonl')}")


if __name__ == "__main__":
  from ie_tasks import sample as _package_copy  # the gin-registered module
  _package_copy.main()
