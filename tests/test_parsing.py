"""Output parsers on the kinds of text models really emit; none may raise."""
from __future__ import annotations

import pytest

from ie_tasks import parsing

CONLL_LABELS = ["person", "location", "organization", "else"]
# A real CoNLL04 sentence (dev) with commas inside a span.
SENTENCE = ("The Palace of Fine Arts in San Francisco , Calif. , hosts the "
            "show , Kevin O 'Brien said .")


def test_clean_ner_output():
  result = parsing.parse_ner_output(
      " person: Peter Blackburn; location: BRUSSELS", CONLL_LABELS)
  assert result.items == [("person", "Peter Blackburn"),
                          ("location", "BRUSSELS")]
  assert result.ok and result.num_unparsable == 0


@pytest.mark.parametrize("text", [" None", "None", "none.", "[]", "  NONE "])
def test_none_means_no_items(text):
  assert parsing.parse_ner_output(text, CONLL_LABELS) == parsing.ParseResult([])


def test_empty_output_is_unparsable():
  result = parsing.parse_ner_output("   ", CONLL_LABELS)
  assert result.items == [] and not result.ok and result.num_unparsable == 1


def test_missing_separator_and_duplicates():
  result = parsing.parse_ner_output(
      "person: Peter Blackburn location: BRUSSELS;;person: Peter Blackburn ",
      CONLL_LABELS)
  assert result.items == [("person", "Peter Blackburn"),
                          ("location", "BRUSSELS")]
  assert result.ok


def test_old_comma_separated_items_and_echoed_prompt():
  result = parsing.parse_ner_output(
      "Option: person \nText: x \nAnswer: Person: EU, location: Bonn ,",
      CONLL_LABELS)
  # Type spelling follows the options; "Bonn ," keeps its real comma.
  assert result.items == [("person", "EU"), ("location", "Bonn ,")]


def test_truncated_output_keeps_complete_items():
  result = parsing.parse_ner_output("person: Peter; organization: Eur; loca",
                                    CONLL_LABELS)
  assert result.items == [("person", "Peter"), ("organization", "Eur")]
  assert not result.ok and result.num_unparsable == 1


def test_unknown_types_are_kept_and_counted():
  result = parsing.parse_ner_output("animal: dog; person: Ann", CONLL_LABELS)
  assert result.items == [("animal", "dog"), ("person", "Ann")]
  assert result.ok and result.num_unknown == 1


def test_relation_with_commas_inside_spans_uses_the_sentence():
  labels = ["Located_In", "Live_In"]
  result = parsing.parse_re_output(
      " Located_In: San Francisco , Calif., USA; Live_In: Kevin O 'Brien, "
      "San Francisco , Calif.", labels, SENTENCE)
  assert result.items == [
      ("Located_In", "San Francisco , Calif.", "USA"),
      ("Live_In", "Kevin O 'Brien", "San Francisco , Calif.")]
  # Both sides found in the sentence beats the tight-comma rule.
  result = parsing.parse_re_output(
      "Located_In: Palace of Fine Arts, San Francisco , Calif.", labels,
      SENTENCE)
  assert result.items == [("Located_In", "Palace of Fine Arts",
                           "San Francisco , Calif.")]


def test_relation_pieces_without_pair_are_counted():
  result = parsing.parse_re_output("Kill: Booth, Lincoln; Kill: Booth; Kill",
                                   ["Kill"])
  assert result.items == [("Kill", "Booth", "Lincoln")]
  assert result.num_unparsable == 2 and not result.ok


def test_span_list_rejoins_spans_with_commas():
  result = parsing.parse_span_output(
      " Palace of Fine Arts, San Francisco , Calif., Kevin O 'Brien",
      sentence=SENTENCE)
  assert result.items == [("Palace of Fine Arts",),
                          ("San Francisco , Calif.",), ("Kevin O 'Brien",)]


def test_event_output_with_truncation_and_none_arguments():
  text = (" ( Databreach: accessed, Victim: patients, Compromised-Data: "
          "phone numbers, addresses) , ( Attack: breached, None) , ( Ransom: "
          "dem")
  result = parsing.parse_ee_output(text, ["Databreach", "Attack", "Ransom"],
                                   roles=["Victim", "Compromised-Data"])
  assert result.items == [
      ("Databreach", "accessed", (("Victim", "patients"),
                                  ("Compromised-Data",
                                   "phone numbers, addresses"))),
      ("Attack", "breached", ()),
      ("Ransom", "dem", ())]
  assert not result.ok and result.num_unparsable == 1


def test_event_output_without_role_list():
  result = parsing.parse_ee_output("( Attack: hit, Attacker: they,Victim: NHS)")
  assert result.items == [("Attack", "hit", (("Attacker", "they"),
                                             ("Victim", "NHS")))]


@pytest.mark.parametrize("text, items, ok", [
    ('["Peter Blackburn", "BRUSSELS", "BRUSSELS"]',
     [("Peter Blackburn",), ("BRUSSELS",)], True),
    ("```json\n['EU', 'German']\n```", [("EU",), ("German",)], True),
    ('Sure! ["EU"] is the answer.', [("EU",)], True),
    ('["EU", "Ger', [("EU",)], False),
    ('["a]b", "c"]', [("a]b",), ("c",)], True),
    ('[1, "EU"]', [("EU",)], False),
    ("[]", [], True),
    ("no list here", [], False),
    ("", [], False),
])
def test_conversation_outputs(text, items, ok):
  result = parsing.parse_conversation_output(text)
  assert result.items == items
  assert result.ok == ok


def test_parse_output_never_raises_on_garbage():
  garbage = ["(((", ")))", ":::", ";;;", ",,,", "\x00\xff", "[" * 50,
             "( : , : )", b"\xff\xfe bytes", "Answer:", "type:"]
  for task in ["NER", "RE", "EE", "ES", "ET", "EP", "EPR", "EET", "EEA",
               "CONV"]:
    for text in garbage:
      result = parsing.parse_output(task, text, ["person"], "a sentence")
      assert isinstance(result.items, list)


def test_postprocess_handles_bytes_fields_like_seqio_examples():
  example = {"task": b"NER", "dataset": b"conll2003", "id": b"7",
             "labels": b'["person", "location"]',
             "gold": b'[["person", "Peter"]]', "text": b"Peter went home ."}
  target = parsing.postprocess(b" person: Peter", example, is_target=True)
  pred = parsing.postprocess(b" person: Peter; location: home; loc", example)
  assert target == {"task": "NER", "dataset": "conll2003", "id": "7",
                    "items": [("person", "Peter")], "parse_ok": True,
                    "num_unparsable": 0, "num_unknown": 0}
  assert pred["items"] == [("person", "Peter"), ("location", "home")]
  assert not pred["parse_ok"]


def test_postprocess_conversation_types_the_spans():
  example = {"task": "CONV", "dataset": "pile_ner", "id": "1:court",
             "labels": '["court"]', "gold": '["Superior Court"]'}
  assert parsing.postprocess('["Superior Court"]', example,
                             is_target=True)["items"] == [
                                 ("court", "Superior Court")]
  assert parsing.postprocess("['superior court']", example)["items"] == [
      ("court", "superior court")]
