"""BIO column files: CoNLL-2003 and CrossNER (token first), MIT (tag first)."""
from __future__ import annotations

import os

import pytest

from ie_tasks.readers import bio, label_maps
from ie_tasks.readers.stats import ReadStats
from ie_tasks.records import DataError

MIT_COLUMNS = dict(token_column=1, tag_column=0)


def _entities(record):
  return [(e.text, e.type) for e in record.entities]


def test_conll2003_sentence_counts_match_provenance(shared_data):
  counts = {split: len(bio.read_bio(
      os.path.join(shared_data, "crossner", "conll2003", f"{split}.txt"),
      dataset="conll2003", split=split)) for split in ("train", "dev", "test")}
  assert counts == {"train": 14041, "dev": 3250, "test": 3453}


def test_conll2003_first_sentence_with_ie_instructions_names(shared_data):
  records = bio.read_bio(
      os.path.join(shared_data, "crossner", "conll2003", "train.txt"),
      dataset="conll2003", split="train",
      type_map=label_maps.CROSSNER_TO_IE_INSTRUCTIONS,
      labels=label_maps.IE_INSTRUCTIONS_LABELS["conll2003"])
  first = records[0]
  assert first.text == "EU rejects German call to boycott British lamb ."
  assert _entities(first) == [("EU", "organization"), ("German", "else"),
                              ("British", "else")]
  assert first.entity_types == ("location", "else", "organization", "person")
  for record in records:
    record.validate()


def test_crossner_ai_multi_token_entities_and_seen_types(shared_data):
  records = bio.read_bio(os.path.join(shared_data, "crossner", "ai",
                                      "train.txt"),
                         dataset="crossner_ai", split="train")
  assert len(records) == 100
  first = records[0]
  assert ("opinion-based recommender system", "product") in _entities(first)
  assert ("sentiment analysis", "task") in _entities(first)
  assert ("Multimodal sentiment analysis", "task") in _entities(first)
  # Without labels the universe is the raw types seen in the file.
  assert "programlang" in first.entity_types
  assert first.entity_types == tuple(sorted(first.entity_types))


@pytest.mark.parametrize("domain,counts", [
    ("movie", {"train": 9775, "test": 2443}),
    ("restaurant", {"train": 7660, "test": 1521}),
])
def test_mit_tag_first_counts(shared_data, domain, counts):
  found = {split: len(bio.read_bio(
      os.path.join(shared_data, "mit", domain, f"{split}.txt"),
      dataset=f"mit_{domain}", split=split, **MIT_COLUMNS))
           for split in counts}
  assert found == counts


def test_mit_movie_first_sentence(shared_data):
  records = bio.read_bio(os.path.join(shared_data, "mit", "movie",
                                      "train.txt"),
                         dataset="mit_movie", split="train",
                         type_map=label_maps.MIT_MOVIE_TO_IE_INSTRUCTIONS,
                         labels=label_maps.IE_INSTRUCTIONS_LABELS["mit_movie"],
                         **MIT_COLUMNS)
  assert records[0].text == "what movies star bruce willis"
  assert _entities(records[0]) == [("bruce willis", "actor")]
  assert "average ratings" in records[0].entity_types


def test_reading_mit_with_token_first_columns_fails_loudly(shared_data):
  path = os.path.join(shared_data, "mit", "movie", "test.txt")
  with pytest.raises(DataError, match="unknown tag") as info:
    bio.read_bio(path, dataset="mit_movie", split="test")
  assert info.value.path == path and info.value.line == 1


def _write(tmp_path, text):
  path = tmp_path / "bad.txt"
  path.write_text(text, encoding="utf-8")
  return str(path)


BROKEN = ("-DOCSTART-\tO\n\nJohn\tB-PER\nSmith\tI-PER\n\n"
          "lives\tO\nin\tO\nNew\tI-LOC\nYork\tI-LOC\n\nParis\tB-LOC\n")


def test_i_without_b_names_file_line_and_tag(tmp_path):
  path = _write(tmp_path, BROKEN)
  with pytest.raises(DataError) as info:
    bio.read_bio(path, dataset="toy", split="train")
  assert info.value.line == 8 and info.value.value == "I-LOC"
  assert "bad.txt" in str(info.value) and "line 8" in str(info.value)
  assert "field 'tag'" in str(info.value)


def test_skip_invalid_counts_the_bad_sentence(tmp_path):
  stats = ReadStats()
  records = bio.read_bio(_write(tmp_path, BROKEN), dataset="toy",
                         split="train", skip_invalid=True, stats=stats)
  assert [r.text for r in records] == ["John Smith", "Paris"]
  assert stats.read == 2 and stats.skipped["invalid_sentence"] == 1
  assert "line 8" in stats.summary()


def test_iob1_scheme_repairs_i_without_b(tmp_path):
  records = bio.read_bio(_write(tmp_path, BROKEN), dataset="toy",
                         split="train", scheme="iob1")
  assert _entities(records[1]) == [("New York", "LOC")]


def test_unknown_type_against_labels(tmp_path):
  with pytest.raises(DataError, match="not in labels") as info:
    bio.read_bio(_write(tmp_path, "Paris\tB-LOC\nis\tO\n"), dataset="toy",
                 split="train", labels=["PER"])
  assert info.value.line == 1


def test_bioes_and_bilou_tags():
  assert bio.tags_to_spans(["S-PER", "O", "B-LOC", "I-LOC", "E-LOC"],
                           "bioes") == [(0, 1, "PER"), (2, 5, "LOC")]
  assert bio.tags_to_spans(["U-Peop", "B-Org", "L-Org"],
                           "bioes") == [(0, 1, "Peop"), (1, 3, "Org")]
  with pytest.raises(bio.TagSequenceError):
    bio.tags_to_spans(["B-LOC", "O"], "bioes")  # never closed by E-
  with pytest.raises(bio.TagSequenceError):
    bio.tags_to_spans(["B-LOC", "I-PER"], "bio")  # type changes inside
