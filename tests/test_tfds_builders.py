"""TFDS builders: prepared offline from ../shared/data, read back as Records."""
from __future__ import annotations

import hashlib
import os

import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from ie_tasks.readers import spert  # noqa: E402
from ie_tasks.tfds_builders import base, builders, prepare  # noqa: E402


def test_crossner_ai_prepared_from_manual_dir_reads_back(shared_data,
                                                         tmp_path):
  builder = prepare.prepare("ie_crossner/ai", data_dir=str(tmp_path),
                            manual_dir=shared_data)
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  assert splits == {"train": 100, "dev": 350, "test": 431}
  records = [base.decode_record(x) for x in
             tfds.as_numpy(builder.as_dataset(split="test"))]
  by_text = {r.text: r for r in records}
  first = by_text["Typical generative model approaches include naive Bayes "
                  "classifier s , Gaussian mixture model s , variational "
                  "autoencoders and others ."]
  assert [(e.text, e.type) for e in first.entities] == [
      ("naive Bayes classifier", "algorithm"),
      ("Gaussian mixture model", "algorithm"),
      ("variational autoencoders", "algorithm")]
  # IE INSTRUCTIONS type names and the full label universe travel along.
  assert "program language" in first.entity_types
  assert {r.dataset for r in records} == {"crossner_ai"}
  for record in records:
    record.validate()


def test_conll04_builder_matches_the_reader(shared_data, tmp_path):
  builder = prepare.prepare("ie_conll04", data_dir=str(tmp_path),
                            manual_dir=shared_data)
  from_tfds = sorted((base.decode_record(x) for x in tfds.as_numpy(
      builder.as_dataset(split="dev"))), key=lambda r: r.id)
  folder = os.path.join(shared_data, "conll04")
  direct = sorted(spert.read_spert_json(
      os.path.join(folder, "conll04_dev.json"), split="dev",
      types_path=os.path.join(folder, "conll04_types.json")),
                  key=lambda r: r.id)
  assert from_tfds == direct


def _all_builders():
  for name, cls in builders.BUILDERS.items():
    for config in [c.name for c in cls.BUILDER_CONFIGS] or [None]:
      yield name, config, cls


def _sources(cls, config, data_dir):
  return cls(config=config, data_dir=data_dir)._sources()


def test_checksums_cover_every_file_source_and_match_the_real_files(
    shared_data, tmp_path):
  """checksums.tsv (used by tfds when downloading) is right for each URL."""
  url_infos = builders.IeCrossner.url_infos
  for name, config, cls in _all_builders():
    for relative, url in _sources(cls, config, str(tmp_path)).values():
      local = os.path.join(shared_data, relative)
      if os.path.isdir(local):  # the CASIE GitHub archive: no stable checksum
        continue
      assert url in url_infos, url
      with open(local, "rb") as f:
        data = f.read()
      assert url_infos[url].size == len(data)
      assert url_infos[url].checksum == hashlib.sha256(data).hexdigest()


class _FakeDownloads:
  """A download manager without manual_dir that serves URLs from disk."""

  def __init__(self, url_to_path):
    self.url_to_path = url_to_path
    self.requested = []

  @property
  def manual_dir(self):
    raise AssertionError("Manual directory not enabled.")

  def download_and_extract(self, urls):
    self.requested.extend(urls.values())
    return {key: self.url_to_path[url] for key, url in urls.items()}


def test_without_manual_dir_the_public_urls_are_downloaded(shared_data,
                                                           tmp_path):
  builder = builders.IeMitMovie(data_dir=str(tmp_path))
  sources = builder._sources()
  fake = _FakeDownloads({url: os.path.join(shared_data, rel)
                         for rel, url in sources.values()})
  files = builder._local_files(fake)
  assert sorted(fake.requested) == sorted(url for _, url in sources.values())
  assert all(u.startswith("https://raw.githubusercontent.com/andrewzamai/"
                          "SLIMER/") for u in fake.requested)
  examples = list(builder._generate_examples(files, "test"))
  assert len(examples) == 2443


def test_unknown_dataset_lists_the_known_ones(tmp_path):
  with pytest.raises(ValueError, match="ie_crossner/music"):
    prepare.prepare("crossner_ai", data_dir=str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("dataset,counts", [
    ("ie_casie", None),
    ("ie_conll2003", {"train": 14041, "dev": 3250, "test": 3453}),
    ("ie_mit_restaurant", {"train": 7660, "test": 1521}),
])
def test_larger_builders_prepare_offline(shared_data, tmp_path, dataset,
                                         counts):
  builder = prepare.prepare(dataset, data_dir=str(tmp_path),
                            manual_dir=shared_data)
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  if counts is not None:
    assert splits == counts
  else:  # CASIE: sentences of ~800/100/100 hashed documents
    assert splits["train"] > 5 * splits["test"] > 0
