"""Teacher client for any OpenAI-compatible chat-completions endpoint.

`annotate_passages` sends every passage's UniversalNER prompt to
`POST {base_url}/chat/completions` (OpenAI, vLLM, a local server) with at most
`concurrency` requests in flight. A 429, a 5xx, a timeout, a dropped
connection or a malformed JSON body is a failed attempt, retried with
exponential backoff and jitter (a server's Retry-After is honoured); any
other 4xx is final. Answers go into an `AnnotationStore` (committed before
they count), so a re-run or a restart after a crash pays for nothing twice.

The API key is read from the environment (`api_key_env`) and only ever put in
the Authorization header: every message this module logs, raises or writes
passes through `_redact`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import os
import random
import time
from typing import Any, Sequence

from ie_tasks.distill import annotation_store, prompts

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524})


@dataclasses.dataclass
class TeacherConfig:
  """Where the teacher lives and how hard to push it."""
  base_url: str
  model: str
  api_key_env: str = "OPENAI_API_KEY"
  concurrency: int = 8
  max_retries: int = 6  # retries after the first attempt
  timeout_s: float = 120.0  # per request, connect to last byte
  backoff_initial_s: float = 1.0
  backoff_max_s: float = 60.0
  price_prompt_per_1k: float = 0.0  # USD per 1k prompt tokens
  price_completion_per_1k: float = 0.0  # USD per 1k completion tokens
  temperature: float = 0.0
  max_tokens: int | None = None
  prompt_version: str = prompts.PROMPT_VERSION

  def api_key(self) -> str | None:
    return os.environ.get(self.api_key_env) if self.api_key_env else None

  def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * self.price_prompt_per_1k +
            completion_tokens * self.price_completion_per_1k) / 1000.0


class TeacherError(RuntimeError):
  """A request that failed for good (the message never holds the API key)."""


class _RetryableError(Exception):

  def __init__(self, message: str, retry_after_s: float | None = None):
    super().__init__(message)
    self.retry_after_s = retry_after_s


@dataclasses.dataclass
class Completion:
  text: str
  prompt_tokens: int
  completion_tokens: int
  attempts: int


@dataclasses.dataclass
class Summary:
  passages: int = 0
  annotated: int = 0  # answered by the teacher in this run
  cached: int = 0  # already in the store: not requested again
  failures: int = 0  # gave up after max_retries (or a final 4xx)
  retries: int = 0
  prompt_tokens: int = 0
  completion_tokens: int = 0
  cost_usd: float = 0.0
  wall_s: float = 0.0
  failed_ids: list[str] = dataclasses.field(default_factory=list)

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def text(self) -> str:
    return (f"passages {self.passages}: annotated {self.annotated}, cached "
            f"{self.cached}, failed {self.failures}; retries {self.retries}; "
            f"tokens {self.prompt_tokens} prompt + {self.completion_tokens} "
            f"completion; cost ${self.cost_usd:.4f}; wall {self.wall_s:.1f} s")


def _redact(text: str, secret: str | None) -> str:
  return text.replace(secret, "<redacted>") if secret else text


def _retry_after(value: str | None) -> float | None:
  """Retry-After in seconds (delta-seconds or an HTTP date), if given."""
  if not value:
    return None
  try:
    return max(0.0, float(value))
  except ValueError:
    pass
  try:
    when = email.utils.parsedate_to_datetime(value)
    return max(0.0, when.timestamp() - time.time())
  except (TypeError, ValueError):
    return None


def _completion_fields(body: bytes) -> tuple[str, int, int]:
  """(content, prompt tokens, completion tokens); raises _RetryableError."""
  try:
    obj = json.loads(body)
    content = obj["choices"][0]["message"]["content"]
  except (ValueError, KeyError, IndexError, TypeError) as e:
    raise _RetryableError(f"malformed response body ({type(e).__name__}: "
                          f"{body[:200]!r})") from None
  if not isinstance(content, str):
    raise _RetryableError("response has no message content")
  usage = obj.get("usage") if isinstance(obj, dict) else None
  usage = usage if isinstance(usage, dict) else {}
  return (content, int(usage.get("prompt_tokens") or 0),
          int(usage.get("completion_tokens") or 0))


class ChatClient:
  """One aiohttp session posting chat completions with retries."""

  def __init__(self, config: TeacherConfig, *, seed: int | None = None):
    self.config = config
    self._key = config.api_key()
    self._rng = random.Random(seed)
    self._session = None
    self.retries = 0

  async def __aenter__(self) -> "ChatClient":
    import aiohttp
    headers = {"Content-Type": "application/json"}
    if self._key:
      headers["Authorization"] = f"Bearer {self._key}"
    self._session = aiohttp.ClientSession(
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
        connector=aiohttp.TCPConnector(limit=max(1, self.config.concurrency)))
    return self

  async def __aexit__(self, *exc) -> None:
    await self._session.close()

  def backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
    """Exponential backoff with jitter; never shorter than Retry-After."""
    cap = min(self.config.backoff_max_s,
              self.config.backoff_initial_s * 2 ** (attempt - 1))
    delay = cap / 2 + self._rng.uniform(0, cap / 2)
    return max(delay, retry_after_s or 0.0)

  async def _attempt(self, payload: dict) -> tuple[str, int, int]:
    import aiohttp
    url = self.config.base_url.rstrip("/") + "/chat/completions"
    try:
      async with self._session.post(url, json=payload) as response:
        body = await response.read()
        if response.status in RETRY_STATUSES:
          raise _RetryableError(
              f"HTTP {response.status} from {url}",
              _retry_after(response.headers.get("Retry-After")))
        if response.status >= 400:
          raise TeacherError(f"HTTP {response.status} from {url}: "
                             f"{body[:300]!r}")
        return _completion_fields(body)
    except asyncio.TimeoutError:
      raise _RetryableError(f"timeout after {self.config.timeout_s} s "
                            f"({url})") from None
    except aiohttp.ClientError as e:
      raise _RetryableError(f"{type(e).__name__}: {e}") from None

  async def complete(self, messages: Sequence[dict]) -> Completion:
    payload = {"model": self.config.model, "messages": list(messages),
               "temperature": self.config.temperature}
    if self.config.max_tokens:
      payload["max_tokens"] = self.config.max_tokens
    attempts = 0
    while True:
      attempts += 1
      try:
        text, prompt_tokens, completion_tokens = await self._attempt(payload)
        return Completion(text, prompt_tokens, completion_tokens, attempts)
      except TeacherError as e:
        raise TeacherError(_redact(str(e), self._key)) from None
      except _RetryableError as e:
        message = _redact(str(e), self._key)
        if attempts > self.config.max_retries:
          raise TeacherError(f"gave up after {attempts} attempts: "
                             f"{message}") from None
        delay = self.backoff_s(attempts, e.retry_after_s)
        self.retries += 1
        log.info("attempt %d failed (%s); retrying in %.2f s", attempts,
                 message, delay)
        await asyncio.sleep(delay)


def _annotation(passage: dict, config: TeacherConfig,
                completion: Completion) -> dict:
  return {
      "id": passage["id"], "text": passage["text"],
      "teacher": {"kind": "openai", "model": config.model},
      "prompt_version": config.prompt_version,
      "response": completion.text,
      "usage": {"prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "cost_usd": config.cost(completion.prompt_tokens,
                                        completion.completion_tokens)},
      "attempts": completion.attempts,
  }


async def annotate_passages_async(
    passages: Sequence[dict], config: TeacherConfig,
    store: annotation_store.AnnotationStore, output_path: str, *,
    progress: bool = True, seed: int | None = None) -> Summary:
  """Annotates the passages missing from `store`; writes `output_path`.

  The output JSONL is first rebuilt from the store (so a restart drops any
  torn line of a killed run), then each new answer is appended and flushed
  once it is committed to the store; at the end (also on Ctrl-C or an error)
  it is rebuilt from the store again, in passage order.
  """
  from tqdm import tqdm
  start = time.monotonic()
  summary = Summary(passages=len(passages))
  keyed = [(prompts.cache_key(config.model, prompts.build_messages(p["text"]),
                              config.prompt_version), p) for p in passages]
  order = [(key, p["id"]) for key, p in keyed]
  annotation_store.export_jsonl(store, order, output_path)
  pending, queued = [], set()
  for key, passage in keyed:
    if store.get(key) is not None:
      summary.cached += 1
    elif key not in queued:
      queued.add(key)
      pending.append((key, passage))
  bar = tqdm(total=len(passages), initial=summary.cached, unit=" passages",
             desc="annotate", disable=not progress, dynamic_ncols=True)
  queue: asyncio.Queue = asyncio.Queue()
  for item in pending:
    queue.put_nowait(item)

  async def worker(client: ChatClient, out) -> None:
    while True:
      try:
        key, passage = queue.get_nowait()
      except asyncio.QueueEmpty:
        return
      try:
        completion = await client.complete(
            prompts.build_messages(passage["text"]))
      except TeacherError as e:
        summary.failures += 1
        summary.failed_ids.append(passage["id"])
        log.warning("passage %s failed: %s", passage["id"], e)
        bar.update(1)
        continue
      annotation = _annotation(passage, config, completion)
      store.put(key, annotation)  # durable before it counts
      annotation_store.append_jsonl(out, annotation)
      summary.annotated += 1
      summary.prompt_tokens += completion.prompt_tokens
      summary.completion_tokens += completion.completion_tokens
      summary.cost_usd += annotation["usage"]["cost_usd"]
      bar.set_postfix(cost=f"${summary.cost_usd:.4f}", fail=summary.failures,
                      refresh=False)
      bar.update(1)

  try:
    with open(output_path, "a", encoding="utf-8") as out:
      async with ChatClient(config, seed=seed) as client:
        try:
          await asyncio.gather(*(worker(client, out)
                                 for _ in range(max(1, config.concurrency))))
        finally:
          summary.retries = client.retries
  finally:
    bar.close()
    annotation_store.export_jsonl(store, order, output_path)
    summary.wall_s = time.monotonic() - start
  return summary


def annotate_file(passages_path: str, output_path: str, config: TeacherConfig,
                  *, cache_path: str | None = None, progress: bool = True,
                  summary_path: str | None = None,
                  seed: int | None = None) -> Summary:
  """Passage JSONL -> annotation JSONL, cached in `cache_path` (sqlite)."""
  from ie_tasks.distill import passages as passages_lib
  passages = passages_lib.read_passages(passages_path)
  cache_path = cache_path or output_path + ".cache.sqlite"
  with annotation_store.AnnotationStore(cache_path) as store:
    summary = asyncio.run(annotate_passages_async(
        passages, config, store, output_path, progress=progress, seed=seed))
  log.info("annotation summary: %s", summary.text())
  if summary_path:
    tmp = f"{summary_path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(summary.to_json(), f, indent=2)
    os.replace(tmp, summary_path)
  return summary
