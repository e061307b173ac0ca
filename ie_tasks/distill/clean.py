"""Cleans teacher annotations into a distilled NER dataset (UniversalNER recipe).

Per passage (`clean_passage`, pure, reused by the Beam pipeline):
  1. parse the raw answer (`parse_answers.parse_answer`); an unparsable answer
     drops the passage (it is not a passage without entities);
  2. normalise each type (`normalize_type`): lower-case, `_` -> space, strip
     surrounding quotes/punctuation, collapse whitespace, singularise the
     head noun ("persons" -> "person", "companies" -> "company",
     "sports teams" -> "sports team", "groups of people" -> "group of
     people"; "news", "series", "physics", ...
     stay as they are, see `_KEEP_AS_IS`); `type_map` overrides any of it;
  3. drop generic types (`generic_types`, default `DEFAULT_GENERIC_TYPES`:
     "other", "misc", "entity", "thing", ...), empty entities/types;
  4. locate each entity at EVERY whole-word occurrence in the passage (as the
     Pile-NER reader does, `readers.conversation.locate_answers`); an entity
     not found verbatim is dropped (the teacher paraphrased or invented it);
  5. drop duplicate (entity, type) pairs of the same answer.
Corpus level (needs every passage; `type_filter`):
  6. `max_type_frequency`: drop a type named in more than this fraction of
     the passages (too frequent to be informative; off by default);
  7. `min_type_count`: drop a type named in fewer than this many passages.
A type's count is the number of passages whose cleaned answer names it;
`type_counts.json` holds the counts after cleaning (what the negative-type
sampler draws from). Every dropped item is counted by reason in the report.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ie_tasks.distill import parse_answers
from ie_tasks.readers.conversation import locate_answers
from ie_tasks.records import DataError, Record

DEFAULT_GENERIC_TYPES = (
    "other", "others", "misc", "miscellaneous", "else", "entity",
    "named entity", "thing", "object", "item", "unknown", "none", "n/a",
    "na", "null", "type", "concept", "term", "noun", "proper noun")

# Words ending in "s" that are singular (or have no singular we want).
_KEEP_AS_IS = frozenset("""
news series species means headquarters physics mathematics economics politics
statistics genetics electronics linguistics athletics gymnastics ethics
logistics aerobics analytics robotics mechanics semantics graphics ethics
status virus campus bus gas lens bias alias atlas canvas chaos corpus census
apparatus analysis diagnosis thesis basis crisis hypothesis synopsis axis
business address process class glass access boss mass press congress progress
success loss cross chess dress grass kiss
sars aids covid
""".split())
_IRREGULAR = {"people": "person", "men": "man", "women": "woman",
              "children": "child", "mice": "mouse", "geese": "goose",
              "teeth": "tooth", "feet": "foot", "criteria": "criterion",
              "phenomena": "phenomenon", "viruses": "virus",
              "statuses": "status", "buses": "bus", "campuses": "campus",
              "analyses": "analysis", "diagnoses": "diagnosis",
              "theses": "thesis", "crises": "crisis", "hypotheses": "hypothesis",
              "indices": "index", "matrices": "matrix", "wolves": "wolf",
              "knives": "knife", "lives": "life", "leaves": "leaf",
              "shelves": "shelf"}
# "-ies" plurals whose singular ends in "-ie", not "-y".
_IE_PLURALS = frozenset("""
movies cookies zombies calories pies ties lies hippies rookies goalies selfies
brownies prairies genies smoothies freebies
""".split())


def singularize(word: str) -> str:
  """A simple English singular of one lower-case word (rules, not a lexicon)."""
  if word in _IRREGULAR:
    return _IRREGULAR[word]
  if len(word) <= 3 or word in _KEEP_AS_IS or not word.endswith("s"):
    return word
  if word.endswith("ics"):
    return word  # physics, politics, ... (a "-ics" type is rarely a plural)
  if word.endswith("ies"):
    return word[:-1] if word in _IE_PLURALS else word[:-3] + "y"
  if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
    return word[:-2]
  if word.endswith(("ss", "us", "is", "'s")):
    return word
  return word[:-1]


_EDGE_PUNCTUATION = " \t\n\"'`.,;:!?*-_()[]{}<>"


def normalize_type(raw: str, type_map: Mapping[str, str] | None = None) -> str:
  """'Sports_Teams ' -> 'sports team'; `type_map` (normalised keys) wins."""
  text = raw.replace("_", " ").strip(_EDGE_PUNCTUATION).lower()
  text = re.sub(r"\s+", " ", text)
  if type_map and text in type_map:
    return type_map[text]
  # The head noun is the last word, or the one before "of" ("groups of
  # people" -> "group of people").
  head, of, rest = text.partition(" of ")
  words = head.split(" ")
  words[-1] = singularize(words[-1])
  text = " ".join(words) + (of + rest if of else "")
  if type_map and text in type_map:
    return type_map[text]
  return text


def normalize_entity(raw: str) -> str:
  """Strips whitespace and quotes the teacher wrapped around the span."""
  text = raw.strip()
  while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
    text = text[1:-1].strip()
  return text


@dataclasses.dataclass(frozen=True)
class CleanOptions:
  """Knobs of the cleaning; see the module doc for what each does."""
  dataset: str
  split: str = "train"
  generic_types: Sequence[str] = DEFAULT_GENERIC_TYPES
  min_type_count: int = 1
  max_type_frequency: float | None = None
  type_map: Mapping[str, str] | None = None
  keep_empty: bool = True  # keep passages whose answer lists no entity


class Counts(collections.Counter):
  """Counts by reason (passages and pairs), mergeable across workers."""


def clean_passage(annotation: Mapping[str, Any], options: CleanOptions,
                  counts: Counts) -> Record | None:
  """One annotation line -> a Record (corpus-level filters not applied yet).

  Returns None when the passage is dropped (reason counted in `counts`).
  """
  passage = annotation["text"]
  parsed = parse_answers.parse_answer(annotation.get("response"))
  for note in parsed.notes:
    counts[f"answers_{note}"] += 1
  if not parsed.ok:
    counts["passages_dropped_unparsable_answer"] += 1
    return None
  counts["pairs_parsed"] += len(parsed.pairs)
  counts["pairs_dropped_not_a_pair"] += parsed.bad_items
  generic = {normalize_type(t) for t in options.generic_types}
  kept: dict[tuple[str, str], None] = {}
  for raw_entity, raw_type in parsed.pairs:
    entity, entity_type = normalize_entity(raw_entity), normalize_type(
        raw_type, options.type_map)
    if entity_type != raw_type:
      counts["types_normalized"] += 1
    if not entity or not entity_type:
      counts["pairs_dropped_empty"] += 1
    elif entity_type in generic:
      counts["pairs_dropped_generic_type"] += 1
    elif not locate_answers(passage, [(entity_type, entity)]):
      counts["pairs_dropped_not_in_passage"] += 1
    elif (entity, entity_type) in kept:
      counts["pairs_dropped_duplicate"] += 1
    else:
      kept[(entity, entity_type)] = None
  answers = [(t, e) for e, t in kept]
  record = Record(
      id=f"{options.dataset}-{annotation['id']}", text=passage,
      entities=locate_answers(passage, answers), dataset=options.dataset,
      split=options.split,
      entity_types=tuple(dict.fromkeys(t for _, t in kept)))
  return record


def passage_type_counts(records: Iterable[Record]) -> collections.Counter:
  """type -> number of passages whose cleaned answer names it."""
  counts: collections.Counter = collections.Counter()
  for record in records:
    counts.update(set(record.entity_types))
  return counts


def type_filter(type_counts: Mapping[str, int], num_passages: int,
                options: CleanOptions) -> dict[str, str]:
  """Types to drop corpus-wide -> reason ("too_frequent_type"/"rare_type")."""
  dropped = {}
  for entity_type, count in type_counts.items():
    if (options.max_type_frequency is not None and num_passages and
        count / num_passages > options.max_type_frequency):
      dropped[entity_type] = "too_frequent_type"
    elif count < options.min_type_count:
      dropped[entity_type] = "rare_type"
  return dropped


def apply_type_filter(record: Record, dropped: Mapping[str, str],
                      counts: Counts) -> Record | None:
  """Removes dropped types from a record; None if nothing is left to keep."""
  if dropped:
    for entity_type in record.entity_types:
      if entity_type in dropped:
        # Counted per (passage, type), as the answer pairs were merged.
        counts[f"pairs_dropped_{dropped[entity_type]}"] += sum(
            1 for _ in dict.fromkeys(
                e.text for e in record.entities if e.type == entity_type))
    record = dataclasses.replace(
        record,
        entities=tuple(e for e in record.entities if e.type not in dropped),
        entity_types=tuple(t for t in record.entity_types
                           if t not in dropped))
  return record


def finish_record(record: Record, options: CleanOptions,
                  counts: Counts) -> Record | None:
  """Drops (or keeps) a passage left without entities; counts what is kept."""
  if not record.entities:
    if not options.keep_empty:
      counts["passages_dropped_no_entities"] += 1
      return None
    counts["passages_without_entities"] += 1
  counts["passages_written"] += 1
  counts["entity_mentions_written"] += len(record.entities)
  return record


def iter_annotations(path: str, *, skip_invalid: bool, counts: Counts
                     ) -> Iterator[dict]:
  """Annotation JSONL lines (contract format); bad lines raise or are counted."""
  seen: set[str] = set()
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      counts["lines_read"] += 1
      try:
        annotation = _annotation(line, path, line_number)
      except DataError:
        if not skip_invalid:
          raise
        counts["lines_skipped_invalid"] += 1
        continue
      if annotation["id"] in seen:
        counts["lines_skipped_duplicate_id"] += 1
        continue
      seen.add(annotation["id"])
      yield annotation


def _annotation(line: str, path: str, line_number: int) -> dict:
  try:
    obj = json.loads(line)
  except json.JSONDecodeError as e:
    raise DataError(f"malformed JSON: {e.msg}", path=path,
                    line=line_number) from None
  if not isinstance(obj, dict):
    raise DataError("expected a JSON object", path=path, line=line_number,
                    value=obj)
  for field in ("id", "text", "response"):
    if not isinstance(obj.get(field), str):
      raise DataError("missing or non-string field", path=path,
                      line=line_number, field=field, value=obj.get(field))
  return obj


def clean_records(annotations: Iterable[Mapping[str, Any]],
                  options: CleanOptions, counts: Counts
                  ) -> tuple[list[Record], dict[str, int]]:
  """All stages in memory: (records, type counts after cleaning)."""
  records = [r for a in annotations
             if (r := clean_passage(a, options, counts)) is not None]
  dropped = type_filter(passage_type_counts(records), len(records), options)
  finished = []
  for record in records:
    record = apply_type_filter(record, dropped, counts)
    record = finish_record(record, options, counts)
    if record is not None:
      finished.append(record)
  return finished, dict(passage_type_counts(finished).most_common())


def make_report(counts: Mapping[str, int], type_counts: Mapping[str, int],
                options: CleanOptions, source: str) -> dict[str, Any]:
  return {
      "source": source,
      "dataset": options.dataset,
      "options": {
          "generic_types": list(options.generic_types),
          "min_type_count": options.min_type_count,
          "max_type_frequency": options.max_type_frequency,
          "type_map": dict(options.type_map or {}),
          "keep_empty": options.keep_empty,
      },
      "counts": dict(sorted(counts.items())),
      "num_types": len(type_counts),
  }


def clean_annotations(annotations_path: str, output_dir: str, *, dataset: str,
                      split: str = "train", min_type_count: int = 1,
                      max_type_frequency: float | None = None,
                      generic_types: Sequence[str] = DEFAULT_GENERIC_TYPES,
                      type_map: Mapping[str, str] | None = None,
                      keep_empty: bool = True,
                      skip_invalid: bool = False) -> dict[str, Any]:
  """Reads annotation JSONL, cleans it, writes the dataset dir; returns the report.

  `output_dir` gets records.jsonl, type_counts.json and report.json, written
  atomically (`write.write_dataset`). A malformed line raises DataError
  naming the file and line, or with `skip_invalid` is counted and skipped.
  """
  from ie_tasks.distill import write
  options = CleanOptions(dataset=dataset, split=split,
                         generic_types=tuple(generic_types),
                         min_type_count=min_type_count,
                         max_type_frequency=max_type_frequency,
                         type_map=dict(type_map or {}), keep_empty=keep_empty)
  counts = Counts()
  records, type_counts = clean_records(
      iter_annotations(annotations_path, skip_invalid=skip_invalid,
                       counts=counts), options, counts)
  report = make_report(counts, type_counts, options,
                       os.path.abspath(annotations_path))
  write.write_dataset(output_dir, records, type_counts, report)
  return report
