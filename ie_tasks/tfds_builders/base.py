"""The shared shape of our TFDS builders: records in, one JSON string out.

Every example is `{"id", "text", "record"}` where `record` is the canonical
JSON of `ie_tasks.records.Record` (`Record.from_json(json.loads(...))` gives
it back), so the TFDS copy holds exactly what the readers produce.

Sources: each builder lists, per file, its path relative to a data root laid
out like `../shared/data` and the public URL at a pinned commit. With
`DownloadConfig(manual_dir=<data root>)` the files are read from there (no
network; this is how the tests prepare data); otherwise they are downloaded,
and tfds checks them against `checksums.tsv` beside this file (sha256 of the
files at those commits).
"""
from __future__ import annotations

import abc
import inspect
import json
import os

import tensorflow_datasets as tfds
from etils import epath

from ie_tasks.readers.stats import ReadStats
from ie_tasks.records import Record

MANUAL_INSTRUCTIONS = """\
Optional: point `manual_dir` at a data root laid out like the project's
`../shared/data` (e.g. crossner/ai/train.txt, mit/movie/train.txt,
conll04/conll04_train.json, casie/annotation/*.json) to prepare offline;
without it the files are downloaded from their public repositories."""


class IEBuilder(tfds.core.GeneratorBasedBuilder, abc.ABC):
  """Base for builders whose examples are serialised `Record`s."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Records from ie_tasks.readers."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_INSTRUCTIONS
  DESCRIPTION = ""
  HOMEPAGE = ""
  CITATION = ""

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # tfds' own lookup needs `importlib_resources` (an etils[epath] extra
    # not in our environment) for packages outside tfds; the builder's file
    # is all it needs (checksums.tsv is found beside it).
    return epath.Path(inspect.getfile(cls))

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(),
            "text": tfds.features.Text(),
            "record": tfds.features.Text(),
        }),
        homepage=self.HOMEPAGE,
        citation=self.CITATION,
    )

  @abc.abstractmethod
  def _sources(self) -> dict[str, tuple[str, str]]:
    """{key: (path relative to the data root, public URL)}."""

  @abc.abstractmethod
  def _read_split(self, files: dict[str, str], split: str,
                  stats: ReadStats) -> list[Record]:
    """Records of one split, given {key: local path} of the sources."""

  def _splits(self) -> tuple[str, ...]:
    return ("train", "dev", "test")

  def _local_files(self, dl_manager) -> dict[str, str]:
    """Files from manual_dir when it holds them all, else downloaded."""
    sources = self._sources()
    try:
      manual_dir = os.fspath(dl_manager.manual_dir)
    except (AssertionError, ValueError):
      manual_dir = None
    if manual_dir:
      local = {key: os.path.join(manual_dir, rel)
               for key, (rel, _) in sources.items()}
      if all(os.path.exists(p) for p in local.values()):
        return local
    downloaded = dl_manager.download_and_extract(
        {key: url for key, (_, url) in sources.items()})
    return {key: self._downloaded_path(key, os.fspath(path))
            for key, path in downloaded.items()}

  def _downloaded_path(self, key: str, path: str) -> str:
    """Where the data lies inside a downloaded (and extracted) source."""
    del key
    return path

  def _split_generators(self, dl_manager):
    files = self._local_files(dl_manager)
    return {split: self._generate_examples(files, split)
            for split in self._splits()}

  def _generate_examples(self, files: dict[str, str], split: str):
    stats = ReadStats()
    for record in self._read_split(files, split, stats):
      yield record.id, {"id": record.id, "text": record.text,
                        "record": json.dumps(record.to_json(),
                                             ensure_ascii=False)}


def decode_record(example) -> Record:
  """A Record back from an example (numpy from `tfds.as_numpy`, or a dict)."""
  value = example["record"]
  if isinstance(value, bytes):
    value = value.decode("utf-8")
  elif hasattr(value, "numpy"):
    value = value.numpy().decode("utf-8")
  return Record.from_json(json.loads(value))
