"""Prepares one of our TFDS datasets: downloads (or reads manual_dir), writes.

  python -m ie_tasks.tfds_builders.prepare --dataset=ie_crossner/ai \
      --data_dir=~/tensorflow_datasets [--manual_dir=../shared/data]

`--dataset=all` prepares every builder and config. Without `--manual_dir`
the files are downloaded from the URLs in builders.py and checked against
checksums.tsv.
"""
from __future__ import annotations

import argparse
import os
import sys

import tensorflow_datasets as tfds

from ie_tasks.tfds_builders.builders import BUILDERS


def all_dataset_names() -> list[str]:
  names = []
  for name, cls in BUILDERS.items():
    configs = [c.name for c in cls.BUILDER_CONFIGS]
    names.extend(f"{name}/{c}" for c in configs) if configs else names.append(
        name)
  return names


def prepare(dataset: str, *, data_dir: str,
            manual_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """Prepares `name` or `name/config` into data_dir; returns the builder."""
  name, _, config = dataset.partition("/")
  if name not in BUILDERS:
    raise ValueError(f"unknown dataset {name!r}; known: {all_dataset_names()}")
  builder = BUILDERS[name](config=config or None,
                           data_dir=os.path.expanduser(data_dir))
  download_config = tfds.download.DownloadConfig(
      manual_dir=os.path.expanduser(manual_dir) if manual_dir else None)
  builder.download_and_prepare(download_config=download_config)
  return builder


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", required=True,
                      help=f"one of {all_dataset_names()} or 'all'")
  parser.add_argument("--data_dir", default="~/tensorflow_datasets")
  parser.add_argument("--manual_dir", default=None,
                      help="data root laid out like ../shared/data")
  args = parser.parse_args(argv)
  names = all_dataset_names() if args.dataset == "all" else [args.dataset]
  for dataset in names:
    builder = prepare(dataset, data_dir=args.data_dir,
                      manual_dir=args.manual_dir)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"{dataset}: {splits} in {builder.data_dir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
