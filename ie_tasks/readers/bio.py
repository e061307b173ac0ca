"""Reader for BIO / IOB1 / BIOES (BILOU) column files (CoNLL-2003, CrossNER, MIT).

One token per line, columns separated by tabs (or spaces when a line has no
tab), a blank line between sentences, `-DOCSTART-` lines ignored. Tokens are
joined with single spaces into `Record.text`; entity offsets are char offsets
into that text. MIT files put the tag FIRST: `token_column=1, tag_column=0`.

Schemes (`scheme=`), chosen per file because the files differ:
- "bio" (IOB2, default): every entity starts with B-; an I- that does not
  continue an entity of the same type is an invalid sequence: DataError
  naming file and line (or, with `skip_invalid`, the sentence is skipped and
  counted).
- "iob1": an I- that does not continue an entity starts a new one (how IOB1
  files and most converters read it); B- only separates adjacent entities of
  the same type. Use it to *repair* sloppy BIO files on purpose.
- "bioes": B/I/E/S prefixes (BILOU's L/U accepted as E/S); an entity must be
  a single S or B I* E of one type.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Sequence

from ie_tasks.readers.spans import join_tokens
from ie_tasks.readers.stats import ReadStats, skip_or_raise
from ie_tasks.records import DataError, Entity, Record

SCHEMES = ("bio", "iob1", "bioes")
_PREFIXES = {"bio": "BI", "iob1": "BI", "bioes": "BIES"}
_BILOU_ALIASES = {"L": "E", "U": "S"}


class TagSequenceError(ValueError):
  """An invalid tag sequence; `position` is the index of the offending tag."""

  def __init__(self, message: str, position: int, tag: str):
    super().__init__(message)
    self.position, self.tag = position, tag


def split_tag(tag: str, scheme: str = "bio") -> tuple[str, str | None]:
  """'B-PER' -> ('B', 'PER'); 'O' -> ('O', None). Raises ValueError if unknown."""
  if tag == "O":
    return "O", None
  prefix, sep, label = tag.partition("-")
  prefix = _BILOU_ALIASES.get(prefix, prefix) if scheme == "bioes" else prefix
  if not sep or not label or prefix not in _PREFIXES[scheme]:
    raise ValueError(f"unknown tag {tag!r} for scheme {scheme!r}")
  return prefix, label


def tags_to_spans(tags: Sequence[str],
                  scheme: str = "bio") -> list[tuple[int, int, str]]:
  """Token spans `(start, end_exclusive, type)` of a tag sequence.

  Raises TagSequenceError (unknown tag or invalid sequence for the scheme).
  """
  if scheme not in SCHEMES:
    raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
  spans: list[tuple[int, int, str]] = []
  open_start, open_type = None, None

  def close(end: int) -> None:
    nonlocal open_start, open_type
    if open_start is not None:
      spans.append((open_start, end, open_type))
    open_start, open_type = None, None

  for i, tag in enumerate(tags):
    try:
      prefix, label = split_tag(tag, scheme)
    except ValueError as e:
      raise TagSequenceError(str(e), i, tag) from None
    continues = open_start is not None and label == open_type
    if prefix == "O":
      if scheme == "bioes" and open_start is not None:
        raise TagSequenceError(f"entity not closed by E- before {tag!r}", i, tag)
      close(i)
    elif prefix == "B":
      if scheme == "bioes" and open_start is not None:
        raise TagSequenceError(f"entity not closed by E- before {tag!r}", i, tag)
      close(i)
      open_start, open_type = i, label
    elif prefix == "S":
      if open_start is not None:
        raise TagSequenceError(f"entity not closed by E- before {tag!r}", i, tag)
      spans.append((i, i + 1, label))
    elif prefix in ("I", "E"):
      if not continues:
        if scheme != "iob1":
          raise TagSequenceError(
              f"{tag!r} does not continue an entity of type {label!r}", i, tag)
        close(i)
        open_start, open_type = i, label
      if prefix == "E":
        close(i + 1)
  if open_start is not None and scheme == "bioes":
    raise TagSequenceError("entity not closed by E- at the end", len(tags), "")
  close(len(tags))
  return spans


def _sentences(path: str) -> Iterator[tuple[int, list[tuple[int, list[str]]]]]:
  """(first line number, [(line number, columns)]) per sentence."""
  sentence: list[tuple[int, list[str]]] = []
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      line = line.rstrip("\r\n")
      if not line.strip() or line.startswith("-DOCSTART-") or (
          "-DOCSTART-" in line.split("\t")[:2]):
        if sentence:
          yield sentence[0][0], sentence
        sentence = []
        continue
      columns = line.split("\t") if "\t" in line else line.split()
      sentence.append((line_number, columns))
  if sentence:
    yield sentence[0][0], sentence


def read_bio(path: str, *, dataset: str, split: str, token_column: int = 0,
             tag_column: int = -1, type_map: Mapping[str, str] | None = None,
             labels: Sequence[str] | None = None, scheme: str = "bio",
             skip_invalid: bool = False,
             stats: ReadStats | None = None) -> list[Record]:
  """Reads a column file into one Record per sentence.

  `type_map` renames raw types (e.g. `label_maps.CROSSNER_TO_IE_INSTRUCTIONS`);
  `labels` (after mapping) is the label universe: it becomes every record's
  `entity_types`, and a tag whose type is not in it is an unknown tag. Without
  `labels`, `entity_types` is the sorted set of types seen in the file.
  """
  type_map = dict(type_map or {})
  allowed = None if labels is None else set(labels)
  records: list[Record] = []
  for index, (first_line, rows) in enumerate(_sentences(path)):
    try:
      record = _sentence_record(path, rows, index, dataset, split,
                                token_column, tag_column, type_map, allowed,
                                scheme)
    except DataError as e:
      skip_or_raise(e, reason="invalid_sentence", skip_invalid=skip_invalid,
                    stats=stats)
      continue
    records.append(record)
  universe = (tuple(labels) if labels is not None else
              tuple(sorted({e.type for r in records for e in r.entities})))
  records = [dataclasses.replace(r, entity_types=universe) for r in records]
  if stats is not None:
    stats.read += len(records)
  return records


def _sentence_record(path, rows, index, dataset, split, token_column,
                     tag_column, type_map, allowed, scheme) -> Record:
  tokens, tags = [], []
  for line_number, columns in rows:
    try:
      tokens.append(columns[token_column])
      tags.append(columns[tag_column])
    except IndexError:
      raise DataError(
          f"expected a token column {token_column} and a tag column "
          f"{tag_column}", path=path, line=line_number, field="columns",
          value=columns) from None
  record_id = f"{dataset}-{split}-{index}"
  try:
    token_spans = tags_to_spans(tags, scheme)
  except TagSequenceError as e:
    line = rows[min(e.position, len(rows) - 1)][0]
    raise DataError(f"invalid {scheme} tag sequence: {e}", path=path,
                    line=line, record=record_id, field="tag",
                    value=e.tag) from None
  text, offsets = join_tokens(tokens)
  entities = []
  for start, end, raw_type in token_spans:
    entity_type = type_map.get(raw_type, raw_type)
    if allowed is not None and entity_type not in allowed:
      raise DataError(
          f"unknown tag type {raw_type!r} (mapped to {entity_type!r}) not in "
          f"labels {sorted(allowed)}", path=path, line=rows[start][0],
          record=record_id, field="tag", value=tags[start])
    char_start, char_end = offsets[start][0], offsets[end - 1][1]
    entities.append(Entity(char_start, char_end, entity_type,
                           text[char_start:char_end]))
  record = Record(id=record_id, text=text, entities=tuple(entities),
                  dataset=dataset, split=split)
  record.validate(path=path, line=rows[0][0])
  return record
