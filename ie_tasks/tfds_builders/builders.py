"""TFDS builders for the public IE datasets, all built from our readers.

Names are prefixed `ie_` so they never clash with tfds' own (e.g. tfds has a
`conll2003` with other features). URLs point at the commits PROVENANCE.md
names; `checksums.tsv` holds their sha256. The MIT files are taken from the
SLIMER repository (byte-identical to our shared copy, tag first) rather than
groups.csail.mit.edu, whose server we cannot pin to a commit.
"""
from __future__ import annotations

import os

import tensorflow_datasets as tfds

from ie_tasks.readers import bio, casie, label_maps, spert
from ie_tasks.readers.stats import ReadStats
from ie_tasks.records import Record
from ie_tasks.tfds_builders.base import IEBuilder

CROSSNER_COMMIT = "2e7ba2a7798c961e3f29fbc51252c5a8d40224bf"
SLIMER_COMMIT = "cd212dc445e1b5d0c0b4ea901393fa2d0e7b8b14"
TABLERT_COMMIT = "055333c2b0dfff48fbab8fa73367cc0766c89862"
CASIE_COMMIT = "2c8beef56d48e8de6599891c6a5e0e5f0d82e20c"
_RAW = "https://raw.githubusercontent.com"
CROSSNER_DOMAINS = ("ai", "literature", "music", "politics", "science")


def _crossner_sources(folder: str) -> dict[str, tuple[str, str]]:
  return {split: (f"crossner/{folder}/{split}.txt",
                  f"{_RAW}/zliucr/CrossNER/{CROSSNER_COMMIT}/ner_data/"
                  f"{folder}/{split}.txt")
          for split in ("train", "dev", "test")}


class _BioBuilder(IEBuilder):
  """Column-file datasets read with IE INSTRUCTIONS type names and labels."""

  TAG_FIRST = False

  def _dataset_name(self) -> str:
    return self.name.removeprefix("ie_")

  def _read_split(self, files, split, stats: ReadStats) -> list[Record]:
    name = self._dataset_name()
    _, _, type_map = label_maps.ORIGINAL_LAYOUT[name]
    columns = dict(token_column=1, tag_column=0) if self.TAG_FIRST else {}
    return bio.read_bio(files[split], dataset=name, split=split,
                        type_map=type_map,
                        labels=label_maps.IE_INSTRUCTIONS_LABELS[name],
                        stats=stats, **columns)


class IeConll2003(_BioBuilder):
  """CoNLL-2003 English NER (CrossNER's BIO copy), IE INSTRUCTIONS type names."""
  DESCRIPTION = __doc__
  HOMEPAGE = "https://github.com/zliucr/CrossNER"

  def _sources(self):
    return _crossner_sources("conll2003")


class IeCrossner(_BioBuilder):
  """CrossNER, one config per domain, IE INSTRUCTIONS type names."""
  DESCRIPTION = __doc__
  HOMEPAGE = "https://github.com/zliucr/CrossNER"
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=domain,
                                             description=f"CrossNER {domain}")
                     for domain in CROSSNER_DOMAINS]

  def _dataset_name(self) -> str:
    return f"crossner_{self.builder_config.name}"

  def _sources(self):
    return _crossner_sources(self.builder_config.name)


class _MitBuilder(_BioBuilder):
  TAG_FIRST = True
  DOMAIN = ""

  def _splits(self):
    return ("train", "test")  # the MIT corpora have no dev split

  def _sources(self):
    return {split: (f"mit/{self.DOMAIN}/{split}.txt",
                    f"{_RAW}/andrewzamai/SLIMER/{SLIMER_COMMIT}/data/MIT/"
                    f"{self.DOMAIN}/{split}.txt")
            for split in ("train", "test")}


class IeMitMovie(_MitBuilder):
  """MIT Movie (engtrain/engtest), IE INSTRUCTIONS type names."""
  DESCRIPTION = __doc__
  HOMEPAGE = "https://groups.csail.mit.edu/sls/downloads/movie/"
  DOMAIN = "movie"


class IeMitRestaurant(_MitBuilder):
  """MIT Restaurant, IE INSTRUCTIONS type names."""
  DESCRIPTION = __doc__
  HOMEPAGE = "https://groups.csail.mit.edu/sls/downloads/restaurant/"
  DOMAIN = "restaurant"


class IeConll04(IEBuilder):
  """CoNLL04 joint entity and relation extraction (SpERT JSON)."""
  DESCRIPTION = __doc__
  HOMEPAGE = "https://github.com/YoumiMa/TablERT-CNN"

  def _sources(self):
    names = {s: f"conll04_{s}.json" for s in ("train", "dev", "test")}
    names["types"] = "conll04_types.json"
    return {key: (f"conll04/{name}",
                  f"{_RAW}/YoumiMa/TablERT-CNN/{TABLERT_COMMIT}/data/"
                  f"datasets/conll04/{name}")
            for key, name in names.items()}

  def _read_split(self, files, split, stats):
    return spert.read_spert_json(files[split], split=split,
                                 types_path=files["types"], stats=stats)


class IeCasie(IEBuilder):
  """CASIE cybersecurity event extraction, sentence level, hashed doc split.

  The source is the GitHub archive of the pinned commit; GitHub builds
  archives on the fly (not byte-stable), so no checksum is recorded for it.
  """
  DESCRIPTION = __doc__
  HOMEPAGE = "https://github.com/Ebiquity/CASIE"

  def _sources(self):
    return {"annotation": (
        "casie/annotation",
        f"https://github.com/Ebiquity/CASIE/archive/{CASIE_COMMIT}.zip")}

  def _downloaded_path(self, key, path):
    return os.path.join(path, f"CASIE-{CASIE_COMMIT}", "data", "annotation")

  def _read_split(self, files, split, stats):
    return casie.read_casie(files["annotation"], split=split, stats=stats)


BUILDERS = {cls.name: cls for cls in (IeConll2003, IeCrossner, IeMitMovie,
                                      IeMitRestaurant, IeConll04, IeCasie)}
