"""Readers for UniversalNER's conversation JSON and Pile-NER (passage, type) pairs.

UniversalNER (`[{id, conversations: [{from, value}, ...]}]`): the first human
turn is `Text: <passage>`, the model answers `I've read this text.`, then each
human turn `What describes <type> in the text?` is answered by a JSON list of
span strings (`[]` for a type with no mention). One Record per passage;
`entity_types` is every type asked, in order, negatives included.

The answers are strings, not offsets: each answer is located at EVERY
whole-word occurrence in the passage (`spans.find_occurrences`). An answer not
found in the passage is counted in `stats.notes["answer_not_found"]` and
dropped (the teacher paraphrased or mis-copied it); a turn whose answer is not
a JSON list is a DataError (or counted with skip_invalid).
"""
from __future__ import annotations

import collections
import json
import re
from typing import Any, Iterable

from ie_tasks.readers.spans import find_occurrences
from ie_tasks.readers.stats import ReadStats, skip_or_raise
from ie_tasks.records import DataError, Entity, Record, load_json_list

_QUESTION = re.compile(r"^What describes (.+?) in the text\?$", re.DOTALL)
_TEXT_PREFIX = "Text: "


def locate_answers(passage: str, answers: Iterable[tuple[str, str]],
                   stats: ReadStats | None = None) -> tuple[Entity, ...]:
  """Entities for (type, span string) answers: every occurrence, deduplicated."""
  found: dict[tuple[int, int, str], Entity] = {}
  for entity_type, answer in answers:
    occurrences = find_occurrences(passage, answer)
    if not occurrences and stats is not None:
      stats.note("answer_not_found")
    for start, end in occurrences:
      found.setdefault((start, end, entity_type),
                       Entity(start, end, entity_type, answer))
  return tuple(sorted(found.values()))


def _answer_list(value: Any, where: dict, field: str) -> list[str]:
  try:
    answers = json.loads(value) if isinstance(value, str) else value
  except json.JSONDecodeError as e:
    raise DataError(f"answer is not a JSON list: {e.msg}", field=field,
                    value=value, **where) from None
  if not isinstance(answers, list):
    raise DataError("answer is not a JSON list", field=field, value=value,
                    **where)
  # Teachers sometimes answer with numbers; keep them as the string they are.
  return [a if isinstance(a, str) else json.dumps(a) for a in answers]


def _conversation_record(path: str, index: int, item: Any, dataset: str,
                         split: str, stats: ReadStats | None) -> Record:
  item_id = str(item.get("id", index)) if isinstance(item, dict) else index
  where = dict(path=path, record=f"{index} (id {item_id})")
  turns = item.get("conversations") if isinstance(item, dict) else None
  if not isinstance(turns, list) or not turns:
    raise DataError("no 'conversations' list", field="conversations",
                    value=item, **where)
  first = turns[0]
  if (not isinstance(first, dict) or first.get("from") != "human" or
      not str(first.get("value", "")).startswith(_TEXT_PREFIX)):
    raise DataError(f"first turn must be a human turn starting "
                    f"{_TEXT_PREFIX!r}", field="conversations[0]",
                    value=first, **where)
  passage = first["value"][len(_TEXT_PREFIX):]
  types: dict[str, None] = {}
  answers: list[tuple[str, str]] = []
  pending_type = None
  for k, turn in enumerate(turns[1:], start=1):
    field = f"conversations[{k}]"
    if not isinstance(turn, dict) or "value" not in turn:
      raise DataError("turn without 'from'/'value'", field=field, value=turn,
                      **where)
    if turn.get("from") == "human":
      match = _QUESTION.match(turn["value"].strip())
      if not match:
        raise DataError("human turn is not 'What describes <type> in the "
                        "text?'", field=field, value=turn["value"], **where)
      pending_type = match.group(1)
      types.setdefault(pending_type, None)
    elif pending_type is not None:
      answers.extend((pending_type, a) for a in
                     _answer_list(turn["value"], where, f"{field}.value"))
      pending_type = None
  record = Record(id=f"{dataset}-{item_id}", text=passage,
                  entities=locate_answers(passage, answers, stats),
                  dataset=dataset, split=split, entity_types=tuple(types))
  record.validate(path=path)
  return record


def read_universalner_conversations(
    path: str, *, dataset: str, split: str, skip_invalid: bool = False,
    stats: ReadStats | None = None) -> list[Record]:
  """One Record per conversation (passage) of a UniversalNER JSON file."""
  items = load_json_list(path, "conversations")
  records = []
  for index, item in enumerate(items):
    try:
      records.append(_conversation_record(path, index, item, dataset, split,
                                          stats))
    except DataError as e:
      skip_or_raise(e, reason="invalid_conversation",
                    skip_invalid=skip_invalid, stats=stats)
  if stats is not None:
    stats.read += len(records)
  return records


def read_pile_ner_pairs(path: str, *, dataset: str = "pile_ner", split: str,
                        skip_invalid: bool = False,
                        stats: ReadStats | None = None) -> list[Record]:
  """Groups one-(passage, type)-per-line JSONL (SLIMER's Pile-NER) by passage.

  Lines `{"doc_question_pairID": "<passage id>:<k>", "tagName", "input",
  "output"}`; the passage id is the part before the last ':'. Records come in
  order of first appearance; `entity_types` lists the passage's asked types
  in line order (negatives, `output == "[]"`, included). Ids are
  `<dataset>-<passage id>`, independent of `split`, so callers can split
  passages by a hash of the id.
  """
  passages: dict[str, dict] = collections.OrderedDict()
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      where = dict(path=path, line=line_number)
      try:
        pair = _pile_pair(line, where)
        passage = passages.setdefault(
            pair["id"], {"text": pair["input"], "line": line_number,
                         "types": {}, "answers": []})
        if passage["text"] != pair["input"]:
          raise DataError(f"passage {pair['id']!r} has a different text than "
                          f"on line {passage['line']}", field="input",
                          value=pair["input"], **where)
      except DataError as e:
        skip_or_raise(e, reason="invalid_line", skip_invalid=skip_invalid,
                      stats=stats)
        continue
      passage["types"].setdefault(pair["tagName"], None)
      passage["answers"].extend((pair["tagName"], a) for a in pair["spans"])
  records = []
  for passage_id, p in passages.items():
    record = Record(id=f"{dataset}-{passage_id}", text=p["text"],
                    entities=locate_answers(p["text"], p["answers"], stats),
                    dataset=dataset, split=split,
                    entity_types=tuple(p["types"]))
    record.validate(path=path, line=p["line"])
    records.append(record)
  if stats is not None:
    stats.read += len(records)
  return records


def _pile_pair(line: str, where: dict) -> dict:
  try:
    obj = json.loads(line)
  except json.JSONDecodeError as e:
    raise DataError(f"malformed JSON: {e.msg}", **where) from None
  for field in ("doc_question_pairID", "tagName", "input", "output"):
    if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
      raise DataError("missing or non-string field", field=field,
                      value=obj, **where)
  return {"id": obj["doc_question_pairID"].rsplit(":", 1)[0],
          "tagName": obj["tagName"], "input": obj["input"],
          "spans": _answer_list(obj["output"], where, "output")}
