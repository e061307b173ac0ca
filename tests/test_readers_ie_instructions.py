"""InstructUIE's IE INSTRUCTIONS layout: real NER copies, written RE/EE files."""
from __future__ import annotations

import json
import os

import pytest

from ie_tasks.readers import ie_instructions, label_maps
from ie_tasks.readers.stats import ReadStats
from ie_tasks.records import DataError


@pytest.fixture(scope="module")
def ner_root(shared_data):
  return os.path.join(shared_data, "ie_instructions")


def test_find_datasets_lists_the_eight_ner_sets(ner_root):
  found = ie_instructions.find_datasets(ner_root)
  assert sorted(name for task, name in found) == [
      "CoNLL 2003", "CrossNER_AI", "CrossNER_literature", "CrossNER_music",
      "CrossNER_politics", "CrossNER_science", "mit-movie", "mit-restaurant"]
  assert {task for task, _ in found} == {"NER"}


@pytest.mark.parametrize("split,count", [
    ("train", 14041), ("dev", 3250), ("test", 3453)])
def test_conll2003_counts_match_provenance(ner_root, split, count):
  path = os.path.join(ner_root, "NER", "CoNLL 2003", f"{split}.json")
  records = ie_instructions.read_ie_instructions(path, dataset="conll2003",
                                                 split=split)
  assert len(records) == count
  assert records[0].entity_types == ("location", "else", "organization",
                                     "person")
  for record in records:
    record.validate()


def test_crossner_ai_known_entities(ner_root):
  path = os.path.join(ner_root, "NER", "CrossNER_AI", "test.json")
  first = ie_instructions.read_ie_instructions(path, dataset="crossner_ai",
                                               split="test")[0]
  assert [(e.text, e.type) for e in first.entities] == [
      ("naive Bayes classifier", "algorithm"),
      ("Gaussian mixture model", "algorithm"),
      ("variational autoencoders", "algorithm")]
  assert first.text[first.entities[0].start:].startswith("naive Bayes")


def test_music_copy_uses_types_outside_its_labels(ner_root):
  """The published CrossNER_music dev/test keep organisation/misc: counted."""
  path = os.path.join(ner_root, "NER", "CrossNER_music", "test.json")
  stats = ReadStats()
  raw = ie_instructions.read_ie_instructions(path, dataset="music",
                                             split="test", stats=stats)
  assert stats.notes["type_not_in_labels"] > 0
  assert "organisation" in {e.type for r in raw for e in r.entities}
  repaired_stats = ReadStats()
  repaired = ie_instructions.read_ie_instructions(
      path, dataset="music", split="test", stats=repaired_stats,
      type_map=label_maps.CROSSNER_TO_IE_INSTRUCTIONS)
  assert repaired_stats.notes["type_not_in_labels"] == 0
  assert {e.type for r in repaired for e in r.entities} <= set(
      repaired[0].entity_types)


def _layout(tmp_path, task, name, instances, labels):
  folder = tmp_path / task / name
  folder.mkdir(parents=True)
  (folder / "test.json").write_text(json.dumps(instances))
  (folder / "labels.json").write_text(json.dumps(labels))
  return str(folder / "test.json")


SENTENCE = "John Smith works for Acme Corp in Boston ."


def test_relation_instances_in_published_format(tmp_path):
  path = _layout(tmp_path, "RE", "toy_re", [{
      "sentence": SENTENCE,
      "entities": [{"name": "John Smith", "type": "people", "pos": [0, 10]},
                   {"name": "Acme Corp", "type": "organization",
                    "pos": [21, 30]}],
      "relations": [{"head": {"name": "John Smith", "pos": [0, 10]},
                     "type": "work for",
                     "tail": {"name": "Acme Corp", "pos": [21, 30]}}]}],
                 ["work for", "live in"])
  (record,) = ie_instructions.read_ie_instructions(path, dataset="toy_re",
                                                   split="test", task="RE")
  (relation,) = record.relations
  assert (relation.head.text, relation.head.type, relation.type,
          relation.tail.text) == ("John Smith", "people", "work for",
                                  "Acme Corp")
  assert record.relation_types == ("work for", "live in")
  assert ie_instructions.find_datasets(str(tmp_path)) == {
      ("RE", "toy_re"): os.path.dirname(path)}


def test_event_instances_with_and_without_pos(tmp_path):
  stats = ReadStats()
  path = _layout(tmp_path, "EE", "toy_ee", [{
      "sentence": "Hackers stole the data of 3 million users .",
      "events": [{"trigger": "stole", "type": "data breach", "pos": [8, 13],
                  "arguments": [{"name": "Hackers", "role": "attacker"},
                                {"name": "the data", "role": "compromised data",
                                 "pos": [14, 22]}]}]}],
                 {"data breach": ["attacker", "compromised data"]})
  (record,) = ie_instructions.read_ie_instructions(
      path, dataset="toy_ee", split="test", task="EE", stats=stats)
  (event,) = record.events
  assert (event.trigger.text, event.type) == ("stole", "data breach")
  assert [(a.text, a.role, a.start) for a in event.arguments] == [
      ("Hackers", "attacker", 0), ("the data", "compromised data", 14)]
  assert record.event_types == ("data breach",)
  assert stats.notes["located_by_search"] == 1


def test_bad_pos_names_file_record_field_and_skip_counts(tmp_path):
  path = _layout(tmp_path, "NER", "toy", [
      {"sentence": SENTENCE,
       "entities": [{"name": "Boston", "type": "location", "pos": [34, 40]}]},
      {"sentence": SENTENCE,
       "entities": [{"name": "Boston", "type": "location", "pos": [30, 36]}]},
      {"sentence": "short", "entities": [{"name": "x", "type": "location",
                                          "pos": [10, 11]}]},
  ], ["location"])
  with pytest.raises(DataError) as info:
    ie_instructions.read_ie_instructions(path, dataset="toy", split="test")
  message = str(info.value)
  assert "test.json" in message and "record 1" in message
  assert info.value.field == "entities[0].name" and info.value.value == "Boston"
  stats = ReadStats()
  records = ie_instructions.read_ie_instructions(
      path, dataset="toy", split="test", skip_invalid=True, stats=stats)
  assert len(records) == 1 and stats.skipped["invalid_instance"] == 2
  assert any("outside the sentence" in m
             for m in stats.examples["invalid_instance"])


def test_malformed_json_names_line(tmp_path):
  path = tmp_path / "test.json"
  path.write_text('[\n{"sentence": "a",\n "entities": [}\n]')
  with pytest.raises(DataError, match="malformed JSON") as info:
    ie_instructions.read_ie_instructions(str(path), dataset="toy",
                                         split="test")
  assert info.value.line == 3
