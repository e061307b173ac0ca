"""Apache Beam pipeline for annotation and cleaning when one machine is not enough.

The same per-passage functions as `clean.clean_annotations`, spread over
Beam workers; the corpus-level type filters use the global type counts as a
side input. Output: the distilled dataset directory with sharded records
(`records-00000-of-00016.jsonl`, read by `write.read_records` and the
registered tasks like a single records.jsonl), `type_counts.json` and
`report.json`; with a teacher, the raw annotations too
(`annotations-*.jsonl`, the annotation contract, so nothing paid for is lost).

Locally (DirectRunner), from annotations already made:
  python -m ie_tasks.distill.beam_pipeline --annotations='ann/*.jsonl' \\
      --output_dir=/tmp/my_ner --dataset=my_ner --min_type_count=2
Annotating as well (each worker calls the teacher with bounded concurrency;
the API key is read from the environment variable named by --api_key_env on
the worker, never passed as a flag):
  python -m ie_tasks.distill.beam_pipeline --passages='passages/*.jsonl' \\
      --teacher_base_url=http://localhost:8000/v1 --teacher_model=my-llm ...
On Google Cloud Dataflow (standard Beam pipeline options pass through):
  python -m ie_tasks.distill.beam_pipeline --passages='gs://b/passages/*' \\
      --output_dir=gs://b/my_ner --dataset=my_ner \\
      --runner=DataflowRunner --project=P --region=us-central1 \\
      --temp_location=gs://b/tmp --setup_file=./setup.py \\
      --max_num_workers=32 --experiments=use_runner_v2
Annotation calls are not idempotent in cost: a retried bundle may ask the
teacher again; point the teacher at a caching proxy or annotate with
launch/distill.py (which caches and resumes) and clean here at scale.
Requires `pip install apache-beam` (the `beam` extra of setup.py).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
from typing import Any, Iterable, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from ie_tasks.distill import clean, write
from ie_tasks.records import DataError, Record

COUNTS = "counts"


def _merge_counts(counters: Iterable[dict]) -> dict:
  total: collections.Counter = collections.Counter()
  for c in counters:
    total.update(c)
  return dict(total)


class ParseAnnotation(beam.DoFn):
  """A JSONL line -> an annotation dict; bad lines raise or are counted."""

  def __init__(self, skip_invalid: bool):
    self.skip_invalid = skip_invalid

  def process(self, item: tuple[str, str]):
    source, line = item
    if not line.strip():
      return
    try:
      yield clean._annotation(line, source, None)  # pylint: disable=protected-access
      yield beam.pvalue.TaggedOutput(COUNTS, {"lines_read": 1})
    except DataError:
      if not self.skip_invalid:
        raise
      yield beam.pvalue.TaggedOutput(
          COUNTS, {"lines_read": 1, "lines_skipped_invalid": 1})


class AnnotateBatch(beam.DoFn):
  """Asks the teacher about a batch of passages, `concurrency` at a time."""

  def __init__(self, teacher_config: Any):
    self.config = teacher_config

  def process(self, passages: Sequence[dict]):
    yield from asyncio.run(self._annotate(passages))

  async def _annotate(self, passages: Sequence[dict]) -> list[dict]:
    from ie_tasks.distill import prompts, teacher
    limit = asyncio.Semaphore(max(1, self.config.concurrency))
    async with teacher.ChatClient(self.config) as client:
      async def one(passage: dict) -> dict:
        async with limit:
          c = await client.complete(prompts.build_messages(passage["text"]))
        return {
            "id": passage["id"], "text": passage["text"],
            "teacher": {"kind": "openai", "model": self.config.model},
            "prompt_version": self.config.prompt_version,
            "response": c.text,
            "usage": {"prompt_tokens": c.prompt_tokens,
                      "completion_tokens": c.completion_tokens,
                      "cost_usd": self.config.cost(c.prompt_tokens,
                                                   c.completion_tokens)},
            "attempts": c.attempts}
      return list(await asyncio.gather(*(one(p) for p in passages)))


class CleanPassage(beam.DoFn):
  def __init__(self, options: clean.CleanOptions):
    self.options = options

  def process(self, annotation: dict):
    counts = clean.Counts()
    record = clean.clean_passage(annotation, self.options, counts)
    if record is not None:
      yield record
    yield beam.pvalue.TaggedOutput(COUNTS, dict(counts))


class FilterTypes(beam.DoFn):
  def __init__(self, options: clean.CleanOptions):
    self.options = options

  def process(self, record: Record, dropped: dict):
    counts = clean.Counts()
    record = clean.apply_type_filter(record, dropped, counts)
    record = clean.finish_record(record, self.options, counts)
    if record is not None:
      yield record
    yield beam.pvalue.TaggedOutput(COUNTS, dict(counts))


def _first_by_id(item: tuple[str, Iterable[dict]]) -> Iterable[Any]:
  """One annotation per passage id (deterministic pick), duplicates counted."""
  _, annotations = item
  ordered = sorted(annotations, key=lambda a: json.dumps(a, sort_keys=True))
  yield ordered[0]
  if len(ordered) > 1:
    yield beam.pvalue.TaggedOutput(
        COUNTS, {"lines_skipped_duplicate_id": len(ordered) - 1})


def _passage_types(record: Record) -> list[str]:
  return sorted(set(record.entity_types))


def build(pipeline: beam.Pipeline, *, output_dir: str,
          options: clean.CleanOptions, annotations: str | None = None,
          passages: str | None = None, teacher_config: Any = None,
          skip_invalid: bool = False, num_shards: int = 0,
          batch_size: int = 32) -> None:
  """Adds the read -> (annotate) -> clean -> write steps to `pipeline`."""
  if (annotations is None) == (passages is None):
    raise ValueError("give exactly one of annotations= or passages=")
  count_parts = []
  if passages is not None:
    if teacher_config is None:
      raise ValueError("passages= needs teacher_config= to annotate them")
    raw = (pipeline
           | "ReadPassages" >> beam.io.ReadFromText(passages)
           | "DecodePassages" >> beam.Map(json.loads)
           | "Batch" >> beam.BatchElements(min_batch_size=1,
                                           max_batch_size=batch_size)
           | "Annotate" >> beam.ParDo(AnnotateBatch(teacher_config)))
    _ = (raw | "AnnotationToJson" >> beam.Map(json.dumps, ensure_ascii=False)
         | "WriteAnnotations" >> beam.io.WriteToText(
             os.path.join(output_dir, "annotations"),
             file_name_suffix=".jsonl", shard_name_template="-SSSSS-of-NNNNN"))
  else:
    parsed = (pipeline
              | "ReadAnnotations" >> beam.io.ReadFromTextWithFilename(
                  annotations)
              | "ParseLines" >> beam.ParDo(ParseAnnotation(skip_invalid))
              .with_outputs(COUNTS, main="annotations"))
    raw = parsed.annotations
    count_parts.append(parsed[COUNTS])
  unique = (raw
            | "KeyById" >> beam.Map(lambda a: (a["id"], a))
            | "GroupById" >> beam.GroupByKey()
            | "FirstById" >> beam.ParDo(_first_by_id).with_outputs(
                COUNTS, main="annotations"))
  count_parts.append(unique[COUNTS])
  cleaned = unique.annotations | "Clean" >> beam.ParDo(
      CleanPassage(options)).with_outputs(COUNTS, main="records")
  count_parts.append(cleaned[COUNTS])
  records = cleaned.records

  type_counts = (records
                 | "PassageTypes" >> beam.FlatMap(_passage_types)
                 | "CountTypes" >> beam.combiners.Count.PerElement()
                 | "TypeCountDict" >> beam.combiners.ToDict())
  num_passages = records | "CountPassages" >> beam.combiners.Count.Globally()
  dropped = (type_counts
             | "TypesToDrop" >> beam.Map(
                 lambda counts, n: clean.type_filter(counts, n, options),
                 n=beam.pvalue.AsSingleton(num_passages)))
  finished = records | "FilterTypes" >> beam.ParDo(
      FilterTypes(options), dropped=beam.pvalue.AsSingleton(dropped)
  ).with_outputs(COUNTS, main="records")
  count_parts.append(finished[COUNTS])

  _ = (finished.records
       | "RecordToJson" >> beam.Map(
           lambda r: json.dumps(r.to_json(), ensure_ascii=False))
       | "WriteRecords" >> beam.io.WriteToText(
           os.path.join(output_dir, "records"), file_name_suffix=".jsonl",
           num_shards=num_shards, shard_name_template="-SSSSS-of-NNNNN"))
  final_types = (finished.records
                 | "FinalTypes" >> beam.FlatMap(_passage_types)
                 | "CountFinalTypes" >> beam.combiners.Count.PerElement()
                 | "FinalTypeDict" >> beam.combiners.ToDict()
                 | "SortTypes" >> beam.Map(lambda d: dict(sorted(
                     d.items(), key=lambda kv: (-kv[1], kv[0])))))
  _ = (final_types
       | "TypesToJson" >> beam.Map(json.dumps, ensure_ascii=False, indent=1)
       | "WriteTypeCounts" >> beam.io.WriteToText(
           os.path.join(output_dir, write.TYPE_COUNTS), num_shards=1,
           shard_name_template=""))
  source = annotations or passages
  _ = ((count_parts | "AllCounts" >> beam.Flatten()
        | "MergeCounts" >> beam.CombineGlobally(_merge_counts))
       | "Report" >> beam.Map(
           lambda counts, types: json.dumps(clean.make_report(
               counts, types, options, source), ensure_ascii=False, indent=1),
           types=beam.pvalue.AsSingleton(final_types))
       | "WriteReport" >> beam.io.WriteToText(
           os.path.join(output_dir, write.REPORT), num_shards=1,
           shard_name_template=""))


def run(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--annotations", help="annotation JSONL glob")
  parser.add_argument("--passages", help="passage JSONL glob (annotate too)")
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--dataset", required=True)
  parser.add_argument("--min_type_count", type=int, default=1)
  parser.add_argument("--max_type_frequency", type=float, default=None)
  parser.add_argument("--generic_types", default=",".join(
      clean.DEFAULT_GENERIC_TYPES))
  parser.add_argument("--drop_empty", action="store_true")
  parser.add_argument("--skip_invalid", action="store_true")
  parser.add_argument("--num_shards", type=int, default=0)
  parser.add_argument("--teacher_base_url")
  parser.add_argument("--teacher_model")
  parser.add_argument("--api_key_env", default="OPENAI_API_KEY")
  parser.add_argument("--concurrency", type=int, default=8)
  args, beam_args = parser.parse_known_args(argv)
  options = clean.CleanOptions(
      dataset=args.dataset, min_type_count=args.min_type_count,
      max_type_frequency=args.max_type_frequency,
      generic_types=tuple(t for t in args.generic_types.split(",") if t),
      keep_empty=not args.drop_empty)
  teacher_config = None
  if args.passages:
    from ie_tasks.distill import teacher
    teacher_config = teacher.TeacherConfig(
        base_url=args.teacher_base_url, model=args.teacher_model,
        api_key_env=args.api_key_env, concurrency=args.concurrency)
  with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
    build(pipeline, output_dir=args.output_dir, options=options,
          annotations=args.annotations, passages=args.passages,
          teacher_config=teacher_config, skip_invalid=args.skip_invalid,
          num_shards=args.num_shards)


if __name__ == "__main__":
  run()
