"""Crash-safe on-disk cache of teacher answers (sqlite3, one commit per answer).

Keyed by `prompts.cache_key(model, messages, prompt_version)`, so the same
passage asked of the same model with the same prompt is paid for once, across
runs, passage files and crashes. Each answer is committed (journal synced to
disk) before it is counted as done; a kill -9 loses at most the requests in
flight, never a finished answer. The annotation JSONL is always rebuilt from
the store (`export_jsonl`), so it cannot hold duplicates or partial lines.
"""
from __future__ import annotations

import json
import os
import sqlite3
from typing import Iterable, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
  key TEXT PRIMARY KEY,
  passage_id TEXT NOT NULL,
  annotation TEXT NOT NULL,
  created REAL NOT NULL DEFAULT (julianday('now'))
)
"""


class AnnotationStore:
  """`get`/`put` annotation dicts (the annotation JSONL line) by cache key."""

  def __init__(self, path: str):
    self.path = path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self._db = sqlite3.connect(path, isolation_level=None)
    # WAL + FULL sync: a commit is on disk when it returns; readers never block.
    self._db.execute("PRAGMA journal_mode=WAL")
    self._db.execute("PRAGMA synchronous=FULL")
    self._db.execute(_SCHEMA)

  def close(self) -> None:
    self._db.close()

  def __enter__(self) -> "AnnotationStore":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __len__(self) -> int:
    return self._db.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]

  def get(self, key: str) -> dict | None:
    row = self._db.execute("SELECT annotation FROM annotations WHERE key = ?",
                           (key,)).fetchone()
    return None if row is None else json.loads(row[0])

  def put(self, key: str, annotation: dict) -> None:
    """Durably stores one finished annotation (first answer wins)."""
    self._db.execute(
        "INSERT OR IGNORE INTO annotations (key, passage_id, annotation) "
        "VALUES (?, ?, ?)",
        (key, annotation["id"], json.dumps(annotation, ensure_ascii=False)))

  def items(self) -> Iterator[tuple[str, dict]]:
    for key, text in self._db.execute(
        "SELECT key, annotation FROM annotations ORDER BY rowid"):
      yield key, json.loads(text)


def append_jsonl(f, annotation: dict) -> None:
  """Appends one annotation line and flushes it (for `tail -f` and readers)."""
  f.write(json.dumps(annotation, ensure_ascii=False) + "\n")
  f.flush()


def export_jsonl(store: AnnotationStore,
                 keyed_passages: Iterable[tuple[str, str]], path: str) -> int:
  """Atomically writes the stored annotations of (key, passage id), in order.

  A passage id is written at most once; passages without a stored answer are
  left out. Returns the number of lines written.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  written: set[str] = set()
  with open(tmp, "w", encoding="utf-8") as f:
    for key, pid in keyed_passages:
      if pid in written:
        continue
      annotation = store.get(key)
      if annotation is not None:
        f.write(json.dumps(annotation, ensure_ascii=False) + "\n")
        written.add(pid)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return len(written)
