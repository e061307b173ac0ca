"""Reader for InstructUIE's IE INSTRUCTIONS layout.

    <root>/{NER,RE,EE}/<dataset dir>/{train,dev,test}.json + labels.json

Each split file is a JSON list of instances:
- NER: `{"sentence", "entities": [{"name", "type", "pos": [start, end]}]}`
- RE:  adds `"relations": [{"head": {"name", "type"?, "pos"}, "type",
        "tail": {"name", "type"?, "pos"}}]`
- EE:  `"events": [{"trigger", "type", "pos"?, "arguments": [{"name",
        "role", "pos"?}]}]`
`pos` are char offsets into `sentence`. When a `pos` is missing (some EE
copies give only names) the first whole-word occurrence of the name is used
and counted in `stats.notes["located_by_search"]`; a name not in the sentence
is a DataError. `labels.json` is a list of type names (NER/RE) or, for EE, a
dict from event type to its roles; it becomes the records' label universe.
Dataset folder names may contain spaces (`CoNLL 2003`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from ie_tasks.readers.spans import find_occurrences
from ie_tasks.readers.stats import ReadStats, skip_or_raise
from ie_tasks.records import (Argument, DataError, Entity, Event, Record,
                              Relation, Span, load_json, load_json_list)

TASKS = ("NER", "RE", "EE")
SPLITS = ("train", "dev", "test")


def find_datasets(root: str) -> dict[tuple[str, str], str]:
  """{(task, dataset folder name): folder} for every dataset under root.

  `root` holds the NER/RE/EE folders; a dataset folder is one holding at
  least one of train/dev/test.json.
  """
  found = {}
  for task in TASKS:
    task_dir = os.path.join(root, task)
    if not os.path.isdir(task_dir):
      continue
    for name in sorted(os.listdir(task_dir)):
      folder = os.path.join(task_dir, name)
      if os.path.isdir(folder) and any(
          os.path.isfile(os.path.join(folder, f"{s}.json")) for s in SPLITS):
        found[(task, name)] = folder
  return found


def read_labels(path: str) -> tuple[str, ...]:
  """Type names from labels.json (a list, or an EE dict type -> roles)."""
  labels = load_json(path)
  if isinstance(labels, dict):
    return tuple(labels)
  if isinstance(labels, list) and all(isinstance(x, str) for x in labels):
    return tuple(labels)
  raise DataError("labels must be a list of names or a dict of event types",
                  path=path, value=labels)


def read_ie_instructions(path: str, *, dataset: str, split: str,
                         task: str = "NER", labels_path: str | None = None,
                         type_map: Mapping[str, str] | None = None,
                         skip_invalid: bool = False,
                         stats: ReadStats | None = None) -> list[Record]:
  """One Record per instance of a split file (e.g. .../NER/CoNLL 2003/test.json).

  `labels_path` defaults to labels.json beside the split file (if present);
  its types become `entity_types` (NER), `relation_types` (RE) or
  `event_types` (EE). Types not given by labels are the sorted types seen.

  `type_map` renames entity types. Some published copies use types outside
  their own labels.json (CrossNER_music dev/test keep `organisation` and
  `misc` although labels.json says `organization` and `else`); such entities
  are counted in `stats.notes["type_not_in_labels"]`, and passing
  `label_maps.CROSSNER_TO_IE_INSTRUCTIONS` as `type_map` repairs them.
  """
  if task not in TASKS:
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")
  if labels_path is None:
    beside = os.path.join(os.path.dirname(path), "labels.json")
    labels_path = beside if os.path.isfile(beside) else None
  labels = read_labels(labels_path) if labels_path else None
  instances = load_json_list(path, "instances")
  records = []
  for index, instance in enumerate(instances):
    try:
      record = _instance_record(path, index, instance, dataset, split, stats)
    except DataError as e:
      skip_or_raise(e, reason="invalid_instance", skip_invalid=skip_invalid,
                    stats=stats)
      continue
    records.append(_renamed(record, type_map or {}, labels, task, stats))
  records = _with_universe(records, task, labels)
  if stats is not None:
    stats.read += len(records)
  return records


def _renamed(record: Record, type_map: Mapping[str, str],
             labels: tuple[str, ...] | None, task: str,
             stats: ReadStats | None) -> Record:
  """Applies type_map to entity types; counts types outside the labels."""
  entities = tuple(dataclasses.replace(e, type=type_map.get(e.type, e.type))
                   for e in record.entities)
  if task == "NER" and labels is not None and stats is not None:
    outside = sum(e.type not in labels for e in entities)
    if outside:
      stats.note("type_not_in_labels", outside)
  return dataclasses.replace(record, entities=entities)


def _with_universe(records: list[Record], task: str,
                   labels: tuple[str, ...] | None) -> list[Record]:
  seen_entities = tuple(sorted({e.type for r in records for e in r.entities}))
  seen_relations = tuple(sorted({x.type for r in records for x in r.relations}))
  seen_events = tuple(sorted({x.type for r in records for x in r.events}))
  entity_types = labels if task == "NER" and labels else seen_entities
  relation_types = labels if task == "RE" and labels else seen_relations
  event_types = labels if task == "EE" and labels else seen_events
  out = []
  for r in records:
    out.append(Record(
        id=r.id, text=r.text, entities=r.entities, relations=r.relations,
        events=r.events, dataset=r.dataset, split=r.split,
        entity_types=entity_types, relation_types=relation_types,
        event_types=event_types))
  return out


def _span(sentence: str, obj: Any, name_key: str, field: str, where: dict,
          stats: ReadStats | None) -> tuple[int, int, str]:
  """(start, end, name) of an annotated mention, checked against the text."""
  if not isinstance(obj, dict) or not isinstance(obj.get(name_key), str):
    raise DataError(f"missing {name_key!r}", field=field, value=obj, **where)
  name = obj[name_key]
  pos = obj.get("pos")
  if pos is None:
    occurrences = find_occurrences(sentence, name)
    if not occurrences:
      raise DataError("name not found in the sentence and no 'pos' given",
                      field=f"{field}.{name_key}", value=name, **where)
    if stats is not None:
      stats.note("located_by_search")
    return occurrences[0][0], occurrences[0][1], name
  try:
    start, end = int(pos[0]), int(pos[1])
  except (TypeError, ValueError, IndexError):
    raise DataError("pos must be [start, end]", field=f"{field}.pos",
                    value=pos, **where) from None
  if not 0 <= start <= end <= len(sentence):
    raise DataError(f"pos outside the sentence of length {len(sentence)}",
                    field=f"{field}.pos", value=pos, **where)
  if sentence[start:end] != name:
    raise DataError(f"name does not match the sentence at pos: found "
                    f"{sentence[start:end]!r}", field=f"{field}.{name_key}",
                    value=name, **where)
  return start, end, name


def _instance_record(path: str, index: int, instance: Any, dataset: str,
                     split: str, stats: ReadStats | None) -> Record:
  record_id = f"{dataset}-{split}-{index}"
  where = dict(path=path, record=f"{index} ({record_id})")
  if not isinstance(instance, dict) or not isinstance(
      instance.get("sentence"), str):
    raise DataError("instance has no 'sentence' string", field="sentence",
                    value=instance, **where)
  sentence = instance["sentence"]

  entities = []
  for k, obj in enumerate(instance.get("entities") or ()):
    start, end, name = _span(sentence, obj, "name", f"entities[{k}]", where,
                             stats)
    entities.append(Entity(start, end, str(obj.get("type", "")), name))
  types_by_span = {(e.start, e.end): e.type for e in entities}

  relations = []
  for k, rel in enumerate(instance.get("relations") or ()):
    ends = []
    for side in ("head", "tail"):
      obj = rel.get(side) if isinstance(rel, dict) else None
      start, end, name = _span(sentence, obj, "name",
                               f"relations[{k}].{side}", where, stats)
      # RE copies often leave head/tail types out: take the entity's type.
      entity_type = obj.get("type") or types_by_span.get((start, end), "")
      ends.append(Entity(start, end, entity_type, name))
    if not isinstance(rel.get("type"), str):
      raise DataError("relation without a type", field=f"relations[{k}].type",
                      value=rel, **where)
    relations.append(Relation(ends[0], ends[1], rel["type"]))

  events = []
  for k, ev in enumerate(instance.get("events") or ()):
    field = f"events[{k}]"
    start, end, trigger = _span(sentence, ev, "trigger", field, where, stats)
    if not isinstance(ev.get("type"), str):
      raise DataError("event without a type", field=f"{field}.type",
                      value=ev, **where)
    arguments = []
    for j, arg in enumerate(ev.get("arguments") or ()):
      a_start, a_end, a_name = _span(sentence, arg, "name",
                                     f"{field}.arguments[{j}]", where, stats)
      arguments.append(Argument(a_start, a_end, str(arg.get("role", "")),
                                a_name))
    events.append(Event(Span(start, end, trigger), ev["type"],
                        tuple(arguments)))

  return Record(id=record_id, text=sentence, entities=tuple(entities),
                relations=tuple(relations), events=tuple(events),
                dataset=dataset, split=split)
