"""Mention replacement (ie_tasks/augment.py) on real CoNLL-2003 and CoNLL04 records."""
import gin
import numpy as np
import pytest

from ie_tasks import augment, datasets, tasks
from ie_tasks.records import Entity, Record

pytestmark = pytest.mark.usefixtures("clean_gin")


@pytest.fixture
def conll_train(ie_data_dir):
  return datasets.load_records("conll2003", "train")[:300]


def test_copies_swap_mentions_for_same_type_ones_and_stay_valid(conll_train):
  out = augment.augment_records(conll_train, copies=1, rate=1.0, seed=0)
  assert out[:len(conll_train)] == conll_train  # the originals come first, unchanged
  copies = out[len(conll_train):]
  assert len(copies) > len(conll_train) // 2
  pool = augment.mention_pool(conll_train)
  originals = {r.id: r for r in conll_train}
  for copy in copies:
    copy.validate()  # every span matches the rebuilt text
    source = originals[copy.id.split("#mr")[0]]
    assert [e.type for e in copy.entities] == [e.type for e in sorted(source.entities)]
    assert all(e.text in pool[e.type] for e in copy.entities)
    assert copy.text != source.text
    # The words around the mentions are the source's, in order.
    context = lambda r: [r.text[a.end:b.start] for a, b in zip(r.entities, r.entities[1:])]
    assert context(copy) == context(Record(source.id, source.text, tuple(sorted(source.entities))))


def test_same_seed_same_copies_and_rate_zero_or_no_copies_is_the_identity(conll_train):
  first = augment.augment_records(conll_train, copies=2, rate=0.5, seed=3)
  assert first == augment.augment_records(conll_train, copies=2, rate=0.5, seed=3)
  assert first != augment.augment_records(conll_train, copies=2, rate=0.5, seed=4)
  assert {r.id.split("#")[-1] for r in first[len(conll_train):]} == {"mr0", "mr1"}
  assert augment.augment_records(conll_train, copies=0, rate=1.0, seed=0) == conll_train
  assert augment.augment_records(conll_train, copies=1, rate=0.0, seed=0) == conll_train


def test_records_with_relations_or_nested_entities_are_left_alone(ie_data_dir):
  conll04 = datasets.load_records("conll04", "train")[:50]
  assert augment.augment_records(conll04, copies=1, rate=1.0, seed=0) == conll04
  nested = Record("n", "New York City", (Entity(0, 13, "location", "New York City"),
                                         Entity(0, 8, "location", "New York")))
  pool = {"location": ["Paris", "New York City", "New York"]}
  assert augment.replace_mentions(nested, pool, 1.0, np.random.default_rng(0)) is None


def test_bad_options_are_clear_errors():
  with pytest.raises(ValueError, match="rate in"):
    augment.mention_replacement_options(rate=1.5)


def test_gin_adds_copies_to_train_examples_only(ie_data_dir):
  name = "ie_ner_conll2003_instructuie"
  gin.parse_config("ie_tasks.max_instances.per_dataset = {'conll2003': 200}")
  train = len(tasks.task_examples(name, "train"))
  validation = len(tasks.task_examples(name, "validation"))
  gin.parse_config("ie_tasks.mention_replacement_options.copies = 1")
  gin.parse_config("ie_tasks.mention_replacement_options.rate = 1.0")
  augmented = tasks.task_examples(name, "train")
  assert train < len(augmented) <= 2 * train
  assert any("#mr0" in ex["id"] for ex in augmented)
  assert len(tasks.task_examples(name, "validation")) == validation
  # Relation tasks never get copies.
  re_name = "ie_re_conll04_instructuie"
  assert not any("#mr" in ex["id"] for ex in tasks.task_examples(re_name, "train"))


def test_novel_names_are_new_valid_and_keep_each_words_casing(conll_train):
  out = augment.augment_records(conll_train, copies=1, rate=1.0, seed=0, novel_rate=1.0)
  copies = out[len(conll_train):]
  assert len(copies) > len(conll_train) // 2
  pool = augment.mention_pool(conll_train)
  seen = {m for mentions in pool.values() for m in mentions}
  mentions = [e.text for copy in copies for e in copy.entities]
  for copy in copies:
    copy.validate()
  # Nearly every mention is a name no training sentence has: nothing to memorise.
  assert sum(m not in seen for m in mentions) > 0.8 * len(mentions)
  rng = np.random.default_rng(0)
  words = ["Moody", "Ladki", "Cuttitta", "Jayasuriya"]
  for _ in range(50):
    upper, title = augment.novel_mention("SRI LANKA", words, rng), augment.novel_mention(
        "Bank of England", words, rng)
    assert upper.isupper() and len(upper.split()) == 2
    first, of, last = title.split()
    assert of == "of" and first[0].isupper() and first[1:].islower() and last.istitle()
  # Words without letters to blend, and types with fewer than two words, stay as they are.
  assert augment.novel_mention("1860 Munich", ["Ab"], rng) == "1860 Munich"
  assert augment.novel_mention("1860", words, rng) == "1860"
  with pytest.raises(ValueError, match="novel_rate"):
    augment.mention_replacement_options(novel_rate=2.0)
