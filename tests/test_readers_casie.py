"""CASIE: documents split into sentences with rebased event offsets."""
from __future__ import annotations

import collections
import json
import os

import pytest

from ie_tasks.readers import casie
from ie_tasks.readers.stats import ReadStats
from ie_tasks.records import DataError


@pytest.fixture(scope="module")
def casie_dir(shared_data):
  return os.path.join(shared_data, "casie", "annotation")


def test_splits_are_deterministic_and_roughly_80_10_10(casie_dir):
  ids = [os.path.splitext(f)[0] for f in os.listdir(casie_dir)]
  counts = collections.Counter(casie.split_of(i) for i in ids)
  assert sum(counts.values()) == 1000
  assert 750 <= counts["train"] <= 850
  assert 70 <= counts["dev"] <= 130 and 70 <= counts["test"] <= 130
  assert casie.split_of("10001") == casie.split_of("10001")


def test_real_test_split_offsets_rebased_and_counted(casie_dir):
  stats = ReadStats()
  records = casie.read_casie(casie_dir, split="test", stats=stats)
  events = [ev for r in records for ev in r.events]
  assert len(records) > 1000 and len(events) > 500
  for record in records:
    record.validate()  # trigger and argument text == sentence slice
    assert record.split == "test" and "\n" not in record.text
  assert {ev.type for ev in events} <= set(records[0].event_types)
  # The published offsets are partly shifted: repaired, and said so.
  assert stats.repaired["offset_shifted"] > 0
  assert stats.notes["arguments_outside_sentence"] > 0
  assert stats.read == len(records)


def test_known_event_in_document_10001(casie_dir):
  doc_split = casie.split_of("10001")
  records = [r for r in casie.read_casie(casie_dir, split=doc_split)
             if r.id.startswith("casie-10001-")]
  # "...had been accessed..." is a data breach whose compromised data
  # ("their phone numbers", "addresses") lies in the same sentence.
  (sentence,) = [r for r in records if "had been accessed" in r.text]
  breach = next(ev for ev in sentence.events
                if ev.trigger.text == "had been accessed")
  assert breach.type == "data breach"
  roles = {(a.text, a.role) for a in breach.arguments}
  assert ("their phone numbers", "compromised data") in roles
  assert ("addresses", "compromised data") in roles


def test_all_events_are_kept_across_splits(casie_dir):
  stats = ReadStats()
  total = sum(len(r.events) for split in casie.SPLITS
              for r in casie.read_casie(casie_dir, split=split, stats=stats))
  # 8,485 event mentions published; only unrepairable ones may be lost.
  assert total + stats.skipped["offset_mismatch"] >= 8485 - 5
  assert stats.skipped["offset_mismatch"] <= 5


def _toy_doc(tmp_path, nugget_start):
  content = "Hackers stole data. The firm paid a ransom."
  doc = {"content": content, "cyberevent": {"hopper": [{"events": [{
      "type": "Attack", "subtype": "Ransom",
      "nugget": {"startOffset": nugget_start, "endOffset": nugget_start + 4,
                 "text": "paid"},
      "argument": [{"startOffset": 20, "endOffset": 28, "text": "The firm",
                    "role": {"type": "Victim"}},
                   {"startOffset": 0, "endOffset": 7, "text": "Hackers",
                    "role": {"type": "Attacker"}}]}]}]}}
  folder = tmp_path / "annotation"
  folder.mkdir(exist_ok=True)
  doc_id = next(str(i) for i in range(100) if casie.split_of(str(i)) == "dev")
  (folder / f"{doc_id}.json").write_text(json.dumps(doc))
  return str(folder), doc_id


def test_toy_document_sentence_split_and_rebase(tmp_path):
  folder, doc_id = _toy_doc(tmp_path, 29)
  stats = ReadStats()
  first, second = casie.read_casie(folder, split="dev", stats=stats)
  assert (first.text, first.events) == ("Hackers stole data.", ())
  (event,) = second.events
  assert (event.trigger.start, event.trigger.text, event.type) == (
      9, "paid", "ransom")
  assert [(a.text, a.role) for a in event.arguments] == [("The firm", "victim")]
  assert stats.notes["arguments_outside_sentence"] == 1  # "Hackers"


def test_shifted_offsets_repaired_or_strict_error(tmp_path):
  folder, doc_id = _toy_doc(tmp_path, 30)  # one char off
  stats = ReadStats()
  records = casie.read_casie(folder, split="dev", stats=stats)
  assert records[1].events[0].trigger.text == "paid"
  assert stats.repaired["offset_shifted"] == 1
  with pytest.raises(DataError) as info:
    casie.read_casie(folder, split="dev", strict=True)
  assert f"{doc_id}.json" in str(info.value)
  assert "nugget" in info.value.field and info.value.value == "paid"


def test_sentence_splitter_keeps_abbreviations():
  text = "Mr. Smith works at U.S. Steel. He said so! Version 2.1 is out."
  pieces = [text[s:e] for s, e in casie.sentence_spans(text)]
  assert pieces == ["Mr. Smith works at U.S. Steel.", "He said so!",
                    "Version 2.1 is out."]
