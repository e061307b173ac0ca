"""Reader for CASIE cybersecurity event annotations: documents -> sentences.

Each `annotation/<id>.json` holds `content` (the article) and
`cyberevent.hopper[].events[]`, each event with a `nugget` (trigger,
`startOffset`/`endOffset`/`text` into `content`), `type`/`subtype` and
`argument[]` (offsets, `text`, `role.type`).

What this reader decides (each choice counted in `stats`):
- Sentences: a rule-based splitter (end punctuation + space + capital or
  digit, not after a known abbreviation or an initial). A boundary that would
  cut through an annotated trigger or argument is dropped (the sentences are
  merged: `notes["sentences_merged"]`). Every sentence becomes a Record
  (sentences without events are the negatives of event extraction); spans
  are rebased to the sentence. Whitespace characters in the text become plain
  spaces one for one, so offsets stay right.
- An event belongs to its trigger's sentence; arguments lying in another
  sentence are dropped and counted (`notes["arguments_outside_sentence"]`).
- Offsets: about 4% of mentions in the published files are shifted by a
  character or two (non-ASCII characters counted differently). A mention
  whose text does not match its offsets is moved to the nearest occurrence
  of its text within `max_shift` chars (`repaired["offset_shifted"]`), else
  dropped (`skipped["offset_mismatch"]`); with `strict=True` any mismatch is
  a DataError.
- Types: event type = the subtype in readable form
  (`label_maps.CASIE_EVENT_TYPES`: "DiscoverVulnerability" -> "discover
  vulnerability", "Databreach" -> "data breach", ...); roles lower-cased with
  spaces (`label_maps.casie_role_name`: "Compromised-Data" -> "compromised
  data").
- Splits: CASIE has no official split. A document goes to train/dev/test by
  a stable hash of its id (sha1 mod 10: 0-7 train, 8 dev, 9 test), so the
  split never depends on file order or on which documents are present.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
from typing import Any

from ie_tasks.readers import label_maps
from ie_tasks.readers.spans import nearest_occurrence
from ie_tasks.readers.stats import ReadStats, skip_or_raise
from ie_tasks.records import (Argument, DataError, Event, Record, Span,
                              load_json)

SPLITS = ("train", "dev", "test")
_END_MARKER = "</text>"
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(\s+)(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st inc corp co ltd llc plc no vs etc e.g i.e "
    "u.s u.k jan feb mar apr jun jul aug sep sept oct nov dec gov sen rep "
    "gen col lt fig approx dept univ".split())


def split_of(doc_id: str) -> str:
  """The deterministic split of a document id (80/10/10 by sha1)."""
  bucket = int(hashlib.sha1(doc_id.encode("utf-8")).hexdigest(), 16) % 10
  return "train" if bucket < 8 else ("dev" if bucket == 8 else "test")


def sentence_spans(text: str) -> list[tuple[int, int]]:
  """[start, end) of each sentence, surrounding whitespace trimmed."""
  cuts = [0]
  for match in _BOUNDARY.finditer(text):
    before = text[:match.start()].rsplit(None, 1)
    word = before[-1].lower().rstrip(".") if before else ""
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
      continue
    cuts.append(match.start(1))
  cuts.append(len(text))
  spans = []
  for start, end in zip(cuts, cuts[1:]):
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    right = len(piece.rstrip())
    if right > left:
      spans.append((start + left, start + right))
  return spans


def _merge_crossing(spans: list[tuple[int, int]],
                    mentions: list[tuple[int, int]],
                    stats: ReadStats | None) -> list[tuple[int, int]]:
  """Merges neighbouring sentences when a mention crosses their boundary."""
  merged = list(spans)
  for m_start, m_end in sorted(mentions):
    i = 0
    while i < len(merged) - 1:
      a, b = merged[i], merged[i + 1]
      if m_start < a[1] and m_end > b[0]:
        merged[i:i + 2] = [(a[0], b[1])]
        if stats is not None:
          stats.note("sentences_merged")
      else:
        i += 1
  return merged


def _checked_offsets(content: str, obj: dict, where: dict, field: str,
                     strict: bool, max_shift: int,
                     stats: ReadStats | None) -> tuple[int, int, str] | None:
  """(start, end, text) with the offsets verified or repaired; None = drop."""
  try:
    start, end, text = int(obj["startOffset"]), int(obj["endOffset"]), obj["text"]
  except (KeyError, TypeError, ValueError):
    raise DataError("mention needs startOffset, endOffset and text",
                    field=field, value=obj, **where) from None
  if content[start:end] == text and 0 <= start <= end:
    return start, end, text
  problem = DataError(
      f"offsets [{start}, {end}) give {content[start:end]!r}", field=field,
      value=text, **where)
  if strict:
    raise problem
  found = nearest_occurrence(content, text, start, max_shift) if text else None
  if found is None:
    if stats is not None:
      stats.skip("offset_mismatch", str(problem))
    return None
  if stats is not None:
    stats.repair("offset_shifted", f"{problem} -> moved by {found - start}")
  return found, found + len(text), text


def _document_events(path: str, doc: Any, strict: bool, max_shift: int,
                     stats: ReadStats | None) -> tuple[str, list[dict]]:
  """The document text and its events with checked absolute offsets."""
  where = dict(path=path)
  if not isinstance(doc, dict) or not isinstance(doc.get("content"), str):
    raise DataError("document has no 'content' string", field="content",
                    value=type(doc).__name__, **where)
  content = doc["content"]
  hoppers = (doc.get("cyberevent") or {}).get("hopper") or []
  events = []
  for h, hopper in enumerate(hoppers):
    for k, ev in enumerate(hopper.get("events") or []):
      field = f"cyberevent.hopper[{h}].events[{k}]"
      subtype = ev.get("subtype")
      if subtype not in label_maps.CASIE_EVENT_TYPES:
        raise DataError("unknown event subtype", field=f"{field}.subtype",
                        value=subtype, **where)
      trigger = _checked_offsets(content, ev.get("nugget") or {}, where,
                                 f"{field}.nugget", strict, max_shift, stats)
      if trigger is None:
        continue
      arguments = []
      for j, arg in enumerate(ev.get("argument") or []):
        checked = _checked_offsets(content, arg, where,
                                   f"{field}.argument[{j}]", strict,
                                   max_shift, stats)
        role = (arg.get("role") or {}).get("type")
        if not isinstance(role, str):
          raise DataError("argument without role.type",
                          field=f"{field}.argument[{j}].role", value=arg,
                          **where)
        if checked is not None:
          arguments.append((*checked, label_maps.casie_role_name(role)))
      events.append({"trigger": trigger, "arguments": arguments,
                     "type": label_maps.CASIE_EVENT_TYPES[subtype]})
  return content, events


def _sentence_records(doc_id: str, content: str, events: list[dict],
                      dataset: str, split: str,
                      stats: ReadStats | None) -> list[Record]:
  if content.rstrip().endswith(_END_MARKER):  # stray markup in 2 documents
    content = content[:content.rstrip().rfind(_END_MARKER)]
  content = re.sub(r"\s", " ", content)  # one for one: offsets unchanged
  mentions = [e["trigger"][:2] for e in events] + [
      a[:2] for e in events for a in e["arguments"]]
  spans = _merge_crossing(sentence_spans(content), mentions, stats)
  per_sentence: list[list[Event]] = [[] for _ in spans]
  for ev in events:
    t_start, t_end, _ = ev["trigger"]
    index = next((i for i, (s, e) in enumerate(spans)
                  if s <= t_start and t_end <= e), None)
    if index is None:  # trigger in trimmed whitespace or cut markup
      if stats is not None:
        stats.note("events_outside_sentences")
      continue
    s, e = spans[index]
    arguments = []
    for a_start, a_end, _, role in ev["arguments"]:
      if s <= a_start and a_end <= e:
        arguments.append(Argument(a_start - s, a_end - s, role,
                                  content[a_start:a_end]))
      elif stats is not None:
        stats.note("arguments_outside_sentence")
    event = Event(Span(t_start - s, t_end - s, content[t_start:t_end]),
                  ev["type"], tuple(sorted(set(arguments))))
    if event not in per_sentence[index]:
      per_sentence[index].append(event)
  event_types = tuple(label_maps.CASIE_EVENT_TYPES.values())
  return [Record(id=f"{dataset}-{doc_id}-{i}", text=content[s:e],
                 events=tuple(sorted(evs, key=lambda x: (x.trigger, x.type))),
                 dataset=dataset, split=split, event_types=event_types)
          for i, ((s, e), evs) in enumerate(zip(spans, per_sentence))]


def read_casie(annotation_dir: str, *, split: str, dataset: str = "casie",
               strict: bool = False, max_shift: int = 20,
               skip_invalid: bool = False,
               stats: ReadStats | None = None) -> list[Record]:
  """Sentence-level event records of the documents in `split` (by doc id)."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  paths = sorted(glob.glob(os.path.join(annotation_dir, "*.json")),
                 key=lambda p: (len(os.path.basename(p)), os.path.basename(p)))
  if not paths:
    raise DataError("no CASIE annotation files (*.json)", path=annotation_dir)
  records = []
  for path in paths:
    doc_id = os.path.splitext(os.path.basename(path))[0]
    if split_of(doc_id) != split:
      continue
    try:
      doc = load_json(path)
      content, events = _document_events(path, doc, strict, max_shift, stats)
      doc_records = _sentence_records(doc_id, content, events, dataset, split,
                                      stats)
      for record in doc_records:
        record.validate(path=path)
    except DataError as e:
      skip_or_raise(e, reason="invalid_document", skip_invalid=skip_invalid,
                    stats=stats)
      continue
    records.extend(doc_records)
  if stats is not None:
    stats.read += len(records)
  return records
