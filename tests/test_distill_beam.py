"""The Beam pipeline (DirectRunner) gives the same dataset as the in-memory cleaner.

Skipped when apache-beam is not installed (`pip install -e .[beam]`).
"""
from __future__ import annotations

import json
import os

import pytest

beam = pytest.importorskip("apache_beam", reason="apache-beam is not "
                           "installed (the `beam` extra of setup.py)")

from ie_tasks.distill import beam_pipeline, clean, write  # noqa: E402
from ie_tasks.readers import conversation  # noqa: E402


def _annotation_files(shared_data, tmp_path):
  records = conversation.read_pile_ner_pairs(
      os.path.join(shared_data, "pile_ner_sample", "slimer_validation.jsonl"),
      split="train")[:40]
  lines = []
  for k, r in enumerate(records):
    pairs = [[e.text, e.type.upper() if k % 3 else e.type + "s"]
             for e in r.entities] + [["Not In The Passage", "person"]]
    if k % 7 == 0:
      pairs.append([r.entities[0].text if r.entities else "x", "misc"])
    response = json.dumps(pairs) if k % 5 else "```\n" + repr(pairs) + "\n```"
    lines.append(json.dumps({"id": r.id, "text": r.text,
                             "response": response}))
  lines += [lines[3], "{garbled"]  # a duplicate passage and a broken line
  (tmp_path / "in").mkdir()
  half = len(lines) // 2
  for i, part in enumerate((lines[:half], lines[half:])):
    (tmp_path / "in" / f"part{i}.jsonl").write_text("\n".join(part) + "\n")
  both = tmp_path / "all.jsonl"
  both.write_text("\n".join(lines) + "\n")
  return str(tmp_path / "in" / "*.jsonl"), str(both)


def test_beam_pipeline_matches_the_in_memory_cleaner(shared_data, tmp_path):
  pattern, single = _annotation_files(shared_data, tmp_path)
  expected_report = clean.clean_annotations(
      single, str(tmp_path / "expected"), dataset="d", min_type_count=2,
      skip_invalid=True)
  options = clean.CleanOptions(dataset="d", min_type_count=2)
  with beam.Pipeline(runner="DirectRunner") as pipeline:
    beam_pipeline.build(pipeline, output_dir=str(tmp_path / "beam"),
                        options=options, annotations=pattern,
                        skip_invalid=True, num_shards=2)
  out = str(tmp_path / "beam")
  assert len(write.record_files(out)) == 2  # sharded, read like one file
  got = sorted(write.read_records(out), key=lambda r: r.id)
  expected = sorted(write.read_records(str(tmp_path / "expected")),
                    key=lambda r: r.id)
  assert got == expected
  assert write.read_type_counts(out) == write.read_type_counts(
      str(tmp_path / "expected"))
  report = write.read_report(out)
  assert report["counts"] == expected_report["counts"]
  assert report["counts"]["lines_skipped_duplicate_id"] == 1
  assert report["counts"]["pairs_dropped_not_in_passage"] == 40
