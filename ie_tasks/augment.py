"""Mention replacement: NER training data augmentation (Dai and Adel, 2020).

A model trained from scratch on a small NER set memorises its entities: asked
about a new sentence it writes training-set names that are not in the text
(seen on CoNLL-2003: "Tom Lehman" for "Tom Moody"). Mention replacement adds
copies of each training record in which every entity mention is, with
probability `rate`, swapped for another mention of the same type drawn from
the split, so the only way to get the answer right is to read it off the
input. Offsets are rebuilt, so the copies are ordinary valid records.

Train split only, NER-family tasks only (records with relations or events are
left alone: their arguments would need the same surgery). gin:

  ie_tasks.mention_replacement_options.copies = 1   # augmented copies per record
  ie_tasks.mention_replacement_options.rate = 0.5   # chance each mention is swapped
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import gin
import numpy as np

from ie_tasks.records import Entity, Record


@gin.configurable(module="ie_tasks")
def mention_replacement_options(*, copies: int = 0, rate: float = 0.5,
                                seed: int = 0) -> dict[str, float]:
  """The knobs (read when a task's data is built); copies 0 turns it off."""
  if copies < 0 or not 0.0 <= rate <= 1.0:
    raise ValueError(f"mention_replacement_options: copies must be >= 0 and rate in "
                     f"[0, 1], got copies={copies}, rate={rate}")
  return {"copies": copies, "rate": rate, "seed": seed}


def _is_flat(entities: Sequence[Entity]) -> bool:
  spans = sorted((e.start, e.end) for e in entities)
  return all(prev[1] <= cur[0] for prev, cur in zip(spans, spans[1:]))


def mention_pool(records: Sequence[Record]) -> dict[str, list[str]]:
  """Distinct mention texts per entity type, in first-seen order."""
  pool: dict[str, dict[str, None]] = {}
  for record in records:
    for entity in record.entities:
      pool.setdefault(entity.type, {}).setdefault(entity.text, None)
  return {etype: list(texts) for etype, texts in pool.items()}


def replace_mentions(record: Record, pool: dict[str, list[str]], rate: float,
                     rng: np.random.Generator) -> Record | None:
  """A copy of `record` with mentions swapped; None when nothing changed or
  the record cannot be rewritten (nested entities, relations or events)."""
  if not record.entities or record.relations or record.events or not _is_flat(record.entities):
    return None
  pieces, entities, cursor, length, changed = [], [], 0, 0, False
  for entity in sorted(record.entities):
    pieces.append(record.text[cursor:entity.start])
    start = length + entity.start - cursor
    mention = entity.text
    candidates = pool.get(entity.type, ())
    if len(candidates) > 1 and rng.random() < rate:
      mention = candidates[int(rng.integers(len(candidates)))]
      changed = changed or mention != entity.text
    pieces.append(mention)
    entities.append(Entity(start, start + len(mention), entity.type, mention))
    cursor, length = entity.end, start + len(mention)
  if not changed:
    return None
  pieces.append(record.text[cursor:])
  return dataclasses.replace(record, text="".join(pieces), entities=tuple(entities))


def augment_records(records: Sequence[Record], *, copies: int, rate: float,
                    seed: int) -> list[Record]:
  """The records followed by up to `copies` mention-replaced copies of each.

  Copy k of record i has id "<id>#mr<k>"; the same seed gives the same copies.
  """
  out = list(records)
  if copies <= 0 or rate <= 0.0:
    return out
  pool = mention_pool(records)
  rng = np.random.default_rng([seed, len(records)])
  for k in range(copies):
    for record in records:
      augmented = replace_mentions(record, pool, rate, rng)
      if augmented is not None:
        out.append(dataclasses.replace(augmented, id=f"{record.id}#mr{k}"))
  return out
