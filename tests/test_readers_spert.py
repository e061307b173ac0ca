"""SpERT JSON (CoNLL04): BILOU entities and relations by entity index."""
from __future__ import annotations

import json
import os

import pytest

from ie_tasks.readers import spert
from ie_tasks.readers.stats import ReadStats
from ie_tasks.records import DataError


def _conll04(shared_data, split):
  folder = os.path.join(shared_data, "conll04")
  return spert.read_spert_json(
      os.path.join(folder, f"conll04_{split}.json"), split=split,
      types_path=os.path.join(folder, "conll04_types.json"))


def test_conll04_split_sizes_and_relation_counts(shared_data):
  records = {s: _conll04(shared_data, s) for s in ("train", "dev", "test")}
  assert {s: len(r) for s, r in records.items()} == {
      "train": 922, "dev": 231, "test": 288}
  # The standard SpERT test split has 422 relations.
  assert sum(len(r.relations) for r in records["test"]) == 422
  for split_records in records.values():
    for record in split_records:
      record.validate()


def test_conll04_first_test_item(shared_data):
  first = _conll04(shared_data, "test")[0]
  assert first.text.startswith("An art exhibit at the Hakawati Theatre in")
  assert [(e.text, e.type) for e in first.entities] == [
      ("Hakawati Theatre", "organization"), ("Arab", "other"),
      ("Jerusalem", "location"), ("Palestinians", "other")]
  (relation,) = first.relations
  assert (relation.head.text, relation.type, relation.tail.text) == (
      "Hakawati Theatre", "organization in", "Jerusalem")
  assert first.entity_types == ("location", "organization", "people", "other")
  assert set(first.relation_types) == {
      "work for", "kill", "organization in", "live in", "located in"}


def test_relation_to_missing_entity_names_record_and_field(tmp_path):
  path = tmp_path / "bad.json"
  path.write_text(json.dumps([
      {"tokens": ["Ann", "visited", "Rome"], "tags": ["U-Peop", "O", "U-Loc"],
       "relations": [{"head": 0, "tail": 1, "type": "Live_In"}]},
      {"tokens": ["Bob", "in", "Oslo"], "tags": ["U-Peop", "O", "U-Loc"],
       "relations": [{"head": 0, "tail": 5, "type": "Live_In"}]},
  ]))
  with pytest.raises(DataError) as info:
    spert.read_spert_json(str(path), split="train")
  assert "record 1" in str(info.value)
  assert info.value.field == "relations[0]"
  stats = ReadStats()
  records = spert.read_spert_json(str(path), split="train",
                                  skip_invalid=True, stats=stats)
  assert [r.relations[0].type for r in records] == ["live in"]
  assert stats.skipped["invalid_item"] == 1


def test_invalid_bilou_and_malformed_json(tmp_path):
  path = tmp_path / "bad.json"
  path.write_text(json.dumps([{"tokens": ["New", "York"],
                               "tags": ["B-Loc", "O"], "relations": []}]))
  with pytest.raises(DataError, match="BILOU") as info:
    spert.read_spert_json(str(path), split="dev")
  assert info.value.field == "tags[1]"
  path.write_text('[{"tokens": ["a"],')
  with pytest.raises(DataError, match="malformed JSON") as info:
    spert.read_spert_json(str(path), split="dev")
  assert info.value.line == 1
