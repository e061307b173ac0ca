"""Cleaning teacher answers: real Pile-NER gold turned into noisy teacher answers.

The gold of real Pile passages (ChatGPT's own open-type answers, one passage x
type per line) is rewritten as one teacher answer per passage, then spoiled
in known ways; the cleaner must undo or drop exactly what was spoiled.
"""
from __future__ import annotations

import json
import os

import pytest

from ie_tasks.distill import clean, parse_answers, write
from ie_tasks.readers import conversation
from ie_tasks.records import DataError


# ---------------------------------------------------------------- parsing
@pytest.mark.parametrize("answer, pairs, note", [
    ('[["Ann Lee", "person"], ["IBM", "company"]]',
     [("Ann Lee", "person"), ("IBM", "company")], None),
    ("[('McDonald's', 'company'), ('O\\'Brien', 'person')]",
     [("McDonald's", "company"), ("O'Brien", "person")], "tolerant_scan"),
    ('Sure!\n```json\n[["Ann", "person"]]\n```\nAnything else?',
     [("Ann", "person")], "code_fence"),
    ('Entities: [("Ann", "person")] (all of them)', [("Ann", "person")],
     "surrounding_text"),
    ('[["a", "x"], ["b", "y"], ["c", "z', [("a", "x"), ("b", "y")],
     "truncated"),
    ('{"person": ["Ann", "Bob"], "org": ["IBM"]}',
     [("Ann", "person"), ("Bob", "person"), ("IBM", "org")], "dict_answer"),
    ('[{"entity": "Ann", "type": "person"}]', [("Ann", "person")], None),
    ('[["He said \\"hi\\"", "quote"]]', [('He said "hi"', "quote")], None),
    ('[(2019, "date")]', [("2019", "date")], "python_syntax"),
    ("[]", [], None),
])
def test_parse_answer_recovers_the_pairs(answer, pairs, note):
  parsed = parse_answers.parse_answer(answer)
  assert parsed.ok
  assert parsed.pairs == pairs
  if note:
    assert note in parsed.notes


@pytest.mark.parametrize("answer", [
    None, "", "I'm sorry, I cannot help with that.", "[[[[", "{{{", "[1, 2",
    "\\", "'", '"""', "(" * 5000])
def test_parse_answer_never_raises_and_reports_failure(answer):
  parsed = parse_answers.parse_answer(answer)
  assert parsed.pairs == []
  if answer and answer.strip() and "[" not in answer and "{" not in answer \
      and "(" not in answer:
    assert not parsed.ok


def test_items_that_are_not_pairs_are_counted():
  parsed = parse_answers.parse_answer('[["a", "x"], "junk", [1, 2, 3]]')
  assert parsed.pairs == [("a", "x")] and parsed.bad_items == 2


@pytest.mark.parametrize("raw, expected", [
    ("Persons", "person"), ("companies", "company"), ("Sports_Teams ", "sports team"),
    ("news", "news"), ("TV series", "tv series"), ("movies", "movie"),
    ("businesses", "business"), ("diseases", "disease"), ("physics", "physics"),
    ("people", "person"), ("'location'.", "location"), ("  Ship   Class", "ship class"),
    ("group of people", "group of people"), ("Types of Cars", "type of cars"),
])
def test_type_normalisation(raw, expected):
  assert clean.normalize_type(raw) == expected


# ------------------------------------------------------- on real answers
def _gold_records(shared_data, count):
  records = conversation.read_pile_ner_pairs(
      os.path.join(shared_data, "pile_ner_sample", "slimer_validation.jsonl"),
      split="train")
  chosen = []
  for r in records:
    pairs = list(dict.fromkeys((e.text, e.type) for e in r.entities))
    # Passages whose gold is already clean, so every drop below is injected.
    if len(pairs) >= 2 and all(
        clean.normalize_type(t) == t and clean.normalize_entity(e) == e and
        t not in clean.DEFAULT_GENERIC_TYPES for e, t in pairs):
      chosen.append((r, pairs))
    if len(chosen) == count:
      return chosen
  raise AssertionError("not enough clean gold passages")


def _line(record, response):
  return json.dumps({
      "id": record.id, "text": record.text,
      "teacher": {"kind": "openai", "model": "gold"}, "prompt_version": "t",
      "response": response,
      "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
      "attempts": 1})


@pytest.fixture
def noisy_annotations(shared_data, tmp_path):
  """Nine real passages with known faults, plus a garbled line; the truth."""
  chosen = _gold_records(shared_data, 9)
  lines, truth = [], {}
  for k, (record, pairs) in enumerate(chosen):
    truth[record.id] = pairs
    answer = [list(p) for p in pairs]
    if k == 0:    # upper-case types
      response = json.dumps([[e, t.upper()] for e, t in pairs])
    elif k == 1:  # plural types (a type that is a plain singular word)
      response = json.dumps([[e, t + "s" if t.isalpha() and not t.endswith(
          ("s", "y", "x", "h")) else t] for e, t in pairs])
    elif k == 2:  # two entities the passage does not contain
      response = json.dumps(answer + [["Zyxwv Qutsr", "person"],
                                      ["Qqqzz Corp", "company"]])
    elif k == 3:  # a code fence and chatter around it
      response = "Here you go:\n```json\n" + json.dumps(answer) + "\n```\nDone."
    elif k == 4:  # cut off inside the last pair
      full = json.dumps(answer)
      response = full[:full.rfind('["') + 3]
    elif k == 5:  # generic types
      response = json.dumps(answer + [[pairs[0][0], "misc"],
                                      [pairs[1][0], "Other"]])
    elif k == 6:  # a repeated pair, Python tuple syntax, single quotes
      response = repr([tuple(p) for p in pairs + [pairs[0]]])
    elif k == 7:  # no list at all
      response = "I'm sorry, I can't identify entities in this text."
    else:         # the plain gold
      response = json.dumps(answer)
    lines.append(_line(record, response))
  lines.insert(4, '{"id": "broken", "text": "no response field"')
  path = tmp_path / "annotations.jsonl"
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(path), chosen, truth


def test_clean_drops_exactly_what_was_injected(noisy_annotations, tmp_path):
  path, chosen, truth = noisy_annotations
  out = tmp_path / "clean"
  report = clean.clean_annotations(path, str(out), dataset="noisy",
                                   skip_invalid=True)
  c = report["counts"]
  assert c["lines_read"] == 10
  assert c["lines_skipped_invalid"] == 1
  assert c["passages_dropped_unparsable_answer"] == 1
  assert c["pairs_dropped_not_in_passage"] == 2
  assert c["pairs_dropped_generic_type"] == 2
  assert c["pairs_dropped_duplicate"] == 1
  assert c["answers_truncated"] == 1 and c["answers_code_fence"] == 1
  assert c["passages_written"] == 8
  assert not any(k.startswith("pairs_dropped_") and k not in {
      "pairs_dropped_not_in_passage", "pairs_dropped_generic_type",
      "pairs_dropped_duplicate"} and v for k, v in c.items())

  records = {r.id: r for r in write.read_records(str(out))}
  unparsable = chosen[7][0].id
  truncated_id = chosen[4][0].id
  assert unparsable.replace("pile_ner-", "noisy-", 1) not in records
  for record, _ in chosen:
    if record.id == unparsable:
      continue
    got = records["noisy-" + record.id]
    expected = set(truth[record.id])
    if record.id == truncated_id:
      expected -= {truth[record.id][-1]}  # the unfinished last pair is lost
    assert {(e.text, e.type) for e in got.entities} == expected
    for e in got.entities:  # char spans are the truth, and every one is found
      assert got.text[e.start:e.end] == e.text
    assert len(got.entities) == len(
        [1 for e in record.entities if (e.text, e.type) in expected])

  type_counts = write.read_type_counts(str(out))
  assert all(t == t.lower() for t in type_counts)
  assert type_counts == dict(clean.passage_type_counts(records.values()))
  assert write.read_report(str(out))["counts"] == c


def test_a_garbled_line_names_file_and_line(noisy_annotations, tmp_path):
  path, _, _ = noisy_annotations
  with pytest.raises(DataError, match=r"annotations.jsonl, line 5: malformed JSON"):
    clean.clean_annotations(path, str(tmp_path / "x"), dataset="noisy")
  assert not (tmp_path / "x").exists()  # nothing half-written


def test_corpus_level_type_filters(shared_data, tmp_path):
  chosen = _gold_records(shared_data, 60)
  path = tmp_path / "a.jsonl"
  path.write_text("\n".join(_line(r, json.dumps(p)) for r, p in chosen) + "\n",
                  encoding="utf-8")
  full = clean.clean_annotations(str(path), str(tmp_path / "full"),
                                 dataset="d")
  counts = write.read_type_counts(str(tmp_path / "full"))
  assert full["counts"]["passages_written"] == 60
  rare = {t for t, n in counts.items() if n < 2}
  assert rare and len(rare) < len(counts)  # the real slice has both kinds

  def pairs_of(types):
    return sum(1 for _, p in chosen for _, t in p if t in types)

  no_rare = clean.clean_annotations(str(path), str(tmp_path / "no_rare"),
                                    dataset="d", min_type_count=2)
  assert set(write.read_type_counts(str(tmp_path / "no_rare"))) == (
      set(counts) - rare)
  assert no_rare["counts"]["pairs_dropped_rare_type"] == pairs_of(rare)

  # A type named in more than 1.5 of 60 passages is "too frequent" here.
  no_frequent = clean.clean_annotations(
      str(path), str(tmp_path / "no_frequent"), dataset="d",
      max_type_frequency=1.5 / 60)
  frequent = set(counts) - rare
  assert set(write.read_type_counts(str(tmp_path / "no_frequent"))) == rare
  assert no_frequent["counts"]["pairs_dropped_too_frequent_type"] == pairs_of(
      frequent)
