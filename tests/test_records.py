"""The record type: char offsets are checked, JSON errors name file and line."""
import json
import os

import pytest

from ie_tasks import records as rec
from ie_tasks.readers import bio

SENTENCE = "Peter Blackburn met EU officials in BRUSSELS ."


def _record(**overrides) -> rec.Record:
  person = rec.Entity(0, 15, "person", "Peter Blackburn")
  org = rec.Entity(20, 22, "organization", "EU")
  fields = dict(
      id="r1", text=SENTENCE, entities=(person, org),
      relations=(rec.Relation(person, org, "meet"),),
      events=(rec.Event(rec.Span(16, 19, "met"), "meet",
                        (rec.Argument(0, 15, "entity", "Peter Blackburn"),)),),
      dataset="toy", split="train", entity_types=("person", "organization"))
  fields.update(overrides)
  return rec.Record(**fields)


def test_jsonl_round_trip_keeps_every_field(tmp_path):
  path = str(tmp_path / "records.jsonl")
  assert rec.write_jsonl([_record(), _record(id="r2")], path) == 2
  back = list(rec.read_jsonl(path))
  assert back == [_record(), _record(id="r2")]
  assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]


def test_real_conll_records_validate_and_round_trip(shared_data, tmp_path):
  path = os.path.join(shared_data, "crossner", "conll2003", "dev.txt")
  records = bio.read_bio(path, dataset="conll2003", split="validation")[:50]
  out = str(tmp_path / "conll.jsonl")
  rec.write_jsonl(records, out)
  assert list(rec.read_jsonl(out)) == records
  first = records[0]  # "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP ..."
  assert first.text.startswith("CRICKET - LEICESTERSHIRE TAKE OVER")
  assert rec.entity_set(first) == {("organisation", "leicestershire")}
  assert first.text[first.entities[0].start:first.entities[0].end] == (
      "LEICESTERSHIRE")


def test_span_outside_the_text_names_record_and_field():
  bad = _record(entities=(rec.Entity(40, 99, "location", "BRUSSELS ."),))
  with pytest.raises(rec.DataError) as e:
    bad.validate(path="f.jsonl", line=7)
  message = str(e.value)
  assert "f.jsonl" in message and "line 7" in message
  assert "record r1" in message and "entities[0]" in message
  assert "outside the text" in message


def test_span_text_that_does_not_match_the_offsets_is_an_error():
  bad = _record(events=(rec.Event(rec.Span(16, 19, "meets"), "meet"),))
  with pytest.raises(rec.DataError, match=r"events\[0\]\.trigger.*'met'"):
    bad.validate()


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
  path = tmp_path / "bad.jsonl"
  good = json.dumps(_record().to_json())
  path.write_text(good + "\n\n" + '{"id": "r2", "text": \n')
  reader = rec.read_jsonl(str(path))
  assert next(reader).id == "r1"  # what came before the bad line is kept
  with pytest.raises(rec.DataError, match=r"bad\.jsonl, line 3: malformed JSON"):
    next(reader)


def test_missing_field_names_the_line(tmp_path):
  path = tmp_path / "missing.jsonl"
  path.write_text(json.dumps({"id": "r1"}) + "\n")
  with pytest.raises(rec.DataError, match=r"line 1: missing or malformed field"):
    list(rec.read_jsonl(str(path)))


def test_json_list_helpers_name_what_was_expected(tmp_path):
  path = tmp_path / "items.json"
  path.write_text('{"not": "a list"}')
  with pytest.raises(rec.DataError, match="expected a JSON list of instances"):
    rec.load_json_list(str(path), "instances")
  path.write_text("[1, 2,\n 3,")
  with pytest.raises(rec.DataError, match=r"items\.json, line 2: malformed"):
    rec.load_json(str(path))
