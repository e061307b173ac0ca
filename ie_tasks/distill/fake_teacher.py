"""A local chat-completions server that answers from real gold annotations.

Tests and benchmarks of the distillation pipeline need a teacher that speaks
the real protocol (`POST /v1/chat/completions`, OpenAI's response shape) and
misbehaves like a real one. This server finds the passage in the user turn
(`Text: ...`), looks its gold entities up (CrossNER / CoNLL-2003 / MIT via
`readers.bio`, Pile-NER via `read_pile_ner_pairs`, or canonical record JSONL)
and answers the UniversalNER list of [entity, type] pairs. A passage made of
several gold sentences (joined by spaces or newlines) gets the union of their
entities, in order.

Faults (`Faults`) are decided per (passage, attempt) from a seeded hash, so a
run is reproducible whatever the request order: slow answers, 429 with
Retry-After, 500, malformed JSON bodies, a connection dropped mid-response,
and noisy answer formats (code fences, single-quoted tuples, trailing text).
Explicit global request numbers (1-based) can be given for each fault too.
`counts` records requests and served answers per passage, so tests can check
that every passage was billed exactly once.

  python -m ie_tasks.distill.fake_teacher --port 8000 \
      --gold ../shared/data/crossner/ai/test.txt --rate_429 0.1
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import hashlib
import json
import re
import threading
from typing import Iterable, Sequence

from ie_tasks import records as rec
from ie_tasks.distill import prompts

_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
  return _SPACE.sub(" ", text).strip()


# ------------------------------------------------------------------- gold


class GoldLookup:
  """Passage text -> [(entity text, type)] from gold records."""

  def __init__(self, records: Iterable[rec.Record]):
    self._answers: dict[str, list[tuple[str, str]]] = {}
    for record in records:
      pairs = self._answers.setdefault(_norm(record.text), [])
      for entity in sorted(record.entities, key=lambda e: (e.start, e.end)):
        if (entity.text, entity.type) not in pairs:
          pairs.append((entity.text, entity.type))

  def __len__(self) -> int:
    return len(self._answers)

  def answer(self, passage: str) -> list[tuple[str, str]] | None:
    """Gold pairs of the passage, or None if no gold sentence is in it."""
    key = _norm(passage)
    if key in self._answers:
      return list(self._answers[key])
    found: list[tuple[int, str]] = []
    for text in self._answers:
      position = key.find(text)
      if text and position >= 0:
        found.append((position, text))
    if not found:
      return None
    # Left to right, longest first; a gold sentence that only occurs inside
    # another one found here ("Yes ." in a longer sentence) adds nothing.
    pairs: list[tuple[str, str]] = []
    covered_to = -1
    for position, text in sorted(found, key=lambda f: (f[0], -len(f[1]))):
      if position + len(text) <= covered_to:
        continue
      covered_to = max(covered_to, position + len(text))
      pairs.extend(p for p in self._answers[text] if p not in pairs)
    return pairs


def read_gold(spec: str) -> list[rec.Record]:
  """Gold records from 'PATH' or 'FORMAT:PATH' (bio, mit, pile_ner, records)."""
  from ie_tasks.readers import bio, conversation
  fmt, sep, path = spec.partition(":")
  if not sep or fmt not in ("bio", "mit", "pile_ner", "records"):
    fmt, path = None, spec
  if fmt is None:
    with open(path, encoding="utf-8") as f:
      first = f.readline()
    if '"doc_question_pairID"' in first:
      fmt = "pile_ner"
    elif first.lstrip().startswith("{"):
      fmt = "records"
    else:
      fmt = "bio"
  if fmt == "pile_ner":
    return conversation.read_pile_ner_pairs(path, split="gold")
  if fmt == "records":
    return list(rec.read_jsonl(path))
  columns = dict(token_column=1, tag_column=0) if fmt == "mit" else {}
  return bio.read_bio(path, dataset="gold", split="gold", **columns)


def format_answer(pairs: Sequence[tuple[str, str]], noise: str = "") -> str:
  """The teacher's answer text: a JSON list of [entity, type], maybe noisy."""
  clean = json.dumps([list(p) for p in pairs], ensure_ascii=False)
  if noise == "fence":
    return f"```json\n{clean}\n```"
  if noise == "single_quotes":
    return "[" + ", ".join(f"({e!r}, {t!r})" for e, t in pairs) + "]"
  if noise == "trailing_text":
    return clean + "\n\nThese are all the named entities in the text."
  return clean


# ----------------------------------------------------------------- faults


@dataclasses.dataclass
class Faults:
  """What goes wrong, per attempt (rates) or on given request numbers."""
  delay_s: float = 0.0  # every answer waits this long
  slow_rate: float = 0.0  # ... and this fraction waits slow_delay_s more
  slow_delay_s: float = 0.5
  rate_429: float = 0.0
  retry_after_s: float = 0.05
  rate_500: float = 0.0
  malformed_rate: float = 0.0
  drop_rate: float = 0.0  # connection closed mid-response
  noise_rate: float = 0.0  # answer wrapped in fences / quotes / text
  on_429: frozenset[int] = frozenset()
  on_500: frozenset[int] = frozenset()
  on_malformed: frozenset[int] = frozenset()
  on_drop: frozenset[int] = frozenset()
  max_faults_per_passage: int = 3  # then it answers, so runs finish
  seed: int = 0

  def draw(self, passage: str, attempt: int, salt: str) -> float:
    digest = hashlib.sha1(
        f"{self.seed}\0{salt}\0{attempt}\0{passage}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64

  def fault(self, passage: str, attempt: int, request_number: int) -> str:
    """'' (answer) or one of '429', '500', 'malformed', 'drop'."""
    for kind, numbers in (("429", self.on_429), ("500", self.on_500),
                          ("malformed", self.on_malformed),
                          ("drop", self.on_drop)):
      if request_number in numbers:
        return kind
    if attempt > self.max_faults_per_passage:
      return ""
    u = self.draw(passage, attempt, "fault")
    for kind, rate in (("429", self.rate_429), ("500", self.rate_500),
                       ("malformed", self.malformed_rate),
                       ("drop", self.drop_rate)):
      if u < rate:
        return kind
      u -= rate
    return ""

  def noise(self, passage: str) -> str:
    if self.draw(passage, 0, "noise") >= self.noise_rate:
      return ""
    kinds = ("fence", "single_quotes", "trailing_text")
    return kinds[int(self.draw(passage, 0, "noise-kind") * len(kinds))]


# ----------------------------------------------------------------- server


@dataclasses.dataclass
class Counts:
  requests: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # passage -> requests
  answered: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # passage -> complete 200 answers
  faults: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # fault kind -> count
  total: int = 0
  authorization: set = dataclasses.field(default_factory=set)

  def to_json(self) -> dict:
    return {"total": self.total, "faults": dict(self.faults),
            "requests": dict(self.requests), "answered": dict(self.answered)}


def _tokens(text: str) -> int:
  return len(text.split())


class FakeTeacher:
  """The aiohttp app; `FakeTeacherServer` runs it in a thread."""

  def __init__(self, gold: GoldLookup, faults: Faults | None = None, *,
               model: str = "fake-teacher", api_key: str | None = None):
    self.gold, self.faults, self.model = gold, faults or Faults(), model
    self.api_key = api_key  # if set, requests must carry it
    self.counts = Counts()
    self._lock = threading.Lock()

  def app(self):
    from aiohttp import web
    app = web.Application()
    for prefix in ("", "/v1"):
      app.router.add_post(prefix + "/chat/completions", self.chat)
    app.router.add_get("/stats", self.stats)
    return app

  async def stats(self, request):
    from aiohttp import web
    with self._lock:
      return web.json_response(self.counts.to_json())

  async def chat(self, request):
    from aiohttp import web
    auth = request.headers.get("Authorization", "")
    if self.api_key is not None and auth != f"Bearer {self.api_key}":
      return web.json_response({"error": {"message": "bad api key"}},
                               status=401)
    try:
      body = await request.json()
      passage = prompts.passage_from_messages(body["messages"])
    except (ValueError, KeyError, TypeError):
      passage = None
    if passage is None:
      return web.json_response(
          {"error": {"message": "no 'Text: ' user message"}}, status=400)
    with self._lock:
      self.counts.total += 1
      number = self.counts.total
      self.counts.requests[passage] += 1
      attempt = self.counts.requests[passage]
      self.counts.authorization.add(bool(auth))
    faults = self.faults
    delay = faults.delay_s
    if (faults.slow_rate and attempt <= faults.max_faults_per_passage and
        faults.draw(passage, attempt, "slow") < faults.slow_rate):
      delay += faults.slow_delay_s
    if delay:
      await asyncio.sleep(delay)
    fault = faults.fault(passage, attempt, number)
    if fault:
      with self._lock:
        self.counts.faults[fault] += 1
    if fault == "429":
      return web.json_response(
          {"error": {"message": "rate limited", "type": "rate_limit"}},
          status=429, headers={"Retry-After": f"{faults.retry_after_s:g}"})
    if fault == "500":
      return web.json_response({"error": {"message": "internal error"}},
                               status=500)
    pairs = self.gold.answer(passage)
    if pairs is None:
      return web.json_response(
          {"error": {"message": "passage not in the gold data"}}, status=404)
    content = format_answer(pairs, faults.noise(passage))
    completion_tokens = _tokens(content)
    prompt_tokens = sum(_tokens(str(m.get("content", "")))
                        for m in body["messages"])
    response = {
        "id": f"chatcmpl-fake-{number}", "object": "chat.completion",
        "created": 0, "model": body.get("model", self.model),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens,
                  "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }
    data = json.dumps(response).encode("utf-8")
    if fault == "malformed":
      return web.Response(body=data[: len(data) // 2],
                          content_type="application/json")
    if fault == "drop":
      # Promise the whole body, send half, then cut the connection.
      stream = web.StreamResponse(headers={"Content-Type": "application/json"})
      stream.content_length = len(data)
      await stream.prepare(request)
      await stream.write(data[: len(data) // 2])
      request.transport.close()
      return stream
    with self._lock:
      self.counts.answered[passage] += 1
    return web.Response(body=data, content_type="application/json")


class FakeTeacherServer:
  """Runs a FakeTeacher on 127.0.0.1 (a free port by default) in a thread."""

  def __init__(self, teacher: FakeTeacher, port: int = 0):
    self.teacher, self.port = teacher, port
    self._loop = asyncio.new_event_loop()
    self._thread = threading.Thread(target=self._loop.run_forever,
                                    daemon=True, name="fake-teacher")
    self._runner = None

  @property
  def base_url(self) -> str:
    return f"http://127.0.0.1:{self.port}/v1"

  @property
  def counts(self) -> Counts:
    return self.teacher.counts

  async def _start(self) -> None:
    from aiohttp import web
    self._runner = web.AppRunner(self.teacher.app(), access_log=None)
    await self._runner.setup()
    site = web.TCPSite(self._runner, "127.0.0.1", self.port)
    await site.start()
    self.port = site._server.sockets[0].getsockname()[1]

  def start(self) -> "FakeTeacherServer":
    self._thread.start()
    asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
    return self

  def stop(self) -> None:
    if self._runner is not None:
      asyncio.run_coroutine_threadsafe(self._runner.cleanup(),
                                       self._loop).result(30)
    self._loop.call_soon_threadsafe(self._loop.stop)
    self._thread.join(10)

  def __enter__(self) -> "FakeTeacherServer":
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()


def _numbers(text: str) -> frozenset[int]:
  return frozenset(int(x) for x in text.split(",") if x.strip())


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--port", type=int, default=8000)
  parser.add_argument("--gold", action="append", required=True,
                      help="gold: PATH or bio:|mit:|pile_ner:|records:PATH")
  parser.add_argument("--api_key_env", default="",
                      help="if set, require this env var's key as Bearer")
  parser.add_argument("--port_file", default="",
                      help="write the bound port here once listening")
  for field in dataclasses.fields(Faults):
    if field.type.startswith("frozenset"):
      parser.add_argument(f"--{field.name}", default="",
                          help="comma-separated request numbers")
    else:
      kind = int if field.type == "int" else float
      parser.add_argument(f"--{field.name}", type=kind, default=field.default)
  args = parser.parse_args(argv)
  import os
  faults = Faults(**{
      f.name: (_numbers(getattr(args, f.name)) if f.type.startswith("frozenset")
               else getattr(args, f.name)) for f in dataclasses.fields(Faults)})
  gold = GoldLookup(r for spec in args.gold for r in read_gold(spec))
  key = os.environ.get(args.api_key_env) if args.api_key_env else None
  server = FakeTeacherServer(FakeTeacher(gold, faults, api_key=key),
                             args.port).start()
  if args.port_file:
    with open(args.port_file + ".tmp", "w") as f:
      f.write(str(server.port))
    os.replace(args.port_file + ".tmp", args.port_file)
  print(f"fake teacher on {server.base_url} ({len(gold)} gold passages)",
        flush=True)
  try:
    threading.Event().wait()
  except KeyboardInterrupt:
    server.stop()


if __name__ == "__main__":
  main()
