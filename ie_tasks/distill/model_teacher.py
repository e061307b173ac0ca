"""A teacher that is one of our own checkpoints (distillation from a bigger student).

A UniversalNER student answers one question per (passage, type), so this
teacher asks a configured list of types (e.g. the most frequent types of an
earlier distilled set's type_counts.json) about every passage, in the
conversation format (`templates.conversation.make_input`), decodes the
questions in fixed-shape batches through `EncoderDecoderModel.predict_batch`,
parses each answer as a JSON list of spans (`parsing.parse_conversation_
output`), and writes the annotation JSONL contract: `response` is a JSON list
of [entity, type] pairs, `teacher.kind` is "checkpoint". Answers that did not
parse are counted (`parse_failures` on the line and in the summary) and
contribute no pair. Already annotated passage ids in the output are skipped,
so a stopped run resumes.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import numpy as np

from ie_tasks import parsing
from ie_tasks.distill import passages as passages_lib
from ie_tasks.templates import conversation

PROMPT_VERSION = "checkpoint-conversation-v1"


@dataclasses.dataclass
class CheckpointTeacher:
  """model: EncoderDecoderModel; params: its (unboxed) params; vocabulary:
  the seqio vocabulary it was trained with; types: the types to ask."""
  model: Any
  params: Any
  vocabulary: Any
  types: Sequence[str]
  name: str = "checkpoint"
  batch_size: int = 32
  max_input_length: int = 512
  max_output_length: int = 64

  @classmethod
  def from_checkpoint(cls, path: str, model: Any, vocabulary: Any,
                      types: Sequence[str], **kwargs) -> "CheckpointTeacher":
    """Restores params from one of our checkpoints (or T5X / Hugging Face)."""
    import jax
    from models import checkpoints
    shapes = {"encoder_input_tokens": (1, 8), "decoder_input_tokens": (1, 8)}
    abstract = jax.eval_shape(
        lambda: model.get_initial_variables(jax.random.PRNGKey(0), shapes)
    )["params"]
    import flax.linen as nn
    abstract = nn.unbox(abstract)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    shardings = jax.tree.map(lambda _: device, abstract)
    params = checkpoints.load_initial_params(path, abstract, shardings)
    return cls(model, params, vocabulary, types,
               name=kwargs.pop("name", os.path.basename(path.rstrip("/"))),
               **kwargs)

  def _encode(self, text: str) -> list[int]:
    ids = list(self.vocabulary.encode(text))[:self.max_input_length - 1]
    return ids + [self.vocabulary.eos_id]

  def _decode(self, tokens: np.ndarray) -> str:
    ids = [int(t) for t in tokens]
    if self.vocabulary.eos_id in ids:
      ids = ids[:ids.index(self.vocabulary.eos_id)]
    return self.vocabulary.decode([i for i in ids if i > 0])

  def answer(self, questions: Sequence[str]) -> tuple[list[str], int]:
    """Decoded answers to conversation inputs; (answers, prompt tokens)."""
    answers, prompt_tokens = [], 0
    for start in range(0, len(questions), self.batch_size):
      chunk = questions[start:start + self.batch_size]
      encoder = np.zeros((self.batch_size, self.max_input_length), np.int32)
      for row, question in enumerate(chunk):  # fixed shapes: one compile
        ids = self._encode(question)
        encoder[row, :len(ids)] = ids
        prompt_tokens += len(ids)
      batch = {"encoder_input_tokens": encoder, "decoder_input_tokens":
               np.zeros((self.batch_size, self.max_output_length), np.int32)}
      tokens = np.asarray(self.model.predict_batch(self.params, batch))
      answers.extend(self._decode(t) for t in tokens[:len(chunk)])
    return answers, prompt_tokens

  def annotate(self, passages: Sequence[dict]) -> list[dict]:
    """Annotation dicts (contract format) for passages {"id", "text"}."""
    questions = [conversation.make_input(p["text"], t)
                 for p in passages for t in self.types]
    answers, _ = self.answer(questions)
    out = []
    per_passage = len(self.types)
    for k, passage in enumerate(passages):
      pairs, failures, completion_tokens = [], 0, 0
      for entity_type, answer in zip(
          self.types, answers[k * per_passage:(k + 1) * per_passage]):
        completion_tokens += len(self.vocabulary.encode(answer)) + 1
        parsed = parsing.parse_conversation_output(answer)
        if not parsed.ok:
          failures += 1
        pairs.extend([span, entity_type] for (span,) in parsed.items)
      prompt_tokens = sum(
          len(self._encode(conversation.make_input(passage["text"], t)))
          for t in self.types)
      out.append({
          "id": passage["id"], "text": passage["text"],
          "teacher": {"kind": "checkpoint", "model": self.name},
          "prompt_version": PROMPT_VERSION,
          "response": json.dumps(pairs, ensure_ascii=False),
          "usage": {"prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens, "cost_usd": 0.0},
          "attempts": 1, "parse_failures": failures})
    return out


def types_from_counts(type_counts_path: str, top_k: int | None = None
                      ) -> list[str]:
  """The most frequent types of a distilled set (to ask the teacher)."""
  with open(type_counts_path, encoding="utf-8") as f:
    counts = json.load(f)
  ranked = sorted(counts, key=lambda t: (-counts[t], t))
  return ranked[:top_k] if top_k else ranked


def annotate_file(passages_path: str, output_path: str,
                  teacher: CheckpointTeacher, *,
                  passages_per_step: int | None = None) -> dict[str, int]:
  """Appends annotations for passages not yet in `output_path`; a summary.

  Lines are flushed after every step of `passages_per_step` passages (default:
  enough to fill one decode batch), so a stop loses at most one step.
  """
  done = set()
  if os.path.exists(output_path):
    with open(output_path, encoding="utf-8") as f:
      for line in f:
        try:
          done.add(json.loads(line)["id"])
        except (json.JSONDecodeError, KeyError, TypeError):
          continue  # a line cut by a crash: that passage is asked again
  todo = [p for p in passages_lib.read_passages(passages_path) if p["id"] not in done]
  step = passages_per_step or max(1, teacher.batch_size // max(
      1, len(teacher.types)))
  summary = {"passages_skipped_done": len(done), "passages_annotated": 0,
             "questions": 0, "parse_failures": 0}
  with open(output_path, "a", encoding="utf-8") as f:
    for start in range(0, len(todo), step):
      for annotation in teacher.annotate(todo[start:start + step]):
        f.write(json.dumps(annotation, ensure_ascii=False) + "\n")
        summary["passages_annotated"] += 1
        summary["questions"] += len(teacher.types)
        summary["parse_failures"] += annotation["parse_failures"]
      f.flush()
  return summary
