"""The embedded default sample: deterministic, valid, with held-out names."""
import filecmp

from ie_tasks import records, sample


def test_generation_is_deterministic_and_valid():
  a = sample.generate_records("train", num=300)
  b = sample.generate_records("train", num=300)
  assert a == b
  for r in a:
    r.validate()  # every span matches the text at its offsets
  assert sample.generate_records("train", num=50, seed=1) != a[:50]


def test_prepare_writes_identical_files_twice(tmp_path):
  first = sample.prepare_sample(str(tmp_path / "a"))
  second = sample.prepare_sample(str(tmp_path / "b"))
  for split, size in sample.SPLIT_SIZES.items():
    assert filecmp.cmp(f"{first}/{split}.jsonl", f"{second}/{split}.jsonl",
                       shallow=False)
    loaded = list(records.read_jsonl(f"{first}/{split}.jsonl"))
    assert len(loaded) == size and loaded[0].split == split


def test_every_structure_kind_occurs_and_splits_differ():
  train = sample.generate_records("train")
  test = sample.generate_records("test")
  for split in (train, test):
    assert {e.type for r in split for e in r.entities} == set(
        sample.ENTITY_TYPES)
    assert {x.type for r in split for x in r.relations} == set(
        sample.RELATION_TYPES)
    assert {ev.type for r in split for ev in r.events} == set(
        sample.EVENT_TYPES)
    assert any(not r.entities for r in split)  # true negatives exist
  # Held-out gazetteer entries appear only outside train.
  train_people = {e.text for r in train for e in r.entities
                  if e.type == "person"}
  test_people = {e.text for r in test for e in r.entities
                 if e.type == "person"}
  assert test_people - train_people
  assert not any(name.startswith(sample._FIRST[-1] + " ")
                 for name in train_people)
