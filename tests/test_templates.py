"""Instruction templates on real records: layout, determinism, round trips.

Records are built here straight from the real files (CoNLL-2003 BIO, the IE
INSTRUCTIONS JSON, CoNLL04 SpERT JSON, CASIE annotations, Pile-NER answers)
so these tests do not depend on the readers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ie_tasks import parsing
from ie_tasks.records import (Argument, Entity, Event, Record, Relation,
                              Span)
from ie_tasks.templates import conversation, instructuie


# --- records from the real files ---------------------------------------------

def conll_sentences(path: str, limit: int) -> list[Record]:
  """First `limit` sentences of a BIO file (token<TAB>tag), joined by spaces."""
  records, tokens, tags = [], [], []

  def flush():
    if not tokens:
      return
    text, starts = "", []
    for token in tokens:
      starts.append(len(text) + (1 if text else 0))
      text = f"{text} {token}" if text else token
    entities, i = [], 0
    while i < len(tags):
      if tags[i].startswith("B-"):
        j = i + 1
        while j < len(tags) and tags[j] == "I-" + tags[i][2:]:
          j += 1
        start, end = starts[i], starts[j - 1] + len(tokens[j - 1])
        entities.append(Entity(start, end, tags[i][2:], text[start:end]))
        i = j
      else:
        i += 1
    records.append(Record(f"dev-{len(records)}", text, tuple(entities),
                          dataset="conll2003", split="dev",
                          entity_types=("person", "location", "organisation",
                                        "misc")))
    tokens.clear()
    tags.clear()

  with open(path, encoding="utf-8") as f:
    for line in f:
      if not line.strip():
        flush()
        if len(records) >= limit:
          break
        continue
      token, tag = line.rstrip("\n").split("\t")
      tokens.append(token)
      tags.append(tag)
  flush()
  return records[:limit]


def ie_instructions_records(path: str, labels_path: str, dataset: str
                            ) -> list[Record]:
  labels = tuple(json.load(open(labels_path, encoding="utf-8")))
  records = []
  for i, inst in enumerate(json.load(open(path, encoding="utf-8"))):
    entities = tuple(Entity(e["pos"][0], e["pos"][1], e["type"], e["name"])
                     for e in inst["entities"])
    records.append(Record(str(i), inst["sentence"], entities, dataset=dataset,
                          split="dev", entity_types=labels))
  return records


def conll04_records(path: str) -> list[Record]:
  """SpERT JSON (BILOU tags, relations between entity indices)."""
  records = []
  for i, inst in enumerate(json.load(open(path, encoding="utf-8"))):
    tokens, tags = inst["tokens"], inst["tags"]
    starts, text = [], ""
    for token in tokens:
      starts.append(len(text) + (1 if text else 0))
      text = f"{text} {token}" if text else token
    entities, k = [], 0
    while k < len(tags):
      if tags[k][:2] in ("B-", "U-"):
        j = k
        while tags[j][:2] not in ("L-", "U-"):
          j += 1
        start, end = starts[k], starts[j] + len(tokens[j])
        entities.append(Entity(start, end, tags[k][2:], text[start:end]))
        k = j + 1
      else:
        k += 1
    relations = tuple(Relation(entities[r["head"]], entities[r["tail"]],
                               r["type"]) for r in inst["relations"])
    records.append(Record(str(i), text, tuple(entities), relations,
                          dataset="conll04", split="dev",
                          entity_types=("Loc", "Org", "Peop", "Other"),
                          relation_types=("Work_For", "Kill", "OrgBased_In",
                                          "Live_In", "Located_In")))
  return records


def casie_record(path: str) -> Record:
  """One CASIE document as a record with all its events (char offsets)."""
  doc = json.load(open(path, encoding="utf-8"))
  text, events = doc["content"], []
  for hopper in doc["cyberevent"].get("hopper", []):
    for ev in hopper["events"]:
      n = ev["nugget"]
      args = tuple(Argument(a["startOffset"], a["endOffset"], a["role"]["type"],
                            a["text"]) for a in ev.get("argument", []))
      events.append(Event(Span(n["startOffset"], n["endOffset"], n["text"]),
                          ev["subtype"], args))
  return Record(os.path.basename(path), text, events=tuple(events),
                dataset="casie", split="dev",
                event_types=("Databreach", "Phishing", "Ransom",
                             "Discover-Vulnerability", "Patch-Vulnerability"))


@pytest.fixture(scope="module")
def conll(shared_data):
  return conll_sentences(
      os.path.join(shared_data, "crossner", "conll2003", "dev.txt"), 60)


@pytest.fixture(scope="module")
def crossner_ai(shared_data):
  root = os.path.join(shared_data, "ie_instructions", "NER", "CrossNER_AI")
  return ie_instructions_records(os.path.join(root, "dev.json"),
                                 os.path.join(root, "labels.json"),
                                 "crossner_ai")


@pytest.fixture(scope="module")
def conll04(shared_data):
  return conll04_records(os.path.join(shared_data, "conll04",
                                      "conll04_dev.json"))


@pytest.fixture(scope="module")
def casie(shared_data):
  root = os.path.join(shared_data, "casie", "annotation")
  return [casie_record(os.path.join(root, f"{n}.json"))
          for n in (10001, 10002, 10003)]


# --- layout --------------------------------------------------------------------

def test_ner_example_has_the_instructuie_layout(conll):
  record = conll[0]  # "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP AFTER ..."
  (example,) = instructuie.make_examples(record, "NER", seed=0)
  instruction, rest = example["inputs"].split("Option: ", 1)
  assert instruction in instructuie.INSTRUCTIONS["NER"]
  assert rest == (f"person, location, organisation, misc \nText: "
                  f"{record.text} \nAnswer:")
  assert example["targets"] == " organisation: LEICESTERSHIRE"
  assert json.loads(example["gold"]) == [["organisation", "LEICESTERSHIRE"]]
  assert json.loads(example["labels"]) == list(record.entity_types)
  assert {k: type(v) for k, v in example.items()} == {
      k: str for k in ("inputs", "targets", "task", "dataset", "id", "labels",
                       "gold", "text")}


def test_sentence_without_entities_targets_none(conll):
  empty = next(r for r in conll if not r.entities)
  (example,) = instructuie.make_examples(empty, "NER")
  assert example["targets"] == " None"
  assert json.loads(example["gold"]) == []


def test_multi_entity_target_keeps_mentions_in_text_order(conll):
  record = next(r for r in conll if len(r.entities) >= 3)
  (example,) = instructuie.make_examples(record, "NER")
  expected = "; ".join(f"{e.type}: {e.text}" for e in record.entities)
  assert example["targets"] == " " + expected


def test_relation_and_auxiliary_layouts(conll04):
  record = next(r for r in conll04 if len(r.relations) >= 1)
  rel = sorted(record.relations, key=lambda r: (r.head.start, r.tail.start))[0]
  (re_ex,) = instructuie.make_examples(record, "RE")
  assert re_ex["targets"].startswith(f" {rel.type}: {rel.head.text}, "
                                     f"{rel.tail.text}")
  assert "Option: Work_For, Kill, OrgBased_In, Live_In, Located_In \n" in (
      re_ex["inputs"])
  (epr,) = instructuie.make_examples(record, "EPR")
  assert f" Entity Pairs: {rel.head.text}, {rel.tail.text}" in epr["inputs"]
  (et,) = instructuie.make_examples(record, "ET")
  assert f" Entities: {record.entities[0].text}" in et["inputs"]


def test_event_layout_on_casie(casie):
  record = casie[0]
  (ee,) = instructuie.make_examples(record, "EE")
  first = sorted(record.events, key=lambda e: (e.trigger.start, e.type))[0]
  assert ee["targets"].startswith(f" ( {first.type}: {first.trigger.text}, ")
  eea = instructuie.make_examples(record, "EEA", roles={"Databreach": [
      "Attacker", "Victim", "Compromised-Data"]})
  assert len(eea) == len(record.events)
  assert len({e["id"] for e in eea}) == len(eea)


# --- paraphrase choice -----------------------------------------------------------

def test_paraphrases_are_deterministic_and_vary(conll):
  first = [instructuie.make_examples(r, "NER", seed=3)[0]["inputs"]
           for r in conll]
  again = [instructuie.make_examples(r, "NER", seed=3)[0]["inputs"]
           for r in conll]
  assert first == again
  used = {i.split("Option:")[0] for i in first}
  assert len(used) >= 3  # 60 sentences spread over the 4 paraphrases
  other_seed = [instructuie.make_examples(r, "NER", seed=4)[0]["inputs"]
                for r in conll]
  assert other_seed != first


def test_paraphrase_choice_is_stable_across_processes():
  # Loads selection.py alone (no package import) under two hash seeds.
  path = os.path.join(os.path.dirname(instructuie.__file__), "selection.py")
  code = ("import importlib.util as u, sys;"
          f"s = u.spec_from_file_location('sel', {path!r});"
          "m = u.module_from_spec(s); s.loader.exec_module(m);"
          "print([m.choose_index(4, 7, 'RE', 'conll04', str(i)) "
          "for i in range(12)])")
  outputs = set()
  for hash_seed in ("1", "2"):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    outputs.add(subprocess.run([sys.executable, "-c", code], env=env,
                               capture_output=True, text=True,
                               check=True).stdout)
  assert len(outputs) == 1
  indices = json.loads(outputs.pop())
  assert len(set(indices)) > 1
  paraphrases = instructuie.INSTRUCTIONS["RE"]
  assert [paraphrases[i] for i in indices] == [
      instructuie.choose_instruction("RE", 7, "conll04", str(i))
      for i in range(12)]


def test_every_task_has_at_least_three_paraphrases():
  for task in instructuie.TASKS:
    assert len(set(instructuie.INSTRUCTIONS[task])) >= 3, task


def test_instruction_override_replaces_the_paraphrases_of_that_task_only(conll):
  record = conll[0]
  default = instructuie.make_examples(record, "NER")[0]["inputs"]
  bare = instructuie.make_examples(record, "NER", instructions={"NER": ""})[0]["inputs"]
  assert bare.startswith("Option: ") and default.endswith(bare)
  assert len(bare) < len(default)
  short = instructuie.make_examples(record, "NER", instructions={"NER": "Find entities."})
  assert short[0]["inputs"] == "Find entities. \n" + bare
  # Targets and gold do not depend on the instruction; other tasks keep theirs.
  assert short[0]["targets"] == instructuie.make_examples(record, "NER")[0]["targets"]
  assert instructuie.make_examples(record, "ES", instructions={"NER": ""}) == \
      instructuie.make_examples(record, "ES")


def test_unknown_task_is_an_error(conll):
  with pytest.raises(ValueError, match="unknown InstructUIE task"):
    instructuie.make_examples(conll[0], "NERD")


# --- round trips: parse(target) == gold ------------------------------------------

def _round_trip(examples):
  failures = []
  for ex in examples:
    result = parsing.postprocess(ex["targets"], ex)
    gold = parsing.postprocess(ex["targets"], ex, is_target=True)
    if not result["parse_ok"] or result["items"] != gold["items"]:
      failures.append((ex["id"], ex["targets"], result["items"]))
  return failures


@pytest.mark.parametrize("task", ["NER", "ES", "ET"])
def test_round_trip_crossner_ai_dev(crossner_ai, task):
  examples = [ex for r in crossner_ai
              for ex in instructuie.make_examples(r, task)]
  assert len(examples) >= 300
  assert _round_trip(examples) == []


@pytest.mark.parametrize("task", ["NER", "ES", "ET", "RE", "EP", "EPR"])
def test_round_trip_conll04_dev(conll04, task):
  examples = [ex for r in conll04 for ex in instructuie.make_examples(r, task)]
  assert _round_trip(examples) == []


@pytest.mark.parametrize("task", ["EE", "EET", "EEA"])
def test_round_trip_casie(casie, task):
  roles = sorted({a.role for r in casie for ev in r.events
                  for a in ev.arguments})
  examples = [ex for r in casie
              for ex in instructuie.make_examples(r, task, roles=roles)]
  assert examples
  assert _round_trip(examples) == []


# --- conversation format --------------------------------------------------------

@pytest.fixture(scope="module")
def pile_ner(shared_data):
  """Pile-NER passages grouped from the (passage, type) lines; spans located."""
  by_passage: dict[str, dict] = {}
  path = os.path.join(shared_data, "pile_ner_sample", "slimer_validation.jsonl")
  with open(path, encoding="utf-8") as f:
    for line in f:
      row = json.loads(line)
      pid = row["doc_question_pairID"].split(":")[0]
      entry = by_passage.setdefault(pid, {"text": row["input"], "types": [],
                                          "entities": []})
      entry["types"].append(row["tagName"])
      for span in json.loads(row["output"]):
        start = entry["text"].find(span)
        if start >= 0:
          entry["entities"].append(Entity(start, start + len(span),
                                          row["tagName"], span))
  return [Record(pid, e["text"], tuple(e["entities"]), dataset="pile_ner",
                 split="validation", entity_types=tuple(e["types"]))
          for pid, e in list(by_passage.items())[:150]]


def test_conversation_examples_one_per_type(pile_ner):
  record = next(r for r in pile_ner if r.entities and len(r.entity_types) > 1)
  examples = conversation.make_examples(record)
  assert [json.loads(e["labels"])[0] for e in examples][:1] == [
      min(record.entities, key=lambda e: e.start).type]
  assert {json.loads(e["labels"])[0] for e in examples} == set(
      record.entity_types)
  for ex in examples:
    asked = json.loads(ex["labels"])[0]
    assert ex["inputs"] == (f"Text: {record.text}\nUSER: What describes "
                            f"{asked} in the text?\nASSISTANT:")
    spans = json.loads(ex["targets"])
    assert spans == conversation.spans_of_type(record, asked)
    assert len(spans) == len(set(spans))


def test_conversation_negatives_and_tags(pile_ner):
  counts = {"person": 50, "organization": 30, "date": 10, "gene": 1}
  sampler = conversation.TypeSampler(counts)
  record = pile_ner[0]
  a = conversation.make_examples(record, seed=1, type_sampler=sampler,
                                 num_negatives=2, dataset_tag=True,
                                 definitions={"person": "a human being"})
  b = conversation.make_examples(record, seed=1, type_sampler=sampler,
                                 num_negatives=2, dataset_tag=True,
                                 definitions={"person": "a human being"})
  assert a == b
  own = len(set(record.entity_types))
  assert len(a) == own + 2
  for ex in a[own:]:
    assert ex["targets"] == "[]" or json.loads(ex["labels"])[0] in (
        record.entity_types)
  assert all(ex["inputs"].startswith("Dataset: pile_ner \nText: ")
             for ex in a)
  defined = [ex for ex in a if json.loads(ex["labels"])[0] == "person"]
  for ex in defined:
    assert "in the text? Definition: a human being\nASSISTANT:" in ex["inputs"]


def test_type_sampler_follows_frequency():
  import random
  sampler = conversation.TypeSampler({"common": 90, "rare": 10})
  rng = random.Random(0)
  firsts = [sampler.sample(1, rng)[0] for _ in range(2000)]
  share = firsts.count("common") / len(firsts)
  assert 0.85 < share < 0.95
  assert sampler.sample(5, rng, exclude=["COMMON"]) == ["rare"]


def test_round_trip_conversation(pile_ner):
  examples = [ex for r in pile_ner for ex in conversation.make_examples(r)]
  assert any(ex["targets"] == "[]" for ex in examples)
  assert _round_trip(examples) == []
