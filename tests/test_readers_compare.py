"""Datasets present in both layouts agree through our readers (issue 9).

The original files (crossner/, mit/) read with `label_maps` type names must
give the same sentences as InstructUIE's IE INSTRUCTIONS copy and the same
entity sets (lower-cased type + text, set semantics, as the papers score) on
at least 98% of sentences. The published conversion really differs on a few
sentences; they are printed (run with -s), never hidden. What they show:
CoNLL-2003 differs on ~0.5% of sentences, nearly all adjacent same-type
entities ("Golan Heights" + "Israel") that CrossNER's BIO copy merged into
one (the IOB1 boundary was lost) and the IE INSTRUCTIONS copy keeps apart;
one train sentence had "Misc" replaced by "else" in its text. The copy drops
one sentence from each CrossNER politics and MIT split, and its
CrossNER_music dev/test keep the raw `organisation`/`misc` types.
"""
from __future__ import annotations

import collections
import json
import os

import pytest

from ie_tasks.readers import bio, ie_instructions, label_maps
from ie_tasks.records import entity_set

MIN_AGREEMENT = 0.98
MAX_SENTENCE_DIFFERENCES = 2  # per split; the copy drops or edits a few
SHOWN = 5


def test_label_maps_reproduce_every_labels_json(shared_data):
  """The maps' images are exactly the IE INSTRUCTIONS label universes."""
  for name, (original, copy, type_map) in label_maps.ORIGINAL_LAYOUT.items():
    with open(os.path.join(shared_data, "ie_instructions", "NER", copy,
                           "labels.json"), encoding="utf-8") as f:
      labels = json.load(f)
    assert tuple(labels) == label_maps.IE_INSTRUCTIONS_LABELS[name]
    raw_types = set()
    with open(os.path.join(shared_data, original, "test.txt"),
              encoding="utf-8") as f:
      for line in f:
        columns = line.rstrip("\n").split("\t")
        tag = columns[0] if original.startswith("mit") else columns[-1]
        if tag.startswith(("B-", "I-")):
          raw_types.add(tag[2:])
    assert {type_map[t] for t in raw_types} == set(labels), name


def _splits(name):
  # The IE INSTRUCTIONS MIT dev files are copies of test: compare train/test.
  return ("train", "test") if name.startswith("mit") else (
      "train", "dev", "test")


def _compare(shared_data, name, split):
  original, copy, type_map = label_maps.ORIGINAL_LAYOUT[name]
  columns = (dict(token_column=1, tag_column=0) if original.startswith("mit")
             else {})
  ours = bio.read_bio(
      os.path.join(shared_data, original, f"{split}.txt"), dataset=name,
      split=split, type_map=type_map,
      labels=label_maps.IE_INSTRUCTIONS_LABELS[name], **columns)
  # The same map also repairs the copy's own leftovers (music's organisation).
  theirs = ie_instructions.read_ie_instructions(
      os.path.join(shared_data, "ie_instructions", "NER", copy,
                   f"{split}.json"), dataset=name, split=split,
      type_map=type_map)
  their_by_text = collections.defaultdict(list)
  for record in theirs:
    their_by_text[record.text].append(entity_set(record))
  only_ours = collections.Counter(r.text for r in ours) - collections.Counter(
      r.text for r in theirs)
  only_theirs = collections.Counter(r.text for r in theirs) - (
      collections.Counter(r.text for r in ours))
  differing = [r for r in ours if r.text in their_by_text and
               entity_set(r) not in their_by_text[r.text]]
  return ours, their_by_text, only_ours, only_theirs, differing


@pytest.mark.parametrize("name,split", [
    (name, split) for name in label_maps.ORIGINAL_LAYOUT
    for split in _splits(name)])
def test_both_layouts_agree(shared_data, name, split):
  ours, theirs, only_ours, only_theirs, differing = _compare(
      shared_data, name, split)
  compared = len(ours) - sum(only_ours.values())
  agreement = (compared - len(differing)) / compared
  print(f"\n{name}/{split}: {len(ours)} original sentences, "
        f"{sum(only_ours.values())} missing from the copy, "
        f"{sum(only_theirs.values())} only in the copy, "
        f"{len(differing)} with other entities ({agreement:.2%} agree)")
  for text in list(only_ours)[:SHOWN]:
    print(f"  only in original: {text[:100]!r}")
  for text in list(only_theirs)[:SHOWN]:
    print(f"  only in copy:     {text[:100]!r}")
  for record in differing[:SHOWN]:
    mine = entity_set(record)
    other = min(theirs[record.text], key=lambda s: len(s ^ mine))
    print(f"  differs: {record.text[:100]!r}\n"
          f"    original only: {sorted(mine - other)}\n"
          f"    copy only:     {sorted(other - mine)}")
  assert sum(only_ours.values()) <= MAX_SENTENCE_DIFFERENCES
  assert sum(only_theirs.values()) <= MAX_SENTENCE_DIFFERENCES
  assert agreement >= MIN_AGREEMENT
