"""A student from real teacher annotations, through the real pipeline, scored zero-shot.

The teacher is the fake chat-completions server answering with ChatGPT's real
Pile-NER annotations (../shared/data/pile_ner_sample); `launch.distill`
samples, annotates over HTTP and cleans; the cleaned set registers as the
conversation task a student trains on; the zero-shot command scores it.
The fast tests cover the pieces; the slow one runs the whole path (the
benchmark in smoke settings: 12 passages, 5 steps, 1 sentence per set).
"""
from __future__ import annotations

import collections
import json
import os

import pytest
import seqio

from benchmarks import zeroshot as bench
from ie_tasks import datasets as ds_lib
from ie_tasks import tasks as tasks_lib
from ie_tasks.distill import fake_teacher, register, write
from ie_tasks.readers import conversation
from ie_tasks import zeroshot
from launch import distill

PILE = os.path.join("pile_ner_sample", "slimer_validation.jsonl")


pytestmark = pytest.mark.usefixtures("byt5_gin")


@pytest.fixture(scope="module")
def distilled(shared_data, tmp_path_factory):
  """12 real Pile passages annotated by the fake teacher, cleaned."""
  pile = os.path.join(shared_data, PILE)
  gold = fake_teacher.read_gold(f"pile_ner:{pile}")
  server = fake_teacher.FakeTeacherServer(fake_teacher.FakeTeacher(
      fake_teacher.GoldLookup(gold))).start()
  work = tmp_path_factory.mktemp("distill")
  try:
    status = distill.main([
        "all", f"--work_dir={work}", f"--input=jsonl:{pile}",
        "--text_field=input", "--num_passages=12", "--max_tokens=256",
        f"--base_url={server.base_url}", "--model=chatgpt-annotations",
        "--api_key_env=IE_TEST_NO_KEY", "--no_progress",
        "--dataset=pile_student"])
    requests = server.counts.total
  finally:
    server.stop()
  assert status == 0
  return str(work / "clean"), gold, requests


def test_teacher_answers_are_the_real_annotations_of_each_passage(distilled):
  clean_dir, gold, requests = distilled
  records = list(write.read_records(clean_dir))
  assert len(records) == 12 and requests == 12  # every passage billed once
  gold_by_text = {" ".join(r.text.split()): r for r in gold}
  kept = total = 0
  for record in records:
    truth = gold_by_text[" ".join(record.text.split())]
    truth_spans = {e.text for e in truth.entities}
    spans = {e.text for e in record.entities}
    assert spans <= truth_spans  # cleaning drops, never invents
    kept, total = kept + len(spans), total + len(truth_spans)
    for e in record.entities:
      assert record.text[e.start:e.end] == e.text
  assert total and kept >= 0.9 * total


def test_distilled_task_asks_the_teacher_types_and_sampled_negatives(
    distilled):
  clean_dir, _, _ = distilled
  name = register.register_distilled_dataset("pile_student", clean_dir,
                                             validation_fraction=0.0)
  examples = seqio.get_mixture_or_task(name).source.examples("train")
  records = {r.id: r for r in write.read_records(clean_dir)}
  by_passage = collections.defaultdict(list)
  for ex in examples:
    by_passage[ex["id"].rsplit(":", 1)[0]].append(ex)
  assert set(by_passage) == set(records)
  negatives = tasks_lib.template_options()["num_negatives"]
  for record_id, group in by_passage.items():
    asked = [json.loads(ex["labels"])[0] for ex in group]
    types = {e.type for e in records[record_id].entities}
    assert types <= set(asked)
    empty = [ex for ex in group if ex["targets"] == "[]"]
    assert len(empty) == len(asked) - len(types) >= negatives
    assert all(ex["inputs"].startswith("Text: ") for ex in group)


def test_pile_ner_conversation_task_keeps_the_annotators_negatives(
    ie_data_dir):
  """The Pile-NER slice asks types with no answer: they stay, as '[]'."""
  records = ds_lib.load_records("pile_ner", "train")
  examples = tasks_lib.task_examples("ie_ner_pile_ner_conversation", "train")
  asked = collections.defaultdict(dict)
  for ex in examples:
    record_id, entity_type = ex["id"].rsplit(":", 1)
    asked[record_id][entity_type] = ex["targets"]
  own_negatives = 0
  for record in records:
    positive = {e.type for e in record.entities}
    for entity_type in record.entity_types:
      if entity_type not in positive:
        assert asked[record.id][entity_type] == "[]"
        own_negatives += 1
    extra = set(asked[record.id]) - set(record.entity_types)
    assert len(extra) == tasks_lib.template_options()["num_negatives"]
  assert own_negatives > 100  # real negatives from the annotation, not only sampled


@pytest.mark.slow
def test_student_distilled_trained_and_scored_zero_shot(shared_data, tmp_path,
                                                        monkeypatch):
  """The whole path through the command-line tools (~2-3 min on 2 cores)."""
  monkeypatch.setenv("IE_DATA_DIR", shared_data)
  payload = bench.main([
      "--smoke", "--num_passages=12", f"--work_dir={tmp_path / 'work'}",
      f"--results_dir={tmp_path / 'results'}", "--name=student"])
  assert payload["distill"]["passages"] == 12
  assert payload["distill"]["teacher_requests"] == 12
  scores = payload["report"]["scores"]
  for convention in ("instructuie", "universalner"):
    table = scores[convention]["entity"]
    assert sorted(table["datasets"]) == sorted(zeroshot.ZEROSHOT_NER7)
    assert table["average"]["num_datasets"] == 7
    assert all(d["num_examples"] > 0 for d in table["datasets"].values())
  with open(tmp_path / "work" / "train.log", encoding="utf-8") as f:
    assert "step 5/5 | loss" in f.read()
  markdown = (tmp_path / "results" / "student.md").read_text()
  assert "GNER-T5-xxl" in markdown and "flan_t5_xxl" in markdown
