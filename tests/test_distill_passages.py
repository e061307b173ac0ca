"""Passage sampling on real text: Pile passages and CrossNER sentences."""
from __future__ import annotations

import json
import os
import random

import pytest

from ie_tasks.distill import passages as pl
from ie_tasks.records import DataError
from ie_tasks.readers import conversation


@pytest.fixture(scope="module")
def pile_texts(shared_data) -> list[str]:
  records = conversation.read_pile_ner_pairs(
      os.path.join(shared_data, "pile_ner_sample", "slimer_validation.jsonl"),
      split="validation")
  return [r.text for r in records]


def _write_jsonl(path, texts, field="text"):
  with open(path, "w", encoding="utf-8") as f:
    for t in texts:
      f.write(json.dumps({"meta": {field: t}, "other": 1}) + "\n")


def test_passages_respect_the_token_limit_and_keep_whole_sentences(pile_texts):
  for text in pile_texts[:200]:
    pieces = list(pl.split_passages(text, max_tokens=64))
    sentences = pl.split_sentences(text)
    assert all(len(p.split()) <= 64 for p in pieces)
    # No word is lost or invented: the passages re-join to the document.
    assert " ".join(pieces).split() == text.split()
    # Every sentence that fits is inside one passage, not cut in two.
    for s in sentences:
      if len(s.split()) <= 64:
        assert any(s in p for p in pieces), s


def test_sentence_split_on_real_text():
  text = ("We are here concerned with an assumpsit action. After the filing "
          "of the complaint, Mr. Smith answered! Did he? \"Yes.\" Done")
  assert pl.split_sentences(text) == [
      "We are here concerned with an assumpsit action.",
      "After the filing of the complaint, Mr.", "Smith answered!",
      "Did he?", "\"Yes.\"", "Done"]


def test_a_vocabulary_counts_pieces_instead_of_words(pile_texts):
  chars = pl.vocabulary_token_count(type("V", (), {"encode": staticmethod(
      lambda t: list(t))})())
  for text in pile_texts[:30]:
    assert all(len(p) <= 300 for p in pl.split_passages(text, 300, chars))


def test_sampling_is_reproducible_deduplicated_and_order_free(tmp_path,
                                                              pile_texts):
  # Every passage fits in 256 tokens and upper-casing round-trips ('ß' won't).
  texts = [t for t in pile_texts if len(t.split()) <= 200 and
           t.upper().lower() == t.lower()][:300]
  # 50 documents come twice, once shouting: dedup ignores case and spacing.
  doubled = texts + [t.upper().replace(" ", "  ") for t in texts[:50]]
  _write_jsonl(tmp_path / "a.jsonl", doubled)
  shuffled = list(doubled)
  random.Random(1).shuffle(shuffled)
  _write_jsonl(tmp_path / "b.jsonl", shuffled)
  corpus = lambda name: pl.Corpus("jsonl", str(tmp_path / name), "meta.text")

  stats = pl.SampleStats()
  sample = pl.sample_passages([corpus("a.jsonl")], num_passages=100, seed=3,
                              max_tokens=256, stats=stats)
  again = pl.sample_passages([corpus("a.jsonl")], num_passages=100, seed=3)
  reordered = pl.sample_passages([corpus("b.jsonl")], num_passages=100, seed=3)
  other_seed = pl.sample_passages([corpus("a.jsonl")], num_passages=100, seed=4)
  everything = pl.sample_passages([corpus("a.jsonl")], num_passages=None)

  assert (stats.documents, stats.duplicates) == (350, 50)
  assert len(sample) == stats.sampled == 100
  assert sample == again
  # Shuffled, the same passages are drawn (the shouting copy of a duplicate
  # may be the one kept, so compare normalised text).
  norm = lambda ps: {pl.normalise(p["text"]) for p in ps}
  assert norm(reordered) == norm(sample)
  assert {p["id"] for p in other_seed} != {p["id"] for p in sample}
  assert len(everything) == stats.passages
  normalised = [pl.normalise(p["text"]) for p in everything]
  assert len(set(normalised)) == len(normalised)
  for p in sample:
    assert p["id"] == pl.passage_id(p["text"]) and p["source"] == "a.jsonl"
    assert len(p["text"].split()) <= 256
  # Corpus order is kept within the sample.
  position = {p["id"]: i for i, p in enumerate(everything)}
  assert [position[p["id"]] for p in sample] == sorted(
      position[p["id"]] for p in sample)


def test_plain_text_paragraphs_and_passage_files_round_trip(tmp_path,
                                                            pile_texts):
  path = tmp_path / "corpus.txt"
  path.write_text("\n\n".join(pile_texts[:20]) + "\n", encoding="utf-8")
  corpus = pl.corpus_from_spec(str(path))
  assert corpus.kind == "text"
  sample = pl.sample_passages([corpus], num_passages=15, seed=0)
  out = tmp_path / "out" / "passages.jsonl"
  assert pl.write_passages(sample, str(out)) == 15
  assert pl.read_passages(str(out)) == sample
  assert not [f for f in os.listdir(out.parent) if ".tmp-" in f]


def test_bad_inputs_name_the_file_line_and_field(tmp_path):
  path = tmp_path / "c.jsonl"
  path.write_text('{"text": "fine"}\n{"body": "no text"}\n')
  with pytest.raises(DataError, match=r"c.jsonl, line 2, field 'text'"):
    list(pl.read_jsonl_documents(str(path)))
  dup = tmp_path / "p.jsonl"
  dup.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
  with pytest.raises(DataError, match="line 2.*duplicate passage id"):
    pl.read_passages(str(dup))


def test_tfds_text_dataset(tmp_path, pile_texts):
  tfds = pytest.importorskip("tensorflow_datasets")
  texts = pile_texts[:12]

  class TinyPileText(tfds.core.GeneratorBasedBuilder):
    """Twelve real Pile passages as a one-feature TFDS dataset."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self,
          features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i, text in enumerate(texts):
        yield i, {"text": text}

  TinyPileText(data_dir=str(tmp_path)).download_and_prepare()
  corpus = pl.corpus_from_spec("tfds:tiny_pile_text:train",
                               data_dir=str(tmp_path))
  assert sorted(corpus.documents()) == sorted(texts)
  sample = pl.sample_passages([corpus], num_passages=None, max_tokens=128)
  assert sorted(" ".join(p["text"] for p in sample).split()) == sorted(
      " ".join(texts).split())
  assert all(len(p["text"].split()) <= 128 for p in sample)
  assert sample[0]["source"] == "tfds:tiny_pile_text:train"
