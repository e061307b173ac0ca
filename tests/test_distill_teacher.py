"""The teacher client against a real HTTP chat-completions server that misbehaves.

The fake teacher answers from CrossNER AI / Pile-NER gold annotations; the
client must survive 429s, 500s, malformed bodies, dropped connections and
timeouts, annotate every passage exactly once, and never leak the API key.
"""
from __future__ import annotations

import ast
import json
import logging
import os
import re

import pytest

from ie_tasks.distill import fake_teacher as ft
from ie_tasks.distill import passages as pl
from ie_tasks.distill import annotation_store, prompts, teacher
from ie_tasks.readers import bio, conversation

API_KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
GROUP = 3  # CrossNER sentences per passage


@pytest.fixture(scope="module")
def ai_records(shared_data):
  return bio.read_bio(os.path.join(shared_data, "crossner", "ai", "test.txt"),
                      dataset="crossner_ai", split="test")


def gold_pairs(group) -> list[list[str]]:
  """What a perfect teacher says: each sentence's entities, left to right."""
  pairs = []
  for record in group:
    for e in sorted(record.entities, key=lambda e: e.start):
      if [e.text, e.type] not in pairs:
        pairs.append([e.text, e.type])
  return pairs


@pytest.fixture(scope="module")
def ai_passages(ai_records):
  """45 passages of 3 consecutive CrossNER AI test sentences, with gold."""
  passages, gold = [], {}
  for i in range(0, 45 * GROUP, GROUP):
    group = ai_records[i:i + GROUP]
    text = " ".join(r.text for r in group)
    passages.append({"id": pl.passage_id(text), "text": text,
                     "source": "crossner_ai/test"})
    gold[text] = gold_pairs(group)
  return passages, gold


def _config(server, **overrides) -> teacher.TeacherConfig:
  values = dict(base_url=server.base_url, model="fake-gpt",
                api_key_env="IE_TEST_TEACHER_KEY", concurrency=6,
                max_retries=6, timeout_s=5.0, backoff_initial_s=0.01,
                backoff_max_s=0.2, price_prompt_per_1k=0.5,
                price_completion_per_1k=1.5)
  values.update(overrides)
  return teacher.TeacherConfig(**values)


def _annotate(tmp_path, passages, config, name="annotations.jsonl"):
  path = tmp_path / "passages.jsonl"
  pl.write_passages(passages, str(path))
  out = tmp_path / name
  summary = teacher.annotate_file(str(path), str(out), config,
                                  progress=False,
                                  summary_path=str(out) + ".summary.json")
  lines = [json.loads(l) for l in out.read_text().splitlines()]
  return summary, lines


def test_every_passage_annotated_once_through_every_fault(
    tmp_path, ai_records, ai_passages, monkeypatch, caplog):
  passages, gold = ai_passages
  monkeypatch.setenv("IE_TEST_TEACHER_KEY", API_KEY)
  faults = ft.Faults(rate_429=0.12, rate_500=0.1, malformed_rate=0.1,
                     drop_rate=0.1, slow_rate=0.2, slow_delay_s=0.05,
                     retry_after_s=0.05, on_429=frozenset({1, 2}),
                     on_drop=frozenset({5}), seed=7)
  server = ft.FakeTeacherServer(ft.FakeTeacher(
      ft.GoldLookup(ai_records), faults, api_key=API_KEY))
  caplog.set_level(logging.INFO)
  with server:
    summary, lines = _annotate(tmp_path, passages, _config(server))
    counts = server.counts

  # Every kind of fault happened, and every one cost a retry, not a passage.
  assert set(counts.faults) == {"429", "500", "malformed", "drop"}
  assert summary.failures == 0
  assert summary.retries == sum(counts.faults.values())
  assert (summary.annotated, summary.cached) == (45, 0)
  # Exactly once: one line per passage, in passage order, and the server
  # served each passage one complete answer.
  assert [a["id"] for a in lines] == [p["id"] for p in passages]
  assert all(counts.answered[p["text"]] == 1 for p in passages)
  for a in lines:
    assert json.loads(a["response"]) == gold[a["text"]]
    assert a["attempts"] == counts.requests[a["text"]]
    assert a["teacher"] == {"kind": "openai", "model": "fake-gpt"}
    assert a["prompt_version"] == prompts.PROMPT_VERSION
    usage = a["usage"]
    assert usage["completion_tokens"] == len(a["response"].split())
    assert usage["cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * 0.5 + usage["completion_tokens"] * 1.5) / 1e3)
  assert summary.cost_usd == pytest.approx(
      sum(a["usage"]["cost_usd"] for a in lines))
  # The key went to the server (it checks it) and nowhere else.
  assert counts.authorization == {True}
  written = [caplog.text, summary.text()] + [
      (tmp_path / f).read_bytes().decode("utf-8", "replace")
      for f in os.listdir(tmp_path) if os.path.isfile(tmp_path / f)]
  assert "attempt 1 failed (HTTP 429" in caplog.text
  assert not [w for w in written if API_KEY in w]


def test_a_rerun_pays_nothing_twice(tmp_path, ai_records, ai_passages):
  passages, _ = ai_passages
  with ft.FakeTeacherServer(ft.FakeTeacher(ft.GoldLookup(ai_records))) as s:
    first, lines = _annotate(tmp_path, passages[:20], _config(s))
    requests = s.counts.total
    # A larger run over the same store asks only for the new passages.
    second, lines2 = _annotate(tmp_path, passages[:30], _config(s))
    assert (first.annotated, second.cached, second.annotated) == (20, 20, 10)
    assert s.counts.total == requests + 10
    assert lines2[:20] == lines
    # Another model is another cache key: asked again.
    third, _ = _annotate(tmp_path, passages[:5], _config(s, model="other"),
                         "other.jsonl")
    assert (third.annotated, third.cached) == (5, 0)


def test_timeouts_are_retried(tmp_path, ai_records, ai_passages):
  passages, gold = ai_passages
  faults = ft.Faults(slow_rate=0.5, slow_delay_s=0.6, seed=1)
  with ft.FakeTeacherServer(ft.FakeTeacher(ft.GoldLookup(ai_records),
                                           faults)) as s:
    summary, lines = _annotate(tmp_path, passages[:10],
                               _config(s, timeout_s=0.3))
  assert summary.failures == 0 and summary.retries >= 1
  assert [a["id"] for a in lines] == [p["id"] for p in passages[:10]]
  assert all(json.loads(a["response"]) == gold[a["text"]] for a in lines)


def test_final_errors_are_not_retried_and_do_not_leak_the_key(
    tmp_path, ai_records, ai_passages, monkeypatch, caplog):
  passages, _ = ai_passages
  monkeypatch.setenv("IE_TEST_TEACHER_KEY", API_KEY)
  with ft.FakeTeacherServer(ft.FakeTeacher(ft.GoldLookup(ai_records),
                                           api_key="sk-the-right-one")) as s:
    summary, lines = _annotate(tmp_path, passages[:4], _config(s))
    assert s.counts.total == 0  # 401 before counting: nothing was billed
  assert (summary.failures, summary.retries, lines) == (4, 0, [])
  assert "HTTP 401" in caplog.text and API_KEY not in caplog.text


def test_retry_messages_are_redacted():
  client = teacher.ChatClient(teacher.TeacherConfig(
      base_url="http://x", model="m", api_key_env=""))
  assert teacher._redact(f"echo Bearer {API_KEY}!", API_KEY) == (
      "echo Bearer <redacted>!")
  # Retry-After wins over a shorter backoff; backoff doubles up to its cap.
  assert client.backoff_s(1, retry_after_s=2.5) == 2.5
  waits = [client.backoff_s(n, None) for n in range(1, 12)]
  assert 0.5 <= waits[0] <= 1.0 and 2.0 <= waits[2] <= 4.0
  assert max(waits) <= 60.0
  assert teacher._retry_after("3") == 3.0
  assert 0 < teacher._retry_after(
      __import__("email.utils").utils.formatdate(
          __import__("time").time() + 30, usegmt=True)) <= 30


def test_noisy_answer_formats_still_carry_the_gold(tmp_path, ai_records,
                                                   ai_passages):
  passages, gold = ai_passages
  faults = ft.Faults(noise_rate=1.0)
  with ft.FakeTeacherServer(ft.FakeTeacher(ft.GoldLookup(ai_records),
                                           faults)) as s:
    _, lines = _annotate(tmp_path, passages[:24], _config(s))
  kinds = set()
  for a in lines:
    text = a["response"]
    kinds.add("fence" if text.startswith("```") else
              "single_quotes" if "('" in text or text == "[]" else
              "trailing_text" if not text.endswith("]") else "none")
    body = re.search(r"\[.*\]", text, re.DOTALL).group(0)
    assert [list(p) for p in ast.literal_eval(body)] == gold[a["text"]]
  assert kinds == {"fence", "single_quotes", "trailing_text"}


def test_pile_ner_passages_get_chatgpt_s_answers(tmp_path, shared_data):
  path = os.path.join(shared_data, "pile_ner_sample", "slimer_validation.jsonl")
  records = conversation.read_pile_ner_pairs(path, split="validation")[:8]
  passages = [{"id": pl.passage_id(r.text), "text": r.text, "source": "pile"}
              for r in records]
  with ft.FakeTeacherServer(ft.FakeTeacher(
      ft.GoldLookup(ft.read_gold(path)))) as s:
    summary, lines = _annotate(tmp_path, passages, _config(s))
  assert summary.annotated == 8
  for record, a in zip(records, lines):
    pairs = {tuple(p) for p in json.loads(a["response"])}
    assert pairs == {(e.text, e.type) for e in record.entities}
    assert all(t == t.lower() for _, t in pairs)


def test_store_survives_reopening_and_exports_each_passage_once(tmp_path):
  path = str(tmp_path / "cache.sqlite")
  a = {"id": "p1", "text": "x", "response": "[]"}
  with annotation_store.AnnotationStore(path) as store:
    store.put("k1", a)
    store.put("k1", dict(a, response="second answer"))  # first one wins
    store.put("k2", dict(a, id="p2"))
  with annotation_store.AnnotationStore(path) as store:
    assert len(store) == 2 and store.get("k1") == a
    out = str(tmp_path / "a.jsonl")
    n = annotation_store.export_jsonl(
        store, [("k2", "p2"), ("k1", "p1"), ("k1", "p1"), ("k3", "p3")], out)
  assert n == 2
  assert [json.loads(l)["id"] for l in open(out)] == ["p2", "p1"]
