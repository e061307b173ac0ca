r"""A student distilled from real teacher annotations, scored zero-shot on seven sets.

The whole UniversalNER path on real data, on one CPU machine:
  1. corpus: the real Pile passages of ../shared/data/pile_ner_sample;
  2. teacher: the fake chat-completions server (ie_tasks/distill/fake_teacher.py)
     answering with ChatGPT's real annotations of those passages;
  3. `python -m launch.distill all`: passages, annotate (HTTP, cache), clean,
     prepare (registers `ie_ner_<dataset>_conversation`);
  4. a SentencePiece vocabulary trained on the distilled training examples;
  5. `python -m launch.train` with the project's gin files (local/model.gin,
     runs/finetune.gin) on the distilled conversation task: a tiny model from
     scratch for a few hundred steps;
  6. `python -m launch.eval --gin_file=gin/runs/zeroshot_ner.gin` on the seven
     zero-shot test sets in the conversation format (capped per set).
Writes results/zeroshot.json and results/zeroshot.md (our numbers next to the
published seven-set averages, and the commands that reproduce the papers'
runs with a Flan-T5 checkpoint on an accelerator).

  .venv/bin/python benchmarks/zeroshot.py                 # full (~15 min, 2 cores)
  .venv/bin/python benchmarks/zeroshot.py --smoke         # ~2 min: 5 steps
A tiny model trained from scratch on CPU scores low: the point is a real,
working path, with its numbers recorded whatever they are.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from typing import Any, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import common  # pylint: disable=wrong-import-position
from benchmarks import quality  # pylint: disable=wrong-import-position

PILE_NER = os.path.join("pile_ner_sample", "slimer_validation.jsonl")
DATASET = "pile_distilled"
# Seven-set zero-shot averages reported by each paper (F1, %).
PUBLISHED = (
    ("InstructUIE (Flan-T5-11B)", 47.5, "Wang et al. 2023, as compiled by "
     "UniversalNER and GLiNER"),
    ("UniNER-type (LLaMA-7B)", 53.4, "Zhou et al. 2024, UniversalNER"),
    ("GLiNER-L (0.3B)", 60.9, "Zaratiana et al. 2024"),
    ("GNER-T5-xxl (11B)", 69.1, "Ding et al. 2024"),
)


def data_root() -> str:
  return os.environ.get("IE_DATA_DIR") or os.path.join(REPO, "..", "shared",
                                                       "data")


def _run(command: Sequence[str], log_path: str, env: dict | None = None,
         timeout: int = 3600) -> float:
  """Runs a command (cwd = repo), logs its output, raises on failure."""
  start = time.perf_counter()
  with open(log_path, "w", encoding="utf-8") as log:
    result = subprocess.run(list(command), cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, timeout=timeout,
                            env={**os.environ, **(env or {})})
  if result.returncode:
    with open(log_path, encoding="utf-8") as f:
      tail = f.read()[-3000:]
    raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}); "
                       f"log {log_path}:\n{tail}")
  return time.perf_counter() - start


# ------------------------------------------------------------------- steps
def distill(work_dir: str, *, num_passages: int | None, seed: int = 0,
            python: str = sys.executable) -> tuple[str, float, dict]:
  """Fake teacher on the real Pile-NER answers + `launch.distill all`."""
  from ie_tasks.distill import fake_teacher
  pile = os.path.join(data_root(), PILE_NER)
  if not os.path.exists(pile):
    raise FileNotFoundError(f"{pile}: the Pile-NER slice is missing (see "
                            "../shared/data/PROVENANCE.md)")
  gold = fake_teacher.GoldLookup(fake_teacher.read_gold(f"pile_ner:{pile}"))
  server = fake_teacher.FakeTeacherServer(fake_teacher.FakeTeacher(gold))
  server.start()
  try:
    command = [python, "-m", "launch.distill", "all", f"--work_dir={work_dir}",
               f"--input=jsonl:{pile}", "--text_field=input",
               "--max_tokens=256", f"--seed={seed}",
               f"--base_url={server.base_url}", "--model=chatgpt-annotations",
               "--api_key_env=IE_FAKE_TEACHER_KEY", "--concurrency=8",
               "--no_progress", f"--dataset={DATASET}"]
    if num_passages:
      command.append(f"--num_passages={num_passages}")
    seconds = _run(command, os.path.join(work_dir, "distill.log"))
    teacher_stats = server.counts.to_json()
  finally:
    server.stop()
  with open(os.path.join(work_dir, "clean", "report.json"),
            encoding="utf-8") as f:
    report = json.load(f)
  return os.path.join(work_dir, "clean"), seconds, {
      "requests": teacher_stats["total"], "clean_report": report}


def train_vocabulary(clean_dir: str, prefix: str, vocab_size: int) -> str:
  """SentencePiece on the distilled training examples (inputs + targets)."""
  from ie_tasks import vocab
  from ie_tasks.distill import register
  name = register.register_distilled_dataset(DATASET, clean_dir)
  texts = []
  for ex in _distilled_examples(name):
    texts.extend((ex["inputs"], ex["targets"]))
  return vocab.train_sentencepiece(texts, prefix, vocab_size=vocab_size,
                                   hard_vocab_limit=False)


def _distilled_examples(task_name: str) -> list[dict[str, str]]:
  import seqio
  source = seqio.get_mixture_or_task(task_name).source
  return source.examples("train")


def student_gin(work_dir: str, clean_dir: str, spm: str, *, steps: int,
                batch_size: int, vocab_size: int, lengths: dict[str, int],
                eval_examples: int) -> str:
  """The run gin: the project's tiny CPU model + finetune.gin on the task."""
  padded_vocab = -(-vocab_size // 128) * 128
  path = os.path.join(work_dir, "student.gin")
  with open(path, "w", encoding="utf-8") as f:
    f.write(f"""# Student distilled from the Pile-NER teacher answers (benchmarks/zeroshot.py).
from __gin__ import dynamic_registration
import ie_tasks
from ie_tasks.distill import register
from models import config
from models import optimizers

include 'local/model.gin'
include 'runs/finetune.gin'

MIXTURE_OR_TASK_NAME = @register.register_distilled_dataset()
register.register_distilled_dataset.name = '{DATASET}'
register.register_distilled_dataset.directory = '{clean_dir}'
ie_tasks.get_vocabulary.kind = 'sentencepiece'
ie_tasks.get_vocabulary.path = '{spm}'
ie_tasks.get_vocabulary.extra_ids = 0
config.T5Config.vocab_size = {padded_vocab}
TASK_FEATURE_LENGTHS = {lengths!r}
TRAIN_STEPS = {steps}
BATCH_SIZE = {batch_size}
DROPOUT_RATE = 0.0
# The embedded default's schedule (gin/local/default.gin): Adafactor at a peak
# of 1e-2, linear warm-up, cosine decay to 0 at the last step.
LEARNING_RATE = 0.01
optimizers.create_optimizer.learning_rate = @optimizers.cosine_decay_schedule()
optimizers.cosine_decay_schedule:
  peak_value = %LEARNING_RATE
  warmup_steps = {max(1, steps // 10)}
  decay_steps = {steps}
  end_value = 0.0
EVAL_PERIOD = {steps}
CHECKPOINT_PERIOD = {steps}
EVAL_BATCH_SIZE = 64
EVAL_EXAMPLES_PER_TASK = {eval_examples}
""")
  return path


def train_student(gin_path: str, model_dir: str, log: str,
                  python: str = sys.executable) -> float:
  return _run([python, "-m", "launch.train", f"--gin_file={gin_path}",
               f"--gin.MODEL_DIR='{model_dir}'"], log,
              env={"XLA_FLAGS": ""})


def evaluate_zeroshot(model_dir: str, out_dir: str, log: str, *,
                      max_sentences: int | None, lengths: dict[str, int],
                      batch_size: int, python: str = sys.executable) -> float:
  command = [python, "-m", "launch.eval",
             "--gin_file=gin/runs/zeroshot_ner.gin",
             f"--gin.CHECKPOINT_PATH='{model_dir}'",
             f"--gin.EVAL_OUTPUT_DIR='{out_dir}'",
             "--gin.ZEROSHOT_FORMAT='conversation'",
             f"--gin.MAX_SENTENCES_PER_DATASET={max_sentences}",
             f"--gin.TASK_FEATURE_LENGTHS={lengths!r}",
             f"--gin.BATCH_SIZE={batch_size}"]
  return _run(command, log, env={"XLA_FLAGS": ""})


def read_report(out_dir: str) -> dict[str, Any]:
  folder = os.path.join(out_dir, "eval")
  names = sorted(n for n in os.listdir(folder)
                 if n.startswith("report_test_step") and n.endswith(".json"))
  with open(os.path.join(folder, names[-1]), encoding="utf-8") as f:
    return json.load(f)


def train_history(model_dir: str) -> dict[str, Any]:
  """First and last logged loss, in-domain validation F1 (from the run)."""
  out: dict[str, Any] = {}
  eval_dir = os.path.join(model_dir, "eval")
  if os.path.isdir(eval_dir):
    names = sorted(n for n in os.listdir(eval_dir)
                   if n.startswith("metrics_validation") and n.endswith(".json"))
    if names:
      with open(os.path.join(eval_dir, names[-1]), encoding="utf-8") as f:
        out["validation_average_f1"] = json.load(f)["average"].get("f1")
  return out


def run_observations(work_dir: str) -> dict[str, Any]:
  """Training loss (first and last logged) and how often the student said '[]'."""
  out: dict[str, Any] = {}
  with open(os.path.join(work_dir, "train.log"), encoding="utf-8") as f:
    curve = quality.parse_train_log(f.read())["curve"]
  if curve:
    out["train_loss_first"] = {"step": curve[0]["step"], "loss": curve[0]["loss"]}
    out["train_loss_last"] = {"step": curve[-1]["step"], "loss": curve[-1]["loss"]}
  answers = empty = 0
  for path in glob.glob(os.path.join(work_dir, "zeroshot", "eval",
                                     "predictions", "*.jsonl")):
    with open(path, encoding="utf-8") as f:
      for line in f:
        answers += 1
        empty += json.loads(line)["prediction"].strip() == "[]"
  out["zeroshot_questions"], out["zeroshot_empty_answers"] = answers, empty
  return out


# ----------------------------------------------------------------- reports
REPRODUCE = r"""
InstructUIE protocol (Flan-T5 fine-tuned on CoNLL-2003 + CoNLL04 + CASIE, then
zero-shot; T5X checkpoint, TPU/GPU):

    python -m launch.train --gin_file=gin/models/flan_t5/xxl.gin \
      --gin_file=gin/runs/finetune.gin --gin_file=gin/mixtures/zeroshot.gin \
      --gin.INITIAL_CHECKPOINT_PATH="'gs://t5-data/pretrained_models/t5x/flan_t5_xxl/checkpoint_1114000'" \
      --gin.MODEL_DIR="'gs://BUCKET/ie/flan_xxl_instructuie'" \
      --gin.TRAIN_STEPS=10000 --gin.BATCH_SIZE=256 --gin.NUM_PARTITIONS=8
    python -m launch.eval --gin_file=gin/runs/zeroshot_ner.gin \
      --gin.CHECKPOINT_PATH="'gs://BUCKET/ie/flan_xxl_instructuie'" \
      --gin.EVAL_OUTPUT_DIR="'gs://BUCKET/ie/flan_xxl_instructuie/zeroshot'" \
      --gin.NUM_PARTITIONS=8

(a Hugging Face folder works the same: `huggingface-cli download
google/flan-t5-xxl --local-dir flan-t5-xxl`, then
--gin.INITIAL_CHECKPOINT_PATH="'flan-t5-xxl'" with
--gin.ie_tasks.get_vocabulary.path="'flan-t5-xxl/spiece.model'"; evaluating
the folder itself needs no model gin: shapes come from its config.json.)

UniversalNER protocol (Flan-T5 trained on Pile-NER conversations, one question
per type, then zero-shot in the same format): distil or obtain Pile-NER
(`python -m launch.distill all --input=... --base_url=... --model=gpt-3.5-turbo
--work_dir=/data/pile_ner --dataset=pile_ner_full`), then with a gin file
`pile_ner.gin` holding

    import ie_tasks.distill.register
    MIXTURE_OR_TASK_NAME = @ie_tasks.register_distilled_dataset()
    ie_tasks.register_distilled_dataset.name = 'pile_ner_full'
    ie_tasks.register_distilled_dataset.directory = '/data/pile_ner/clean'

run

    python -m launch.train --gin_file=gin/models/flan_t5/xxl.gin \
      --gin_file=gin/runs/finetune.gin --gin_file=pile_ner.gin \
      --gin.INITIAL_CHECKPOINT_PATH="'gs://t5-data/pretrained_models/t5x/flan_t5_xxl/checkpoint_1114000'" \
      --gin.MODEL_DIR="'gs://BUCKET/ie/flan_xxl_uniner'" --gin.TRAIN_STEPS=10000 \
      --gin.BATCH_SIZE=128 --gin.NUM_PARTITIONS=8
    python -m launch.eval --gin_file=gin/runs/zeroshot_ner.gin \
      --gin.ZEROSHOT_FORMAT="'conversation'" \
      --gin.CHECKPOINT_PATH="'gs://BUCKET/ie/flan_xxl_uniner'" \
      --gin.EVAL_OUTPUT_DIR="'gs://BUCKET/ie/flan_xxl_uniner/zeroshot'" \
      --gin.NUM_PARTITIONS=8
"""


def markdown(payload: dict[str, Any]) -> str:
  settings = payload["settings"]
  lines = ["# Zero-shot NER: a student distilled from real teacher answers", "",
           "Seven-set zero-shot F1 (%) on the test splits of CrossNER AI, "
           "literature, music, politics, science, MIT Movie and MIT Restaurant.",
           ""]
  rows = []
  scores = payload["report"]["scores"]
  datasets = list(scores["universalner"]["entity"]["datasets"])
  for convention in ("universalner", "instructuie"):
    table = scores[convention]["entity"]
    rows.append([f"ours: tiny student ({payload['model']['params']:,} params, "
                 f"{settings['train_steps']} steps, {convention} scoring)"]
                + [table["datasets"][d]["f1"] for d in datasets]
                + [table["average"]["f1"]])
  lines.append(common.markdown_table(
      ["model"] + datasets + ["average"], rows))
  lines += ["", "Published seven-set averages, for reference (11B/7B "
            "models trained on the full data on accelerators):", ""]
  lines.append(common.markdown_table(
      ["model", "7-set average F1", "source"],
      [[name, value, source] for name, value, source in PUBLISHED]))
  t = payload["timings_s"]
  lines += [
      "", f"Our run: {payload['distill']['passages']} real Pile passages "
      f"annotated through the fake teacher (ChatGPT's real answers) -> "
      f"{payload['distill']['train_examples']} conversation training "
      f"examples; SentencePiece vocabulary of {settings['vocab_size']} pieces; "
      f"the embedded tiny model shape (emb 128, 2+2 layers) trained from "
      f"scratch for {settings['train_steps']} steps of batch "
      f"{settings['batch_size']} (Adafactor, peak 1e-2, warm-up + cosine, "
      "as gin/local/default.gin); zero-shot evaluation in the UniversalNER "
      f"conversation format on {settings['max_sentences_per_dataset']} "
      "sentences per set (seeded subset; every type asked per sentence). "
      f"Wall time: distill {t['distill']:.0f} s, train {t['train']:.0f} s, "
      f"zero-shot eval {t['eval']:.0f} s, total {t['total']:.0f} s on "
      f"{payload['machine']['cpu_count']} shared CPU cores.",
      ""]
  seen = payload.get("observations", {})
  if seen.get("train_loss_last"):
    lines.append(
        f"The student's training loss (per target token) went from "
        f"{seen['train_loss_first']['loss']:.2f} at step "
        f"{seen['train_loss_first']['step']} to "
        f"{seen['train_loss_last']['loss']:.2f} at step "
        f"{seen['train_loss_last']['step']}; it answered `[]` (no entity) to "
        f"{seen['zeroshot_empty_answers']:,} of "
        f"{seen['zeroshot_questions']:,} zero-shot questions. Most training "
        "questions are negatives (the teacher's types plus two sampled "
        "negative types per passage), so a model this small and this briefly "
        "trained learns the answer format and the majority answer, not the "
        "task: the row shows the path works end to end, not what the method "
        "reaches (the published rows used 7-11B models and the full data).")
    lines.append("")
  lines += [
      "Command: `" + payload["command"] + "`", "",
      "## Reproducing the papers' runs (Flan-T5 checkpoint, accelerator)",
      REPRODUCE, common.machine_markdown(payload["machine"])]
  return "\n".join(lines)


def count_records(clean_dir: str) -> int:
  from ie_tasks.distill import write
  return sum(1 for _ in write.read_records(clean_dir))


def count_params(model_dir: str) -> int:
  from launch import eval as eval_lib
  import numpy as np
  return int(sum(np.prod(s) for s in eval_lib.param_shapes(model_dir).values()))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--work_dir", default="/tmp/ie_zeroshot_benchmark")
  parser.add_argument("--num_passages", type=int, default=None,
                      help="passages to annotate (default: all 882)")
  parser.add_argument("--train_steps", type=int, default=300)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--vocab_size", type=int, default=3000)
  parser.add_argument("--max_sentences", type=int, default=100,
                      help="test sentences per zero-shot set")
  parser.add_argument("--eval_batch_size", type=int, default=128)
  parser.add_argument("--inputs_length", type=int, default=320)
  parser.add_argument("--targets_length", type=int, default=48)
  parser.add_argument("--name", default="zeroshot",
                      help="results/<name>.json|md")
  parser.add_argument("--results_dir", default=common.RESULTS_DIR)
  parser.add_argument("--render_only", action="store_true",
                      help="rebuild results/<name>.md (and the observations) "
                      "from results/<name>.json and its work_dir")
  parser.add_argument("--smoke", action="store_true",
                      help="5 steps, 60 passages, 5 sentences per set")
  args = parser.parse_args(argv)
  if args.smoke:
    args.num_passages, args.train_steps = args.num_passages or 60, 5
    args.max_sentences, args.vocab_size = 5, 500
    args.name = args.name if args.name != "zeroshot" else "zeroshot_smoke"
  if args.render_only:
    with open(os.path.join(args.results_dir, f"{args.name}.json"),
              encoding="utf-8") as f:
      payload = json.load(f)
    payload["observations"] = run_observations(payload["work_dir"])
    common.write_results(args.name, payload, markdown(payload),
                         results_dir=args.results_dir)
    return payload
  os.environ.setdefault("IE_DATA_DIR", data_root())
  work = os.path.abspath(args.work_dir)
  if os.path.exists(work):
    import shutil
    shutil.rmtree(work)
  os.makedirs(work)
  lengths = {"inputs": args.inputs_length, "targets": args.targets_length}
  start = time.perf_counter()
  clean_dir, distill_s, distill_info = distill(work,
                                               num_passages=args.num_passages)
  spm = train_vocabulary(clean_dir, os.path.join(work, "spm"),
                         args.vocab_size)
  train_examples = len(_distilled_examples(f"ie_ner_{DATASET}_conversation"))
  gin_path = student_gin(work, clean_dir, spm, steps=args.train_steps,
                         batch_size=args.batch_size,
                         vocab_size=args.vocab_size, lengths=lengths,
                         eval_examples=128)
  model_dir = os.path.join(work, "student")
  train_s = train_student(gin_path, model_dir, os.path.join(work, "train.log"))
  out_dir = os.path.join(work, "zeroshot")
  eval_s = evaluate_zeroshot(model_dir, out_dir, os.path.join(work, "eval.log"),
                             max_sentences=args.max_sentences, lengths=lengths,
                             batch_size=args.eval_batch_size)
  total = time.perf_counter() - start
  report = read_report(out_dir)
  payload = {
      "benchmark": "zeroshot_ner_student",
      "command": ".venv/bin/python benchmarks/zeroshot.py " + " ".join(
          argv if argv is not None else sys.argv[1:]),
      "settings": {"num_passages": args.num_passages or "all",
                   "train_steps": args.train_steps,
                   "batch_size": args.batch_size,
                   "vocab_size": args.vocab_size,
                   "max_sentences_per_dataset": args.max_sentences,
                   "task_feature_lengths": lengths, "format": "conversation"},
      "distill": {"passages": count_records(clean_dir),
                  "teacher_requests": distill_info["requests"],
                  "train_examples": train_examples,
                  "clean_report": distill_info["clean_report"]},
      "model": {"params": count_params(model_dir),
                **train_history(model_dir)},
      "timings_s": {"distill": distill_s, "train": train_s, "eval": eval_s,
                    "total": total},
      "report": report,
      "observations": run_observations(work),
      "published_seven_set_average_f1": {n: v for n, v, _ in PUBLISHED},
      "work_dir": work,
      "machine": common.machine_info(),
  }
  paths = common.write_results(args.name, payload, markdown(payload),
                               results_dir=args.results_dir)
  print(markdown(payload).split("## Reproducing")[0])
  print(f"wrote {paths[0]} and {paths[1]}")
  return payload


if __name__ == "__main__":
  main()
