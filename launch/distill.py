r"""UniversalNER-style distillation from the command line.

  # 1. corpus -> passages (<= 256 whitespace tokens, deduplicated, seeded sample)
  python -m launch.distill passages --input=corpus.txt --input=jsonl:web.jsonl \
      --num_passages=50000 --seed=0 --output=/tmp/d/passages.jsonl
  # 2. passages -> teacher answers (cached: a re-run or restart pays nothing twice)
  OPENAI_API_KEY=... python -m launch.distill annotate \
      --passages=/tmp/d/passages.jsonl --output=/tmp/d/annotations.jsonl \
      --base_url=https://api.openai.com/v1 --model=gpt-3.5-turbo-0301 \
      --concurrency=16 --price_prompt_per_1k=0.0015 --price_completion_per_1k=0.002
  # 3. answers -> cleaned dataset dir (records.jsonl, type_counts.json, report.json)
  python -m launch.distill clean --annotations=/tmp/d/annotations.jsonl \
      --output_dir=/tmp/d/clean --dataset=my_distilled
  # 4. register its seqio tasks, check they read it, print the gin flags
  python -m launch.distill prepare --clean_dir=/tmp/d/clean --dataset=my_distilled
  # or all at once
  python -m launch.distill all --input=corpus.txt --work_dir=/tmp/d --dataset=my_distilled ...

Exit status: 0 when every passage has an answer; 3 when some failed for good
(re-run the same command: finished answers come from the cache).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

FAILED_EXIT_CODE = 3


def _add_passages_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
      "--input", action="append", required=True,
      help="corpus: PATH (.jsonl/.json -> JSONL, else plain text paragraphs), "
      "text:PATH, jsonl:PATH or tfds:NAME[:SPLIT]; repeatable")
  parser.add_argument("--text_field", default="text",
                      help="JSONL field (dotted for nested) or TFDS feature")
  parser.add_argument("--tfds_data_dir", default=None)
  parser.add_argument("--num_passages", type=int, default=None,
                      help="sample size (default: every passage)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--max_tokens", type=int, default=256)
  parser.add_argument("--min_tokens", type=int, default=1)
  parser.add_argument("--spm_model", default=None,
                      help="count SentencePiece pieces of this model instead "
                      "of whitespace tokens")


def _add_annotate_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--base_url", required=True,
                      help="OpenAI-compatible API root, e.g. "
                      "https://api.openai.com/v1 or http://localhost:8000/v1")
  parser.add_argument("--model", required=True)
  parser.add_argument("--api_key_env", default="OPENAI_API_KEY",
                      help="environment variable holding the API key")
  parser.add_argument("--concurrency", type=int, default=8)
  parser.add_argument("--max_retries", type=int, default=6)
  parser.add_argument("--timeout", type=float, default=120.0,
                      help="seconds per request")
  parser.add_argument("--backoff_initial", type=float, default=1.0)
  parser.add_argument("--backoff_max", type=float, default=60.0)
  parser.add_argument("--price_prompt_per_1k", type=float, default=0.0)
  parser.add_argument("--price_completion_per_1k", type=float, default=0.0)
  parser.add_argument("--temperature", type=float, default=0.0)
  parser.add_argument("--max_completion_tokens", type=int, default=None)
  parser.add_argument("--cache", default=None,
                      help="sqlite answer cache "
                      "(default: <output>.cache.sqlite)")
  parser.add_argument("--no_progress", action="store_true")


def _add_clean_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--dataset", required=True,
                      help="name of the distilled dataset (Record.dataset)")
  parser.add_argument("--clean_option", action="append", default=[],
                      metavar="KEY=JSON",
                      help="extra keyword for clean.clean_annotations")


def _options(pairs: Sequence[str]) -> dict:
  options = {}
  for pair in pairs:
    key, sep, value = pair.partition("=")
    if not sep:
      raise SystemExit(f"--clean_option needs KEY=VALUE, got {pair!r}")
    try:
      options[key] = json.loads(value)
    except json.JSONDecodeError:
      options[key] = value
  return options


def run_passages(args: argparse.Namespace, output: str) -> None:
  from ie_tasks.distill import passages
  count = passages.whitespace_token_count
  if args.spm_model:
    import seqio
    count = passages.vocabulary_token_count(
        seqio.SentencePieceVocabulary(args.spm_model))
  corpora = [passages.corpus_from_spec(spec, text_field=args.text_field,
                                       data_dir=args.tfds_data_dir)
             for spec in args.input]
  stats = passages.SampleStats()
  sample = passages.sample_passages(
      corpora, num_passages=args.num_passages, seed=args.seed,
      max_tokens=args.max_tokens, min_tokens=args.min_tokens,
      count_tokens=count, stats=stats, progress=True)
  passages.write_passages(sample, output)
  print(f"{stats.summary()}; wrote {output}", flush=True)


def run_annotate(args: argparse.Namespace, passages_path: str,
                 output: str) -> int:
  from ie_tasks.distill import teacher
  config = teacher.TeacherConfig(
      base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
      concurrency=args.concurrency, max_retries=args.max_retries,
      timeout_s=args.timeout, backoff_initial_s=args.backoff_initial,
      backoff_max_s=args.backoff_max,
      price_prompt_per_1k=args.price_prompt_per_1k,
      price_completion_per_1k=args.price_completion_per_1k,
      temperature=args.temperature, max_tokens=args.max_completion_tokens)
  try:
    summary = teacher.annotate_file(
        passages_path, output, config, cache_path=args.cache,
        progress=not args.no_progress, summary_path=output + ".summary.json")
  except KeyboardInterrupt:
    print("interrupted: finished answers are in the cache and in "
          f"{output}; re-run the same command to resume", file=sys.stderr)
    return 130
  print(summary.text(), flush=True)
  if summary.failures:
    print(f"{summary.failures} passages failed (first: "
          f"{summary.failed_ids[:5]}); re-run to retry them", file=sys.stderr)
    return FAILED_EXIT_CODE
  return 0


def run_clean(args: argparse.Namespace, annotations: str,
              output_dir: str) -> dict:
  from ie_tasks.distill import clean
  report = clean.clean_annotations(annotations, output_dir,
                                   dataset=args.dataset,
                                   **_options(args.clean_option))
  print(json.dumps(report, indent=2, default=str)[:4000], flush=True)
  return report


def run_prepare(args: argparse.Namespace, clean_dir: str,
                output_dir: str | None) -> dict:
  """Registers the cleaned dataset's seqio tasks and checks they yield examples.

  The cleaned directory is already the dataset (records.jsonl +
  type_counts.json); this step makes sure the conversation tasks read it and
  prints the gin flags that train on it.
  """
  from ie_tasks.distill import register
  clean_dir = os.path.abspath(clean_dir)
  tasks = {}
  for tagged in (False, True):
    tasks["tagged" if tagged else "open"] = register.register_distilled_dataset(
        args.dataset, clean_dir, validation_fraction=args.validation_fraction,
        tagged=tagged)
  import seqio
  task = seqio.get_mixture_or_task(tasks["open"])
  examples = sum(1 for _ in task.source.get_dataset(split="train",
                                                    shuffle=False))
  result = {"dataset": args.dataset, "directory": clean_dir, "tasks": tasks,
            "train_examples": examples,
            "gin": [
                "--gin.MIXTURE_OR_TASK_NAME="
                "@ie_tasks.register_distilled_dataset()",
                f"--gin.ie_tasks.register_distilled_dataset.name="
                f"\"'{args.dataset}'\"",
                f"--gin.ie_tasks.register_distilled_dataset.directory="
                f"\"'{clean_dir}'\""]}
  if output_dir:
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "tasks.json"), "w") as f:
      json.dump(result, f, indent=2)
  print(json.dumps(result, indent=2), flush=True)
  return result


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m launch.distill", description=__doc__.split("\n\n")[0],
      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
  sub = parser.add_subparsers(dest="command", required=True)
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--verbose", action="store_true",
                      help="log every retry (INFO)")

  p = sub.add_parser("passages", parents=[common],
                     help="corpus -> passages JSONL")
  _add_passages_flags(p)
  p.add_argument("--output", required=True)

  p = sub.add_parser("annotate", parents=[common],
                     help="passages -> teacher annotations JSONL")
  p.add_argument("--passages", required=True)
  p.add_argument("--output", required=True)
  _add_annotate_flags(p)

  p = sub.add_parser("clean", parents=[common],
                     help="annotations -> cleaned dataset directory")
  p.add_argument("--annotations", required=True)
  p.add_argument("--output_dir", required=True)
  _add_clean_flags(p)

  p = sub.add_parser("prepare", parents=[common],
                     help="cleaned dataset -> task-ready data")
  p.add_argument("--clean_dir", required=True)
  p.add_argument("--dataset", required=True)
  p.add_argument("--output_dir", default=None,
                 help="where to write tasks.json (task names, gin flags)")
  p.add_argument("--validation_fraction", type=float, default=0.05)

  p = sub.add_parser("all", parents=[common],
                     help="passages, annotate, clean and prepare")
  p.add_argument("--work_dir", required=True,
                 help="passages.jsonl, annotations.jsonl, clean/, data/")
  _add_passages_flags(p)
  _add_annotate_flags(p)
  _add_clean_flags(p)
  p.add_argument("--skip_prepare", action="store_true")
  p.add_argument("--validation_fraction", type=float, default=0.05)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                      format="%(asctime)s %(levelname)s %(name)s: %(message)s")
  if args.command == "passages":
    run_passages(args, args.output)
    return 0
  if args.command == "annotate":
    return run_annotate(args, args.passages, args.output)
  if args.command == "clean":
    run_clean(args, args.annotations, args.output_dir)
    return 0
  if args.command == "prepare":
    run_prepare(args, args.clean_dir, args.output_dir)
    return 0
  # all: each step's output is the next one's input, all under work_dir.
  work = args.work_dir
  os.makedirs(work, exist_ok=True)
  passages_path = os.path.join(work, "passages.jsonl")
  annotations_path = os.path.join(work, "annotations.jsonl")
  if not os.path.exists(passages_path):  # a restart keeps the same sample
    run_passages(args, passages_path)
  status = run_annotate(args, passages_path, annotations_path)
  if status:
    return status
  run_clean(args, annotations_path, os.path.join(work, "clean"))
  if not args.skip_prepare:
    run_prepare(args, os.path.join(work, "clean"), work)
  return 0


if __name__ == "__main__":
  sys.exit(main())
