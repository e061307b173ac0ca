"""The one record type every reader produces: text plus char-offset structures.

Character offsets into `Record.text` are the truth for every span
(`text[start:end] == span.text`); token offsets are derived where needed.
Records serialise to one JSON object per line (the canonical JSONL form).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterable, Iterator, Sequence


class DataError(ValueError):
  """Bad input data; the message names the file, line/record, field and value."""

  def __init__(self, message: str, *, path: str | None = None,
               line: int | None = None, record: str | None = None,
               field: str | None = None, value: Any = None):
    self.path, self.line, self.record, self.field, self.value = (
        path, line, record, field, value)
    where = []
    if path is not None:
      where.append(str(path))
    if line is not None:
      where.append(f"line {line}")
    if record is not None:
      where.append(f"record {record}")
    if field is not None:
      where.append(f"field {field!r}")
    location = ", ".join(where)
    shown = "" if value is None else f" (value: {_short(value)})"
    super().__init__(f"{location}: {message}{shown}" if location else
                     f"{message}{shown}")


def _short(value: Any, limit: int = 120) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[:limit] + "..."


@dataclasses.dataclass(frozen=True, order=True)
class Span:
  """A piece of the record text: `text == record.text[start:end]`."""
  start: int
  end: int
  text: str


@dataclasses.dataclass(frozen=True, order=True)
class Entity:
  start: int
  end: int
  type: str
  text: str

  @property
  def span(self) -> Span:
    return Span(self.start, self.end, self.text)


@dataclasses.dataclass(frozen=True, order=True)
class Relation:
  head: Entity
  tail: Entity
  type: str


@dataclasses.dataclass(frozen=True, order=True)
class Argument:
  start: int
  end: int
  role: str
  text: str


@dataclasses.dataclass(frozen=True, order=True)
class Event:
  trigger: Span
  type: str
  arguments: tuple[Argument, ...] = ()


@dataclasses.dataclass(frozen=True)
class Record:
  """One annotated text.

  `entity_types` / `relation_types` / `event_types` is the label universe the
  record was annotated against (the dataset's labels, or the types a teacher
  was asked about); a type listed there with no span is a real negative.
  """
  id: str
  text: str
  entities: tuple[Entity, ...] = ()
  relations: tuple[Relation, ...] = ()
  events: tuple[Event, ...] = ()
  dataset: str = ""
  split: str = ""
  entity_types: tuple[str, ...] = ()
  relation_types: tuple[str, ...] = ()
  event_types: tuple[str, ...] = ()

  def validate(self, path: str | None = None, line: int | None = None) -> None:
    """Raises DataError if a span lies outside the text or does not match it."""
    def check(start: int, end: int, text: str, field: str) -> None:
      if not 0 <= start <= end <= len(self.text):
        raise DataError(
            f"span [{start}, {end}) lies outside the text of length "
            f"{len(self.text)}", path=path, line=line, record=self.id,
            field=field, value=text)
      if self.text[start:end] != text:
        raise DataError(
            f"span text does not match the text at [{start}, {end}): found "
            f"{self.text[start:end]!r}", path=path, line=line,
            record=self.id, field=field, value=text)

    for i, e in enumerate(self.entities):
      check(e.start, e.end, e.text, f"entities[{i}]")
    for i, r in enumerate(self.relations):
      check(r.head.start, r.head.end, r.head.text, f"relations[{i}].head")
      check(r.tail.start, r.tail.end, r.tail.text, f"relations[{i}].tail")
    for i, ev in enumerate(self.events):
      check(ev.trigger.start, ev.trigger.end, ev.trigger.text,
            f"events[{i}].trigger")
      for j, a in enumerate(ev.arguments):
        check(a.start, a.end, a.text, f"events[{i}].arguments[{j}]")

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, obj: dict[str, Any]) -> "Record":
    def entity(d):
      return Entity(int(d["start"]), int(d["end"]), d["type"], d["text"])

    return cls(
        id=str(obj["id"]),
        text=obj["text"],
        entities=tuple(entity(e) for e in obj.get("entities", ())),
        relations=tuple(
            Relation(entity(r["head"]), entity(r["tail"]), r["type"])
            for r in obj.get("relations", ())),
        events=tuple(
            Event(Span(**ev["trigger"]), ev["type"],
                  tuple(Argument(**a) for a in ev.get("arguments", ())))
            for ev in obj.get("events", ())),
        dataset=obj.get("dataset", ""),
        split=obj.get("split", ""),
        entity_types=tuple(obj.get("entity_types", ())),
        relation_types=tuple(obj.get("relation_types", ())),
        event_types=tuple(obj.get("event_types", ())),
    )


def write_jsonl(records: Iterable[Record], path: str) -> int:
  """Writes records atomically (temp file + rename); returns the count."""
  import os
  tmp = f"{path}.tmp-{os.getpid()}"
  count = 0
  with open(tmp, "w", encoding="utf-8") as f:
    for record in records:
      f.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
      count += 1
  os.replace(tmp, path)
  return count


def load_json(path: str) -> Any:
  """A JSON file's value; malformed JSON raises DataError naming file and line."""
  with open(path, encoding="utf-8") as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise DataError(f"malformed JSON: {e.msg}", path=path,
                      line=e.lineno) from None


def load_json_list(path: str, what: str = "items") -> list[Any]:
  """A JSON file that must hold a list (of `what`, named in the error)."""
  value = load_json(path)
  if not isinstance(value, list):
    raise DataError(f"expected a JSON list of {what}", path=path,
                    value=type(value).__name__)
  return value


def iter_json_lines(path: str) -> Iterator[tuple[int, Any]]:
  """(line number, value) of every non-blank JSONL line; bad JSON raises DataError."""
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        yield line_number, json.loads(line)
      except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON: {e.msg}", path=path,
                        line=line_number) from None


def read_jsonl(path: str) -> Iterator[Record]:
  for line_number, obj in iter_json_lines(path):
    try:
      record = Record.from_json(obj)
    except (KeyError, TypeError) as e:
      raise DataError(f"missing or malformed field: {e}", path=path,
                      line=line_number) from e
    record.validate(path=path, line=line_number)
    yield record


def entity_set(record: Record) -> set[tuple[str, str]]:
  """(lower-cased type, lower-cased span text) pairs, as the papers score."""
  return {(e.type.lower(), e.text.lower()) for e in record.entities}


def unique_types(records: Sequence[Record]) -> list[str]:
  seen: dict[str, None] = {}
  for r in records:
    for t in r.entity_types or [e.type for e in r.entities]:
      seen.setdefault(t, None)
  return list(seen)
