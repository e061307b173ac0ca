"""Our own checkpoint as teacher: passages in, annotation JSONL out, resumable.

A tiny random model answers garbage; the point is the path: questions per
(passage, type), fixed-shape batched decoding, answers parsed (failures
counted), the annotation contract written, and the cleaner reads it.
"""
from __future__ import annotations

import json
import os

import jax
import pytest
import seqio
import flax.linen as nn

from ie_tasks.distill import clean, model_teacher
from ie_tasks.readers import conversation
from models.models import EncoderDecoderModel
from models.network import T5Config

TYPES = ("person", "organization")


@pytest.fixture(scope="module")
def teacher():
  config = T5Config(vocab_size=384, emb_dim=16, num_heads=2, head_dim=8,
                    mlp_dim=32, num_encoder_layers=1, num_decoder_layers=1,
                    dropout_rate=0.0, dtype="float32")
  model = EncoderDecoderModel(config)
  params = nn.unbox(model.get_initial_variables(
      jax.random.PRNGKey(0), {"encoder_input_tokens": (1, 8),
                              "decoder_input_tokens": (1, 8)})["params"])
  return model_teacher.CheckpointTeacher(
      model, params, seqio.ByteVocabulary(), TYPES, name="tiny-random",
      batch_size=4, max_input_length=96, max_output_length=8)


def test_checkpoint_teacher_writes_the_annotation_contract(
    teacher, shared_data, tmp_path):
  records = conversation.read_pile_ner_pairs(
      os.path.join(shared_data, "pile_ner_sample", "slimer_validation.jsonl"),
      split="train")[:3]
  passages = tmp_path / "passages.jsonl"
  passages.write_text("".join(json.dumps({"id": r.id, "text": r.text,
                                          "source": "pile"}) + "\n"
                              for r in records))
  out = tmp_path / "annotations.jsonl"
  summary = model_teacher.annotate_file(str(passages), str(out), teacher,
                                        passages_per_step=2)
  assert summary["passages_annotated"] == 3
  assert summary["questions"] == 3 * len(TYPES)
  lines = [json.loads(l) for l in out.read_text().splitlines()]
  assert [l["id"] for l in lines] == [r.id for r in records]
  failures = 0
  for line, record in zip(lines, records):
    assert line["text"] == record.text
    assert line["teacher"] == {"kind": "checkpoint", "model": "tiny-random"}
    pairs = json.loads(line["response"])
    assert all(isinstance(e, str) and t in TYPES for e, t in pairs)
    assert line["usage"]["prompt_tokens"] > 0 and line["attempts"] == 1
    assert 0 <= line["parse_failures"] <= len(TYPES)
    failures += line["parse_failures"]
  assert summary["parse_failures"] == failures

  # A second run finds every passage done and asks nothing again.
  again = model_teacher.annotate_file(str(passages), str(out), teacher)
  assert again["passages_annotated"] == 0
  assert again["passages_skipped_done"] == 3
  assert len(out.read_text().splitlines()) == 3

  report = clean.clean_annotations(str(out), str(tmp_path / "clean"),
                                   dataset="from_ckpt")
  assert report["counts"]["lines_read"] == 3


def test_batches_have_one_shape_and_answers_keep_order(teacher):
  questions = [f"Text: passage {i}\nUSER: What describes person in the "
               f"text?\nASSISTANT:" for i in range(6)]
  answers, prompt_tokens = teacher.answer(questions)
  assert len(answers) == 6 and prompt_tokens == sum(
      len(q.encode()) + 1 for q in questions)
  # Same question, same (greedy) answer, wherever it sits in a batch.
  again, _ = teacher.answer(questions[3:] + questions[:3])
  assert again[3:] + again[:3] == answers


def test_types_from_counts_ranks_by_frequency(tmp_path):
  path = tmp_path / "type_counts.json"
  path.write_text(json.dumps({"b": 3, "a": 3, "c": 9, "d": 1}))
  assert model_teacher.types_from_counts(str(path)) == ["c", "a", "b", "d"]
  assert model_teacher.types_from_counts(str(path), top_k=2) == ["c", "a"]
