"""UniversalNER conversation-style examples, flattened for an encoder-decoder.

UniversalNER asks one question per (passage, entity type) in a chat:
  USER: Text: {passage}   ASSISTANT: I've read this text.
  USER: What describes {type} in the text?   ASSISTANT: ["span", ...]
An encoder-decoder has no chat turns, so the conversation becomes one input
string and the last answer becomes the target:

  inputs:  "[Dataset: conll2003 \\n]Text: {passage}\\n"
           "USER: What describes {type} in the text?[ {definition}]\\nASSISTANT:"
  targets: '["Peter Blackburn", "BRUSSELS"]'   ('[]' for a negative type)

The dataset tag is the paper's supervised variant ("Dataset: name \\n" prefix);
a definition (SLIMER-style, optional) is appended to the question as
" Definition: ...". Spans are deduplicated and listed in order of first
appearance in the passage.

Types asked per passage: the types with spans, then the record's own
negatives (`record.entity_types` without a span: the annotator was asked and
found none), then `num_negatives` extra types drawn from the corpus type
frequency by a `TypeSampler`, seeded per (seed, dataset, record id).
"""
from __future__ import annotations

import json
from typing import Mapping, Sequence

from ie_tasks.records import Record
from ie_tasks.templates import selection

TASK = "CONV"  # the "task" field of conversation examples
QUESTION = "What describes {type} in the text?"


class TypeSampler:
  """Draws negative entity types with probability proportional to frequency.

  Weighted sampling without replacement (Efraimidis-Spirakis keys), driven by
  the caller's random generator so every draw is reproducible.
  """

  def __init__(self, type_counts: Mapping[str, int]):
    self.types = [t for t, c in type_counts.items() if c > 0]
    self.weights = [float(type_counts[t]) for t in self.types]
    if not self.types:
      raise ValueError("TypeSampler needs at least one type with a positive "
                       "count")

  def sample(self, k: int, rng, exclude: Sequence[str] = ()) -> list[str]:
    """Up to k distinct types not in `exclude` (case-insensitive)."""
    excluded = {t.lower() for t in exclude}
    keyed = []
    for t, w in zip(self.types, self.weights):
      if t.lower() in excluded:
        continue
      keyed.append((rng.random() ** (1.0 / w), t))
    keyed.sort(reverse=True)
    return [t for _, t in keyed[:k]]

  @classmethod
  def from_records(cls, records: Sequence[Record]) -> "TypeSampler":
    """Counts entity mentions per type over the records (the corpus)."""
    counts: dict[str, int] = {}
    for r in records:
      for e in r.entities:
        counts[e.type] = counts.get(e.type, 0) + 1
    return cls(counts)


def spans_of_type(record: Record, entity_type: str) -> list[str]:
  """Span texts of one type, deduplicated, in order of first appearance."""
  entities = sorted((e for e in record.entities if e.type == entity_type),
                    key=lambda e: (e.start, e.end))
  return list(dict.fromkeys(e.text for e in entities))


def types_to_ask(record: Record, *, seed: int = 0,
                 type_sampler: TypeSampler | None = None,
                 num_negatives: int = 2) -> list[str]:
  asked: list[str] = []
  for e in sorted(record.entities, key=lambda e: (e.start, e.end)):
    if e.type not in asked:
      asked.append(e.type)
  for t in record.entity_types:
    if t not in asked:
      asked.append(t)
  if type_sampler is not None and num_negatives > 0:
    rng = selection.rng_for(seed, "negatives", record.dataset, record.id)
    asked.extend(type_sampler.sample(num_negatives, rng, exclude=asked))
  return asked


def make_input(passage: str, entity_type: str, *, dataset: str | None = None,
               definition: str | None = None) -> str:
  tag = f"Dataset: {dataset} \n" if dataset else ""
  question = QUESTION.format(type=entity_type)
  if definition:
    question += f" Definition: {definition}"
  return f"{tag}Text: {passage}\nUSER: {question}\nASSISTANT:"


def make_examples(record: Record, *, seed: int = 0,
                  type_sampler: TypeSampler | None = None,
                  num_negatives: int = 2, dataset_tag: bool = False,
                  definitions: Mapping[str, str] | None = None,
                  types: Sequence[str] | None = None) -> list[dict[str, str]]:
  """One example per (passage, type).

  Args:
    record: the passage with its entities (and entity_types = types asked).
    seed: seeds the negative-type draw (with the dataset and record id).
    type_sampler: draws extra negatives by corpus frequency; None: none drawn.
    num_negatives: how many extra negatives to draw per passage.
    dataset_tag: prefix "Dataset: <record.dataset> \\n" (supervised variant).
    definitions: optional {type: definition} appended to the question.
    types: ask exactly these types instead (e.g. a zero-shot label set).
  Returns: example dicts with string fields "inputs", "targets", "task"
    ("CONV"), "dataset", "id" ("<record id>:<type>"), "labels" (JSON list with
    the asked type), "gold" (JSON list of spans, as the target), "text".
  """
  asked = list(types) if types is not None else types_to_ask(
      record, seed=seed, type_sampler=type_sampler,
      num_negatives=num_negatives)
  examples = []
  for entity_type in asked:
    spans = spans_of_type(record, entity_type)
    definition = (definitions or {}).get(entity_type)
    examples.append({
        "inputs": make_input(record.text, entity_type,
                             dataset=record.dataset if dataset_tag else None,
                             definition=definition),
        "targets": json.dumps(spans, ensure_ascii=False),
        "task": TASK,
        "dataset": record.dataset,
        "id": f"{record.id}:{entity_type}",
        "labels": json.dumps([entity_type], ensure_ascii=False),
        "gold": json.dumps(spans, ensure_ascii=False),
        "text": record.text,
    })
  return examples
