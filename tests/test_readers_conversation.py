"""UniversalNER conversations and the real Pile-NER (passage, type) pairs."""
from __future__ import annotations

import json
import os

import pytest

from ie_tasks.readers import conversation
from ie_tasks.readers.stats import ReadStats
from ie_tasks.records import DataError


def _conversation(passage, qa):
  turns = [{"from": "human", "value": f"Text: {passage}"},
           {"from": "gpt", "value": "I've read this text."}]
  for entity_type, answer in qa:
    turns += [{"from": "human",
               "value": f"What describes {entity_type} in the text?"},
              {"from": "gpt", "value": answer}]
  return turns


def test_universalner_conversation_every_occurrence_and_negatives(tmp_path):
  passage = "Paris and Lyon are in France. Paris is big; SAID Paris."
  path = tmp_path / "train.json"
  path.write_text(json.dumps([{"id": "ex0", "conversations": _conversation(
      passage, [("city", '["Paris", "Lyon"]'), ("country", '["France"]'),
                ("river", "[]"), ("person", '["Napoleon"]'),
                ("agency", '["AI"]')])}]))
  stats = ReadStats()
  (record,) = conversation.read_universalner_conversations(
      str(path), dataset="toy", split="train", stats=stats)
  assert record.text == passage
  assert record.entity_types == ("city", "country", "river", "person",
                                 "agency")
  spans = [(e.text, e.type, e.start) for e in record.entities]
  assert spans.count(("Paris", "city", 0)) == 1
  assert sum(1 for s in spans if s[0] == "Paris") == 3
  assert ("France", "country", 22) in spans
  # "Napoleon" is nowhere; "AI" only inside "SAID": both counted, not found.
  assert stats.notes["answer_not_found"] == 2
  record.validate()


def test_malformed_answer_and_question_are_named(tmp_path):
  path = tmp_path / "bad.json"
  path.write_text(json.dumps([
      {"id": "ok", "conversations": _conversation("Rome", [("city",
                                                            '["Rome"]')])},
      {"id": "bad", "conversations": _conversation("Oslo", [("city",
                                                             '["Oslo"')])},
  ]))
  with pytest.raises(DataError) as info:
    conversation.read_universalner_conversations(str(path), dataset="toy",
                                                 split="train")
  assert "record 1 (id bad)" in str(info.value)
  assert info.value.field == "conversations[3].value"
  stats = ReadStats()
  records = conversation.read_universalner_conversations(
      str(path), dataset="toy", split="train", skip_invalid=True, stats=stats)
  assert [r.text for r in records] == ["Rome"]
  assert stats.skipped["invalid_conversation"] == 1


def test_pile_ner_pairs_grouped_by_passage(shared_data):
  path = os.path.join(shared_data, "pile_ner_sample", "slimer_validation.jsonl")
  stats = ReadStats()
  records = conversation.read_pile_ner_pairs(path, split="validation",
                                             stats=stats)
  lines = [json.loads(l) for l in open(path, encoding="utf-8")]
  assert len(records) == 882  # PROVENANCE: 882 passages, 1,320 lines
  assert sum(len(r.entity_types) for r in records) == 1320
  assert len({t for r in records for t in r.entity_types}) == 384
  by_id = {r.id: r for r in records}
  for line in lines[:200]:
    record = by_id["pile_ner-" +
                   line["doc_question_pairID"].rsplit(":", 1)[0]]
    assert line["tagName"] in record.entity_types
    found = {e.text for e in record.entities if e.type == line["tagName"]}
    assert found == set(json.loads(line["output"]))
  for record in records:
    record.validate()


def test_pile_ner_conflicting_passage_text(tmp_path):
  path = tmp_path / "pairs.jsonl"
  path.write_text("\n".join(json.dumps(x) for x in [
      {"doc_question_pairID": "7:0", "tagName": "city", "input": "Rome.",
       "instruction": "", "output": '["Rome"]'},
      {"doc_question_pairID": "7:1", "tagName": "person", "input": "Oslo.",
       "instruction": "", "output": "[]"}]))
  with pytest.raises(DataError, match="different text") as info:
    conversation.read_pile_ner_pairs(str(path), split="train")
  assert info.value.line == 2 and info.value.field == "input"
