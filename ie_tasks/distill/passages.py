"""Passage sampling: corpus text -> deduplicated passages of at most N tokens.

UniversalNER samples passages of up to 256 tokens from the Pile and asks the
teacher about each. Here a corpus is any stream of documents (plain text
paragraphs, a JSONL text field, a TFDS text feature); each document is cut on
sentence boundaries into passages of at most `max_tokens` tokens (whitespace
tokens, or a vocabulary's pieces when one is given), passages are deduplicated
by a hash of their normalised text, and a reproducible sample is drawn by
"bottom-k" hashing: a passage's rank is sha1(seed, normalised text), and the
`num_passages` smallest ranks are kept. That streams (one heap of k entries),
and the sample does not depend on the order or sharding of the corpus.

Passage JSONL, one per line: {"id": sha1(text)[:16], "text", "source"}.
"""
from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import os
import re
from typing import Any, Callable, Iterable, Iterator, Sequence

from ie_tasks.records import DataError, iter_json_lines

PAPER_MAX_TOKENS = 256

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets)
# before whitespace; a line break always ends one.
_CLOSERS = "[\"'\u201d\u2019)\\]]"
_SENTENCE_END = re.compile(
    rf"(?<=[.!?])\s+|(?<=[.!?]{_CLOSERS})\s+|(?<=[.!?]{_CLOSERS}{{2}})\s+|\n+")
_SPACE = re.compile(r"\s+")

TokenCounter = Callable[[str], int]


def whitespace_token_count(text: str) -> int:
  return len(text.split())


def vocabulary_token_count(vocabulary: Any) -> TokenCounter:
  """Counts pieces of a seqio vocabulary (or anything with `encode`)."""
  return lambda text: len(vocabulary.encode(text))


def passage_id(text: str) -> str:
  """Stable id of a passage: the first 16 hex digits of sha1(text)."""
  return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def normalise(text: str) -> str:
  """Case- and whitespace-insensitive form used for deduplication."""
  return _SPACE.sub(" ", text).strip().lower()


def split_sentences(text: str) -> list[str]:
  pieces = _SENTENCE_END.split(text)
  return [p.strip() for p in pieces if p and p.strip()]


def _split_long_sentence(sentence: str, max_tokens: int,
                         count: TokenCounter) -> Iterator[str]:
  """A sentence over the limit is cut between words (no boundary is better).

  A single word longer than the limit stays whole (whitespace is the finest
  cut this module makes).
  """
  words, chunk = sentence.split(), []
  for word in words:
    if chunk and count(" ".join(chunk + [word])) > max_tokens:
      yield " ".join(chunk)
      chunk = []
    chunk.append(word)
  if chunk:
    yield " ".join(chunk)


def split_passages(text: str, max_tokens: int = PAPER_MAX_TOKENS,
                   count_tokens: TokenCounter = whitespace_token_count
                   ) -> Iterator[str]:
  """Greedily packs whole sentences into passages of <= max_tokens tokens."""
  if max_tokens < 1:
    raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
  # Whitespace counts add up exactly; a subword vocabulary's may not (pieces
  # can merge across the joining space), so those count the joined passage.
  additive = count_tokens is whitespace_token_count
  current: list[str] = []
  current_tokens = 0
  for sentence in split_sentences(text):
    n = count_tokens(sentence)
    pieces = ([sentence] if n <= max_tokens else
              list(_split_long_sentence(sentence, max_tokens, count_tokens)))
    for piece in pieces:
      n = count_tokens(piece) if len(pieces) > 1 else n
      total = (current_tokens + n if additive or not current else
               count_tokens(" ".join(current + [piece])))
      if current and total > max_tokens:
        yield " ".join(current)
        current, total = [], n
      current.append(piece)
      current_tokens = total
  if current:
    yield " ".join(current)


# ---------------------------------------------------------------- sources


def read_text_documents(path: str) -> Iterator[str]:
  """Paragraphs (blank-line separated) of a plain text file."""
  paragraph: list[str] = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        paragraph.append(line.rstrip("\n"))
      elif paragraph:
        yield "\n".join(paragraph)
        paragraph = []
  if paragraph:
    yield "\n".join(paragraph)


def _field(obj: Any, dotted: str) -> Any:
  for part in dotted.split("."):
    if not isinstance(obj, dict) or part not in obj:
      return None
    obj = obj[part]
  return obj


def read_jsonl_documents(path: str, text_field: str = "text") -> Iterator[str]:
  """The `text_field` (dotted for nested objects) of every JSONL line."""
  for line_number, obj in iter_json_lines(path):
    text = _field(obj, text_field)
    if not isinstance(text, str):
      raise DataError("missing or non-string text field", path=path,
                      line=line_number, field=text_field, value=text)
    yield text


def read_tfds_documents(name: str, *, split: str = "train",
                        feature: str = "text",
                        data_dir: str | None = None) -> Iterator[str]:
  """A text feature of a TFDS dataset (prepared under `data_dir`)."""
  import tensorflow_datasets as tfds
  dataset = tfds.load(name, split=split, data_dir=data_dir,
                      download=False, shuffle_files=False)
  for example in tfds.as_numpy(dataset):
    if feature not in example:
      raise DataError(f"TFDS dataset {name!r} has no feature {feature!r}; "
                      f"features: {sorted(example)}", field=feature)
    value = example[feature]
    yield value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class Corpus:
  """One input: kind "text" | "jsonl" | "tfds" and where to find it."""
  kind: str
  path: str  # file path, or the TFDS dataset name
  text_field: str = "text"  # jsonl field / tfds feature
  split: str = "train"  # tfds split
  data_dir: str | None = None  # tfds data_dir

  @property
  def source(self) -> str:
    return f"tfds:{self.path}:{self.split}" if self.kind == "tfds" else (
        os.path.basename(self.path))

  def documents(self) -> Iterator[str]:
    if self.kind == "text":
      return read_text_documents(self.path)
    if self.kind == "jsonl":
      return read_jsonl_documents(self.path, self.text_field)
    if self.kind == "tfds":
      return read_tfds_documents(self.path, split=self.split,
                                 feature=self.text_field,
                                 data_dir=self.data_dir)
    raise ValueError(f"unknown corpus kind {self.kind!r} for {self.path!r}; "
                     f"expected text, jsonl or tfds")


def corpus_from_spec(spec: str, *, text_field: str = "text",
                     data_dir: str | None = None) -> Corpus:
  """'tfds:NAME[:SPLIT]', 'jsonl:PATH', 'text:PATH', or a path (by suffix)."""
  kind, sep, rest = spec.partition(":")
  if sep and kind == "tfds":
    name, _, split = rest.partition(":")
    return Corpus("tfds", name, text_field, split or "train", data_dir)
  if sep and kind in ("jsonl", "text"):
    return Corpus(kind, rest, text_field)
  kind = "jsonl" if spec.endswith((".jsonl", ".json")) else "text"
  return Corpus(kind, spec, text_field)


# --------------------------------------------------------------- sampling


@dataclasses.dataclass
class SampleStats:
  documents: int = 0
  passages: int = 0
  duplicates: int = 0
  too_short: int = 0
  sampled: int = 0

  def summary(self) -> str:
    return (f"{self.documents} documents -> {self.passages} passages "
            f"({self.duplicates} duplicates, {self.too_short} too short "
            f"dropped) -> {self.sampled} sampled")


def _rank(seed: int, normalised_text: str) -> bytes:
  return hashlib.sha1(f"{seed}\0{normalised_text}".encode("utf-8")).digest()


def sample_passages(corpora: Sequence[Corpus], *, num_passages: int | None,
                    seed: int = 0, max_tokens: int = PAPER_MAX_TOKENS,
                    min_tokens: int = 1,
                    count_tokens: TokenCounter = whitespace_token_count,
                    stats: SampleStats | None = None,
                    progress: bool = False) -> list[dict[str, str]]:
  """Deduplicated passages: the `num_passages` of smallest seeded rank.

  `num_passages=None` keeps every passage. Returned in corpus order, so a
  sample reads like the corpus it came from.
  """
  from tqdm import tqdm
  stats = stats if stats is not None else SampleStats()
  seen: set[bytes] = set()
  # Max-heap (negated rank) of the best k so far: (neg_rank, order, passage).
  heap: list[tuple[bytes, int, dict]] = []
  kept: list[tuple[int, dict]] = []
  order = 0
  bar = tqdm(desc="passages", unit=" docs", disable=not progress)
  for corpus in corpora:
    for document in corpus.documents():
      stats.documents += 1
      bar.update(1)
      for text in split_passages(document, max_tokens, count_tokens):
        norm = normalise(text)
        digest = hashlib.sha1(norm.encode("utf-8")).digest()
        if digest in seen:
          stats.duplicates += 1
          continue
        seen.add(digest)
        if count_tokens(text) < min_tokens:
          stats.too_short += 1
          continue
        stats.passages += 1
        passage = {"id": passage_id(text), "text": text,
                   "source": corpus.source}
        order += 1
        if num_passages is None:
          kept.append((order, passage))
          continue
        neg_rank = bytes(255 - b for b in _rank(seed, norm))
        if len(heap) < num_passages:
          heapq.heappush(heap, (neg_rank, order, passage))
        elif num_passages and neg_rank > heap[0][0]:
          heapq.heapreplace(heap, (neg_rank, order, passage))
  bar.close()
  if num_passages is not None:
    kept = [(order, passage) for _, order, passage in heap]
  kept.sort(key=lambda item: item[0])
  stats.sampled = len(kept)
  return [passage for _, passage in kept]


def write_passages(passages: Iterable[dict], path: str) -> int:
  """Writes passage JSONL atomically (temp file + rename); returns the count."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  count = 0
  with open(tmp, "w", encoding="utf-8") as f:
    for passage in passages:
      f.write(json.dumps(passage, ensure_ascii=False) + "\n")
      count += 1
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return count


def read_passages(path: str) -> list[dict[str, str]]:
  """Reads passage JSONL; every line needs string "id" and "text"."""
  passages, ids = [], set()
  for line_number, obj in iter_json_lines(path):
    for field in ("id", "text"):
      if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
        raise DataError("missing or non-string field", path=path,
                        line=line_number, field=field, value=obj)
    if obj["id"] in ids:
      raise DataError("duplicate passage id", path=path, line=line_number,
                      field="id", value=obj["id"])
    ids.add(obj["id"])
    obj.setdefault("source", "")
    passages.append(obj)
  return passages
