"""launch/distill.py end to end: kill -9 mid-run, restart, nothing lost or paid twice."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from ie_tasks.distill import fake_teacher as ft
from ie_tasks.distill import passages as pl
from launch import distill

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_KEY = "sk-cli-test-2b8e4d0f6a1c3e5f"


def _stored_ids(cache: str) -> set[str]:
  """Passages committed to the cache (empty before the run creates it)."""
  try:
    with sqlite3.connect(cache) as db:
      return {r[0] for r in db.execute("SELECT passage_id FROM annotations")}
  except sqlite3.OperationalError:
    return set()


def test_passages_command_writes_a_seeded_sample(tmp_path, shared_data):
  corpus = os.path.join(shared_data, "pile_ner_sample",
                        "slimer_validation.jsonl")
  args = ["passages", f"--input=jsonl:{corpus}", "--text_field=input",
          "--num_passages=40", "--max_tokens=128", "--seed=5"]
  assert distill.main(args + [f"--output={tmp_path / 'a.jsonl'}"]) == 0
  assert distill.main(args + [f"--output={tmp_path / 'b.jsonl'}"]) == 0
  a = pl.read_passages(str(tmp_path / "a.jsonl"))
  assert a == pl.read_passages(str(tmp_path / "b.jsonl")) and len(a) == 40
  assert all(len(p["text"].split()) <= 128 for p in a)


def test_kill_and_restart_loses_nothing_and_pays_nothing_twice(
    tmp_path, shared_data):
  records = ft.read_gold(f"bio:{shared_data}/crossner/ai/test.txt")
  passages = []
  for i in range(0, 120, 3):
    text = " ".join(r.text for r in records[i:i + 3])
    passages.append({"id": pl.passage_id(text), "text": text, "source": "ai"})
  passages_path = str(tmp_path / "passages.jsonl")
  pl.write_passages(passages, passages_path)
  out, cache = str(tmp_path / "annotations.jsonl"), str(tmp_path / "c.sqlite")
  # Slow answers, so the kill lands mid-run; some 500s on the way.
  faults = ft.Faults(delay_s=0.12, rate_500=0.1, seed=3)
  server = ft.FakeTeacherServer(ft.FakeTeacher(
      ft.GoldLookup(records), faults, api_key=API_KEY)).start()
  command = [sys.executable, "-m", "launch.distill", "annotate",
             f"--passages={passages_path}", f"--output={out}",
             f"--cache={cache}", f"--base_url={server.base_url}",
             "--model=fake-gpt", "--api_key_env=IE_TEST_CLI_KEY",
             "--concurrency=2", "--backoff_initial=0.01", "--timeout=5",
             "--price_prompt_per_1k=1", "--verbose"]
  env = dict(os.environ, IE_TEST_CLI_KEY=API_KEY, PYTHONPATH=REPO)
  try:
    first = subprocess.Popen(command, cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline and first.poll() is None:
      if os.path.exists(cache) and len(_stored_ids(cache)) >= 8:
        break
      time.sleep(0.05)
    assert first.poll() is None, first.communicate()[0].decode()[-2000:]
    first.send_signal(signal.SIGKILL)
    first_log = first.communicate()[0].decode()
    done_before = _stored_ids(cache)
    assert 8 <= len(done_before) < len(passages)
    requests_before = dict(server.counts.requests)

    faults.delay_s = 0.0
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
  finally:
    server.stop()

  lines = [json.loads(l) for l in open(out)]
  assert [a["id"] for a in lines] == [p["id"] for p in passages]
  by_text = {p["text"]: p["id"] for p in passages}
  for text, n in server.counts.requests.items():
    if by_text[text] in done_before:  # finished before the kill: not asked
      assert n == requests_before[text]
  # Only the (at most 2) requests in flight at the kill were answered twice.
  assert sum(server.counts.answered.values()) <= len(passages) + 2
  summary = json.load(open(out + ".summary.json"))
  assert summary["cached"] == len(done_before)
  assert summary["annotated"] == len(passages) - len(done_before)
  assert f"cached {len(done_before)}" in second.stdout
  for text in [first_log, second.stdout, second.stderr] + [
      open(tmp_path / f, "rb").read().decode("utf-8", "replace")
      for f in os.listdir(tmp_path)]:
    assert API_KEY not in text


def test_all_runs_the_pipeline(tmp_path, shared_data):
  pytest.importorskip("ie_tasks.distill.clean")
  corpus = tmp_path / "corpus.txt"
  records = ft.read_gold(f"bio:{shared_data}/crossner/ai/test.txt")[:30]
  corpus.write_text("\n\n".join(r.text for r in records), encoding="utf-8")
  with ft.FakeTeacherServer(ft.FakeTeacher(ft.GoldLookup(records))) as s:
    status = distill.main([
        "all", f"--input={corpus}", f"--work_dir={tmp_path / 'w'}",
        "--dataset=ai_distilled", f"--base_url={s.base_url}",
        "--model=fake-gpt", "--api_key_env=", "--no_progress",
        "--validation_fraction=0.2"])
  assert status == 0
  work = tmp_path / "w"
  assert len(open(work / "annotations.jsonl").readlines()) == 30
  cleaned = [json.loads(l) for l in open(work / "clean" / "records.jsonl")]
  # The teacher's answers become char-span entities of the real gold types.
  gold = {r.text: {(e.text, e.type) for e in r.entities} for r in records}
  assert len(cleaned) == 30
  for r in cleaned:
    assert {(e["text"], e["type"]) for e in r["entities"]} <= gold[r["text"]]
  tasks = json.load(open(work / "tasks.json"))
  assert tasks["tasks"]["open"] == "ie_ner_ai_distilled_conversation"
  assert tasks["train_examples"] > 0


def test_ctrl_c_keeps_every_finished_answer(tmp_path, shared_data):
  records = ft.read_gold(f"bio:{shared_data}/crossner/ai/test.txt")[:40]
  passages = [{"id": pl.passage_id(r.text), "text": r.text, "source": "ai"}
              for r in records]
  passages_path = str(tmp_path / "passages.jsonl")
  pl.write_passages(passages, passages_path)
  out, cache = str(tmp_path / "a.jsonl"), str(tmp_path / "c.sqlite")
  with ft.FakeTeacherServer(ft.FakeTeacher(
      ft.GoldLookup(records), ft.Faults(delay_s=0.2))) as server:
    run = subprocess.Popen(
        [sys.executable, "-m", "launch.distill", "annotate",
         f"--passages={passages_path}", f"--output={out}", f"--cache={cache}",
         f"--base_url={server.base_url}", "--model=fake-gpt",
         "--concurrency=2", "--no_progress"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(_stored_ids(cache)) < 4:
      time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
  assert run.returncode == 130, stderr[-2000:]
  assert "re-run the same command to resume" in stderr
  # The output was rebuilt from the store: exactly the committed answers.
  stored = _stored_ids(cache)
  assert 4 <= len(stored) < len(passages)
  assert sorted(json.loads(l)["id"] for l in open(out)) == sorted(stored)
