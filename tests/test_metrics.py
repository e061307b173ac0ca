"""Metrics against hand-computed counts on real sentences.

The sentences are the first CoNLL-2003 dev sentences (crossner/conll2003),
the first CrossNER-AI dev sentence (IE INSTRUCTIONS copy), the first CoNLL04
dev sentence and a CASIE sentence; the predictions are typical model errors.
"""
from __future__ import annotations

import pytest

from ie_tasks import metrics, parsing
from ie_tasks.records import Argument, Entity, Event, Record, Relation, Span
from ie_tasks.templates import conversation, instructuie


def entity(text: str, span: str, type_: str, occurrence: int = 0) -> Entity:
  start = -1
  for _ in range(occurrence + 1):
    start = text.index(span, start + 1)
  return Entity(start, start + len(span), type_, span)


def conll_record(i: int, text: str, spans: list[tuple[str, str]]) -> Record:
  return Record(f"dev-{i}", text, tuple(entity(text, s, t) for s, t in spans),
                dataset="conll2003", split="dev",
                entity_types=("person", "location", "organisation", "misc"))


CONLL = [
    (conll_record(0, "CRICKET - LEICESTERSHIRE TAKE OVER AT TOP AFTER "
                  "INNINGS VICTORY .", [("LEICESTERSHIRE", "organisation")]),
     " organisation: leicestershire"),                # tp 1
    (conll_record(1, "LONDON 1996-08-30", [("LONDON", "location")]),
     " location: LONDON; location: LONDON; person: LONDON"),  # tp 1, fp 1
    (conll_record(2, "West Indian all-rounder Phil Simmons took four for 38 "
                  "on Friday as Leicestershire beat Somerset by an innings "
                  "and 39 runs in two days to take over at the head of the "
                  "county championship .",
                  [("West Indian", "misc"), ("Phil Simmons", "person"),
                   ("Leicestershire", "organisation"),
                   ("Somerset", "organisation")]),
     " misc: West Indian; person: Phil Simmons; organisation: Leicestershire;"
     " location: Somerset; organisation: Somerset"),  # tp 4, fp 1
    (conll_record(3, "Their stay on top , though , may be short-lived as "
                  "title rivals Essex , Derbyshire and Surrey all closed in "
                  "on victory while Kent made up for lost time in their "
                  "rain-affected match against Nottinghamshire .",
                  [("Essex", "organisation"), ("Derbyshire", "organisation"),
                   ("Surrey", "organisation"), ("Kent", "organisation"),
                   ("Nottinghamshire", "organisation")]),
     " organisation: Essex; organisation: Derbyshire; organi"),  # tp 2, cut
]
# conll2003 totals: tp 8, predicted 10, support 11, one unparsable output.
CONLL_P, CONLL_R = 80.0, 800 / 11
CONLL_F1 = 2 * CONLL_P * CONLL_R / (CONLL_P + CONLL_R)  # 76.19...

AI_TEXT = "Here , accuracy is measured by error rate , which is defined as :"
AI = (Record("0", AI_TEXT, (entity(AI_TEXT, "accuracy", "metrics"),
                            entity(AI_TEXT, "error rate", "metrics")),
             dataset="crossner_ai", split="dev",
             entity_types=("metrics", "task", "algorithm")),
      " metrics: accuracy; metrics: the error rate.")
# InstructUIE strings: "the error rate." != "error rate": P = R = F1 = 50.
# UniversalNER (SQuAD) normalisation drops "the" and ".": P = R = F1 = 100.


def _pairs(examples_and_outputs):
  golds, preds = [], []
  for example, output in examples_and_outputs:
    golds.append(parsing.postprocess(example["targets"], example,
                                     is_target=True))
    preds.append(parsing.postprocess(output, example))
  return golds, preds


def ner_pairs():
  pairs = [(instructuie.make_examples(r, "NER")[0], out)
           for r, out in CONLL + [AI]]
  return _pairs(pairs)


def test_entity_scores_per_dataset_match_hand_counts():
  golds, preds = ner_pairs()
  scores = metrics.score_examples(golds, preds)
  assert set(scores) == {"entity"}
  conll = scores["entity"]["per_dataset"]["conll2003"]
  assert (conll["true_positives"], conll["num_predicted"], conll["support"],
          conll["unparsable"]) == (8, 10, 11, 1)
  assert conll["precision"] == pytest.approx(CONLL_P)
  assert conll["recall"] == pytest.approx(CONLL_R)
  assert conll["f1"] == pytest.approx(CONLL_F1)
  ai = scores["entity"]["per_dataset"]["crossner_ai"]
  assert (ai["precision"], ai["recall"], ai["f1"]) == (50.0, 50.0, 50.0)
  average = scores["entity"]["average"]
  assert average["f1"] == pytest.approx((CONLL_F1 + 50.0) / 2)
  assert average["support"] == 13 and average["num_datasets"] == 2


def test_universalner_convention_normalises_articles_and_punctuation():
  golds, preds = ner_pairs()
  scores = metrics.score_examples(golds, preds, convention="universalner")
  assert scores["entity"]["per_dataset"]["crossner_ai"]["f1"] == 100.0
  assert scores["entity"]["per_dataset"]["conll2003"]["f1"] == pytest.approx(
      CONLL_F1)
  assert scores["entity"]["average"]["f1"] == pytest.approx(
      (CONLL_F1 + 100.0) / 2)


def test_seqio_metric_functions_return_flat_floats():
  golds, preds = ner_pairs()
  flat = metrics.instructuie_metrics(golds, preds)
  assert flat["entity/conll2003/f1"] == pytest.approx(CONLL_F1)
  assert flat["entity/average/unparsable"] == 1.0
  assert all(isinstance(v, float) for v in flat.values())
  assert metrics.entity_f1(golds, preds)["entity/crossner_ai/f1"] == 50.0
  assert metrics.universalner_metrics(golds, preds)[
      "uniner/entity/crossner_ai/f1"] == 100.0
  assert metrics.relation_strict_f1(golds, preds) == {}


def test_perfect_predictions_score_100_and_empty_ones_0():
  golds, _ = ner_pairs()
  examples = [instructuie.make_examples(r, "NER")[0] for r, _ in CONLL]
  perfect = metrics.evaluate_outputs(examples, [e["targets"] for e in examples])
  assert perfect["entity"]["average"]["f1"] == 100.0
  empty = metrics.evaluate_outputs(examples, [" None"] * len(examples))
  assert empty["entity"]["average"]["f1"] == 0.0
  assert empty["entity"]["average"]["unparsable"] == 0


CONLL04_TEXT = ("John Wilkes Booth , who assassinated President Lincoln , "
                "was an actor .")


def test_relation_strict_and_boundary():
  head = entity(CONLL04_TEXT, "John Wilkes Booth", "Peop")
  tail = entity(CONLL04_TEXT, "President Lincoln", "Peop")
  record = Record("0", CONLL04_TEXT, (head, tail),
                  (Relation(head, tail, "Kill"),), dataset="conll04",
                  relation_types=("Kill", "Live_In"))
  (example,) = instructuie.make_examples(record, "RE")
  golds, preds = _pairs([(example, " Kill: John Wilkes Booth, Lincoln; "
                                   "Live_In: John Wilkes Booth, President "
                                   "Lincoln")])
  scores = metrics.score_examples(golds, preds)
  strict = scores["relation_strict"]["per_dataset"]["conll04"]
  assert (strict["true_positives"], strict["num_predicted"],
          strict["support"], strict["f1"]) == (0, 2, 1, 0.0)
  boundary = scores["relation_boundary"]["per_dataset"]["conll04"]
  assert (boundary["precision"], boundary["recall"]) == (50.0, 100.0)
  assert boundary["f1"] == pytest.approx(200 / 3)


def test_event_trigger_and_argument():
  text = ("Those affected were notified that their phone numbers and "
          "addresses had been accessed .")
  trigger = text.index("accessed")
  record = Record("casie-1", text, events=(Event(
      Span(trigger, trigger + 8, "accessed"), "Databreach",
      (Argument(text.index("addresses"), text.index("addresses") + 9,
                "Compromised-Data", "addresses"),
       Argument(0, 14, "Victim", "Those affected"))),), dataset="casie",
      event_types=("Databreach", "Phishing"))
  (example,) = instructuie.make_examples(record, "EE")
  golds, preds = _pairs([(example, " ( Databreach: accessed, Victim: those "
                                   "affected, Attacker: staff) ")])
  scores = metrics.score_examples(golds, preds)
  assert scores["event_trigger"]["per_dataset"]["casie"]["f1"] == 100.0
  args = scores["event_argument"]["per_dataset"]["casie"]
  assert (args["true_positives"], args["num_predicted"], args["support"]) == (
      1, 2, 2)
  assert args["f1"] == 50.0


def test_conversation_examples_score_per_passage_and_type():
  text = "Peter Blackburn spoke in BRUSSELS on Thursday ."
  record = Record("p1", text, (entity(text, "Peter Blackburn", "person"),
                               entity(text, "BRUSSELS", "location")),
                  dataset="pile_ner", entity_types=("person", "location",
                                                    "date"))
  examples = conversation.make_examples(record)
  outputs = {"person": '["Peter Blackburn", "Peter Blackburn"]',
             "location": '["Brussels", "Thursday"]',
             "date": '["Thursday"'}  # truncated
  pairs = [(ex, outputs[ex["id"].split(":")[1]]) for ex in examples]
  golds, preds = _pairs(pairs)
  result = metrics.score_examples(golds, preds)["entity"]["per_dataset"][
      "pile_ner"]
  # Gold: person {peter blackburn}, location {brussels}, date {}.
  # Predicted: person {peter blackburn}, location {brussels, thursday},
  # date {thursday} (recovered from the cut list): tp 2 of 4 predicted.
  assert (result["true_positives"], result["num_predicted"],
          result["support"], result["unparsable"]) == (2, 4, 2, 1)
  assert result["precision"] == 50.0 and result["recall"] == 100.0


def test_mismatched_lengths_are_an_error():
  golds, preds = ner_pairs()
  with pytest.raises(ValueError, match="targets but"):
    metrics.score_examples(golds, preds[:-1])
