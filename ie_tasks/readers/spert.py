"""Reader for SpERT-style JSON (CoNLL04): tokens, BILOU tags, relations.

Each item is `{"tokens", "tags" (BILOU, e.g. "B-Peop", "L-Peop", "U-Loc"),
"relations": [{"head", "tail", "type"}], "orig_id"}` where head/tail index
the entities in order of appearance. Items with SpERT's own
`"entities": [{"type", "start", "end"}]` (token offsets) instead of tags are
read too.

Type names: by default the names InstructUIE's conll04 copy uses
(`label_maps.CONLL04_ENTITY_TYPES` / `CONLL04_RELATION_TYPES`: Peop ->
"people", OrgBased_In -> "organization in", ...), so records from here score
like the papers'. A type missing from those maps falls back to the verbose
name of `types_path` (`conll04_types.json`) lower-cased, then to the raw
type. With `types_path`, `entity_types`/`relation_types` list every type of
that file; without it, the mapped types of the maps.
"""
from __future__ import annotations

from typing import Any

from ie_tasks.readers import label_maps
from ie_tasks.readers.bio import TagSequenceError, tags_to_spans
from ie_tasks.readers.spans import join_tokens
from ie_tasks.readers.stats import ReadStats, skip_or_raise
from ie_tasks.records import (DataError, Entity, Record, Relation, load_json,
                              load_json_list)


def _load_type_names(types_path: str | None) -> tuple[dict, dict, bool]:
  """(entity map, relation map, whether the universe came from the file)."""
  entity_names = dict(label_maps.CONLL04_ENTITY_TYPES)
  relation_names = dict(label_maps.CONLL04_RELATION_TYPES)
  if types_path is None:
    return entity_names, relation_names, False
  types = load_json(types_path)
  entities = {k: entity_names.get(k, v.get("verbose", k).lower())
              for k, v in types.get("entities", {}).items()}
  relations = {k: relation_names.get(k, v.get("verbose", k).lower())
               for k, v in types.get("relations", {}).items()}
  return entities, relations, True


def read_spert_json(path: str, *, dataset: str = "conll04", split: str,
                    types_path: str | None = None, skip_invalid: bool = False,
                    stats: ReadStats | None = None) -> list[Record]:
  """One Record per item, with entities and the relations between them."""
  entity_names, relation_names, from_file = _load_type_names(types_path)
  items = load_json_list(path, "items")
  entity_universe = tuple(entity_names.values())
  relation_universe = tuple(relation_names.values())
  records = []
  for index, item in enumerate(items):
    try:
      record = _item_record(path, index, item, dataset, split, entity_names,
                            relation_names, from_file)
    except DataError as e:
      skip_or_raise(e, reason="invalid_item", skip_invalid=skip_invalid,
                    stats=stats)
      continue
    records.append(Record(
        id=record.id, text=record.text, entities=record.entities,
        relations=record.relations, dataset=dataset, split=split,
        entity_types=entity_universe, relation_types=relation_universe))
  if stats is not None:
    stats.read += len(records)
  return records


def _item_record(path: str, index: int, item: Any, dataset: str, split: str,
                 entity_names: dict, relation_names: dict,
                 strict_types: bool) -> Record:
  record_id = f"{dataset}-{split}-{index}"
  where = dict(path=path, record=f"{index} ({record_id})")
  if not isinstance(item, dict) or not isinstance(item.get("tokens"), list):
    raise DataError("item has no 'tokens' list", field="tokens",
                    value=item, **where)
  tokens = item["tokens"]
  if "tags" in item:
    tags = item["tags"]
    if len(tags) != len(tokens):
      raise DataError(f"{len(tags)} tags for {len(tokens)} tokens",
                      field="tags", value=tags, **where)
    try:
      token_spans = tags_to_spans(tags, "bioes")
    except TagSequenceError as e:
      raise DataError(f"invalid BILOU sequence at token {e.position}: {e}",
                      field=f"tags[{e.position}]", value=e.tag,
                      **where) from None
  else:
    try:
      token_spans = [(int(e["start"]), int(e["end"]), e["type"])
                     for e in item.get("entities", ())]
    except (KeyError, TypeError, ValueError) as e:
      raise DataError(f"malformed entity: {e}", field="entities",
                      value=item.get("entities"), **where) from None
  text, offsets = join_tokens(tokens)
  entities = []
  for k, (start, end, raw_type) in enumerate(token_spans):
    if not 0 <= start < end <= len(tokens):
      raise DataError(f"token span [{start}, {end}) outside {len(tokens)} "
                      "tokens", field=f"entities[{k}]", value=raw_type,
                      **where)
    if strict_types and raw_type not in entity_names:
      raise DataError("unknown entity type", field=f"entities[{k}].type",
                      value=raw_type, **where)
    s, e = offsets[start][0], offsets[end - 1][1]
    entities.append(Entity(s, e, entity_names.get(raw_type, raw_type),
                           text[s:e]))
  relations = []
  for k, rel in enumerate(item.get("relations", ())):
    try:
      head, tail, raw_type = rel["head"], rel["tail"], rel["type"]
      head_entity, tail_entity = entities[head], entities[tail]
    except (KeyError, TypeError, IndexError):
      raise DataError(
          f"relation must name head/tail entity indices below "
          f"{len(entities)} and a type", field=f"relations[{k}]", value=rel,
          **where) from None
    if strict_types and raw_type not in relation_names:
      raise DataError("unknown relation type", field=f"relations[{k}].type",
                      value=raw_type, **where)
    relations.append(Relation(head_entity, tail_entity,
                              relation_names.get(raw_type, raw_type)))
  record = Record(id=record_id, text=text, entities=tuple(entities),
                  relations=tuple(relations), dataset=dataset, split=split)
  record.validate(path=path)
  return record
