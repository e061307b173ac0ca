"""Mention replacement: NER training data augmentation (Dai and Adel, 2020).

A model trained from scratch on a small NER set memorises its entities: asked
about a new sentence it writes training-set names that are not in the text
(seen on CoNLL-2003: "Tom Lehman" for "Tom Moody"). Mention replacement adds
copies of each training record in which every entity mention is, with
probability `rate`, swapped for another mention of the same type drawn from
the split, so the only way to get the answer right is to read it off the
input. Offsets are rebuilt, so the copies are ordinary valid records.

Swapping in other training mentions still draws from a closed set the model
can learn by heart; on CoNLL-2003 test it wrote "Naimki" for "Nadim Ladki".
With `novel_rate`, that share of the swapped mentions are new names instead:
each capitalised word is the head of one training word of the type joined to
the tail of another ("Nad" + "itta"), in the original word's casing, so the
answer can only be copied from the input, piece by piece.

Train split only, NER-family tasks only (records with relations or events are
left alone: their arguments would need the same surgery). gin:

  ie_tasks.mention_replacement_options.copies = 1   # augmented copies per record
  ie_tasks.mention_replacement_options.rate = 0.5   # chance each mention is swapped
  ie_tasks.mention_replacement_options.novel_rate = 0.5  # share of swaps that are new names
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import gin
import numpy as np

from ie_tasks.records import Entity, Record


@gin.configurable(module="ie_tasks")
def mention_replacement_options(*, copies: int = 0, rate: float = 0.5,
                                novel_rate: float = 0.0,
                                seed: int = 0) -> dict[str, float]:
  """The knobs (read when a task's data is built); copies 0 turns it off."""
  if copies < 0 or not 0.0 <= rate <= 1.0 or not 0.0 <= novel_rate <= 1.0:
    raise ValueError(f"mention_replacement_options: copies must be >= 0 and rate, "
                     f"novel_rate in [0, 1], got copies={copies}, rate={rate}, "
                     f"novel_rate={novel_rate}")
  return {"copies": copies, "rate": rate, "novel_rate": novel_rate, "seed": seed}


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


def word_pool(pool: dict[str, list[str]]) -> dict[str, list[str]]:
  """Per type, the distinct capitalised words (3+ letters) of its mentions."""
  words = {}
  for etype, mentions in pool.items():
    seen = {w: None for m in mentions for w in m.split()
            if len(w) >= 3 and w.isalpha() and w[0].isupper()}
    words[etype] = list(seen)
  return words


def _match_case(word: str, like: str) -> str:
  if like.isupper():
    return word.upper()
  return word[:1].upper() + word[1:].lower()


def novel_mention(mention: str, words: Sequence[str], rng: np.random.Generator) -> str:
  """`mention` with each capitalised word ("Bank", "FC", "LANKA") replaced by a
  head + tail blend of two random `words`; other words ("of", "1860", "U.S.")
  are kept."""
  if len(words) < 2:
    return mention
  out = []
  for word in mention.split(" "):
    if len(word) >= 2 and word.isalpha() and word[0].isupper():
      a, b = (words[int(i)] for i in rng.integers(len(words), size=2))
      head = a[:int(rng.integers(1, len(a)))]
      tail = b[int(rng.integers(1, len(b))):]
      word = _match_case(head + tail, word)
    out.append(word)
  return " ".join(out)


def replace_mentions(record: Record, pool: dict[str, list[str]], rate: float,
                     rng: np.random.Generator, *, novel_rate: float = 0.0,
                     words: dict[str, list[str]] | None = None) -> Record | None:
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
      if novel_rate and rng.random() < novel_rate:
        mention = novel_mention(mention, (words or {}).get(entity.type, ()), rng)
      changed = changed or mention != entity.text
    pieces.append(mention)
    entities.append(Entity(start, start + len(mention), entity.type, mention))
    cursor, length = entity.end, start + len(mention)
  if not changed:
    return None
  pieces.append(record.text[cursor:])
  return dataclasses.replace(record, text="".join(pieces), entities=tuple(entities))


def augment_records(records: Sequence[Record], *, copies: int, rate: float,
                    seed: int, novel_rate: float = 0.0) -> list[Record]:
  """The records followed by up to `copies` mention-replaced copies of each.

  Copy k of record i has id "<id>#mr<k>"; the same seed gives the same copies.
  """
  out = list(records)
  if copies <= 0 or rate <= 0.0:
    return out
  pool = mention_pool(records)
  words = word_pool(pool) if novel_rate else None
  rng = np.random.default_rng([seed, len(records)])
  for k in range(copies):
    for record in records:
      augmented = replace_mentions(record, pool, rate, rng, novel_rate=novel_rate,
                                   words=words)
      if augmented is not None:
        out.append(dataclasses.replace(augmented, id=f"{record.id}#mr{k}"))
  return out
