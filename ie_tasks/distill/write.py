"""Writes and reads a distilled dataset directory.

Layout (the contract every distillation step shares):
  records.jsonl      canonical Record JSONL (`ie_tasks.records.write_jsonl`);
                     the Beam pipeline writes shards `records-00000-of-00004.jsonl`
                     instead, and every reader here accepts either
  type_counts.json   {type: number of passages naming it}, most frequent first
  report.json        what the cleaning dropped and why (counts), and its options
The directory is written next to its final place and renamed into it, so a
reader never sees half a dataset; an existing dataset there is replaced.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
from typing import Any, Iterable, Iterator, Mapping

from ie_tasks import records as rec

RECORDS = "records.jsonl"
RECORD_SHARDS = "records-*-of-*.jsonl"
TYPE_COUNTS = "type_counts.json"
REPORT = "report.json"


def _write_json(path: str, obj: Any) -> None:
  with open(path, "w", encoding="utf-8") as f:
    json.dump(obj, f, ensure_ascii=False, indent=1)
    f.write("\n")


def write_dataset(output_dir: str, records: Iterable[rec.Record],
                  type_counts: Mapping[str, int],
                  report: Mapping[str, Any]) -> str:
  """Writes the three files atomically (temp dir + rename); returns the dir."""
  output_dir = os.path.abspath(output_dir)
  parent = os.path.dirname(output_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = f"{output_dir}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  rec.write_jsonl(records, os.path.join(tmp, RECORDS))
  _write_json(os.path.join(tmp, TYPE_COUNTS), dict(type_counts))
  _write_json(os.path.join(tmp, REPORT), dict(report))
  old = f"{output_dir}.old-{os.getpid()}"
  if os.path.exists(output_dir):
    os.replace(output_dir, old)
  os.replace(tmp, output_dir)
  shutil.rmtree(old, ignore_errors=True)
  return output_dir


def record_files(directory: str) -> list[str]:
  """records.jsonl, or the sorted shards a Beam run wrote; error if neither."""
  single = os.path.join(directory, RECORDS)
  if os.path.exists(single):
    return [single]
  shards = sorted(glob.glob(os.path.join(directory, RECORD_SHARDS)))
  if not shards:
    raise FileNotFoundError(
        f"no distilled dataset in {directory!r}: expected {RECORDS} or "
        f"{RECORD_SHARDS} (write one with ie_tasks.distill.clean."
        f"clean_annotations or ie_tasks.distill.beam_pipeline)")
  return shards


def read_records(directory: str) -> Iterator[rec.Record]:
  for path in record_files(directory):
    yield from rec.read_jsonl(path)


def read_type_counts(directory: str) -> dict[str, int]:
  path = os.path.join(directory, TYPE_COUNTS)
  try:
    with open(path, encoding="utf-8") as f:
      counts = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(
        f"{path!r} not found: a distilled dataset directory needs "
        f"{TYPE_COUNTS} beside its records") from None
  except json.JSONDecodeError as e:
    raise rec.DataError(f"malformed JSON: {e.msg}", path=path,
                        line=e.lineno) from None
  if not isinstance(counts, dict) or not all(
      isinstance(v, int) for v in counts.values()):
    raise rec.DataError("expected {type: count}", path=path,
                        value=counts)
  return counts


def read_report(directory: str) -> dict[str, Any]:
  with open(os.path.join(directory, REPORT), encoding="utf-8") as f:
    return json.load(f)
