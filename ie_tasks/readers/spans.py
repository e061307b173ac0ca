"""Small helpers for turning tokens and strings into char offsets."""
from __future__ import annotations

from typing import Sequence


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
  """Joins tokens with single spaces; returns the text and each token's span."""
  offsets, position = [], 0
  for token in tokens:
    offsets.append((position, position + len(token)))
    position += len(token) + 1
  return " ".join(tokens), offsets


def _is_word_char(char: str) -> bool:
  return char.isalnum() or char == "_"


def find_occurrences(text: str, span: str, *,
                     whole_words: bool = True) -> list[tuple[int, int]]:
  """Every non-overlapping occurrence of `span` in `text`.

  With `whole_words`, an occurrence whose first/last char is a letter or digit
  must not continue a word of the text ("AI" is not found inside "SAID"),
  which is how a human reads an answer string back into its passage.
  """
  found, start = [], 0
  if not span:
    return found
  while True:
    start = text.find(span, start)
    if start < 0:
      return found
    end = start + len(span)
    left_ok = (start == 0 or not _is_word_char(span[0])
               or not _is_word_char(text[start - 1]))
    right_ok = (end == len(text) or not _is_word_char(span[-1])
                or not _is_word_char(text[end]))
    if not whole_words or (left_ok and right_ok):
      found.append((start, end))
      start = end
    else:
      start += 1


def nearest_occurrence(text: str, span: str, start: int,
                       max_shift: int) -> int | None:
  """The start of the occurrence of `span` nearest to `start`, within max_shift."""
  best = None
  for shift in range(0, max_shift + 1):
    for candidate in (start - shift, start + shift):
      if 0 <= candidate and text.startswith(span, candidate):
        best = candidate
        break
    if best is not None:
      return best
  return None
