"""Parses a teacher's open-type NER answer into (entity, type) pairs; never raises.

The UniversalNER prompt asks for `[("entity 1", "type of entity 1"), ...]`;
real answers drift from that: JSON lists of lists, Python tuple lists,
single quotes, escaped quotes, an apostrophe inside a single-quoted string
(`'McDonald's'`), code fences, a sentence before or after the list, a list
cut off by the token limit, or dict-style answers (`{"person": ["Ann"]}`,
`[{"entity": "Ann", "type": "person"}]`, `{"Ann": "person"}`).

`parse_answer(text)` first tries strict JSON, then Python literal syntax, on
the bracketed part of the answer; when both fail, a tolerant scanner reads
the answer token by token and keeps every COMPLETE pair (a truncated answer
loses only its unfinished last pair). The result says how the answer was
recovered (`notes`) and how many items could not be used (`bad_items`), so
the cleaning report can count them.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Any

# A fenced block: ```json ... ``` (the closing fence may be missing).
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_ENTITY_KEYS = ("entity", "name", "text", "span", "mention", "entity_name",
                "value", "word")
_TYPE_KEYS = ("type", "label", "category", "entity_type", "tag", "class",
              "kind")
_NONE_ANSWERS = {"", "none", "none.", "n/a", "no entities", "null", "[]",
                 "no named entities", "there are no named entities."}


@dataclasses.dataclass
class ParsedAnswer:
  """pairs: (entity, type) strings, in answer order (not yet cleaned).

  ok: False when no list of pairs could be found at all (the answer is
    unusable; counted as `unparsable`, not as a passage without entities).
  notes: how the answer was recovered, e.g. "code_fence", "surrounding_text",
    "python_syntax", "tolerant_scan", "truncated", "dict_answer".
  bad_items: list items that are not an (entity, type) pair.
  """
  pairs: list[tuple[str, str]]
  ok: bool = True
  notes: list[str] = dataclasses.field(default_factory=list)
  bad_items: int = 0


class _Incomplete(Exception):
  """The answer ended inside a value; `partial` holds what was complete."""

  def __init__(self, partial: Any = None):
    super().__init__("incomplete")
    self.partial = partial


class _Partial(list):
  """A container cut off by the end of the answer."""


_DELIMS = set("[](){}:,")


class _Scanner:
  """Tolerant recursive-descent reader of JSON/Python-ish literals."""

  def __init__(self, text: str):
    self.text, self.pos = text, 0

  def _skip_space(self) -> None:
    while self.pos < len(self.text) and self.text[self.pos].isspace():
      self.pos += 1

  def _peek(self) -> str | None:
    self._skip_space()
    return self.text[self.pos] if self.pos < len(self.text) else None

  def value(self) -> Any:
    char = self._peek()
    if char is None:
      raise _Incomplete()
    if char in "[(":
      return self._sequence("]" if char == "[" else ")")
    if char == "{":
      return self._mapping()
    if char in "\"'":
      return self._string(char)
    return self._bare_word()

  def _sequence(self, close: str) -> list:
    self.pos += 1
    items: list = []
    while True:
      char = self._peek()
      if char is None:
        raise _Incomplete(_Partial(items))
      if char in ")]":  # also accepts a mismatched closer
        self.pos += 1
        return items
      if char == ",":
        self.pos += 1
        continue
      try:
        items.append(self.value())
      except _Incomplete as e:
        if isinstance(e.partial, _Partial):
          items.append(e.partial)
        raise _Incomplete(_Partial(items)) from None

  def _mapping(self) -> dict:
    self.pos += 1
    result: dict = {}
    while True:
      char = self._peek()
      if char is None:
        raise _Incomplete(_Partial([result]))
      if char in "}]":
        self.pos += 1
        return result
      if char == ",":
        self.pos += 1
        continue
      try:
        key = self.value()
        if self._peek() != ":":
          # Not a mapping after all (e.g. a set literal): skip the item.
          continue
        self.pos += 1
        value = self.value()
      except _Incomplete as e:
        if isinstance(e.partial, _Partial) and "key" in locals():
          result[_text(key)] = e.partial
        raise _Incomplete(_Partial([result])) from None
      result[_text(key)] = value
      del key

  def _string(self, quote: str) -> str:
    """A quoted string; a quote closes it only when a delimiter follows, so
    `'McDonald's'` keeps its apostrophe."""
    self.pos += 1
    chars: list[str] = []
    while self.pos < len(self.text):
      char = self.text[self.pos]
      if char == "\\" and self.pos + 1 < len(self.text):
        chars.append(_unescape(self.text[self.pos:self.pos + 6]))
        self.pos += _escape_length(self.text, self.pos)
        continue
      if char == quote:
        rest = self.text[self.pos + 1:].lstrip()
        if not rest or rest[0] in _DELIMS:
          self.pos += 1
          return "".join(chars)
      chars.append(char)
      self.pos += 1
    raise _Incomplete()

  def _bare_word(self) -> str:
    start = self.pos
    while self.pos < len(self.text) and self.text[self.pos] not in _DELIMS:
      self.pos += 1
    if self.pos >= len(self.text):
      raise _Incomplete()  # a bare word that runs to the end may be cut
    return self.text[start:self.pos].strip()


def _escape_length(text: str, pos: int) -> int:
  return 6 if text[pos + 1] == "u" and re.fullmatch(
      r"\\u[0-9a-fA-F]{4}", text[pos:pos + 6]) else 2


def _unescape(escape: str) -> str:
  if re.fullmatch(r"\\u[0-9a-fA-F]{4}", escape[:6]):
    return chr(int(escape[2:6], 16))
  char = escape[1]
  return {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(char, char)


def _text(value: Any) -> str:
  if isinstance(value, str):
    return value
  return json.dumps(value, ensure_ascii=False)


def _strict(body: str) -> tuple[Any, str] | None:
  """(value, note) from strict JSON or Python literal syntax, else None."""
  try:
    value, end = json.JSONDecoder().raw_decode(body)
    return value, ("surrounding_text" if body[end:].strip() else "")
  except ValueError:
    pass
  for end in _closing_positions(body):
    try:
      value = ast.literal_eval(body[:end + 1])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
      continue
    note = "python_syntax"
    return value, note if not body[end + 1:].strip() else note + "+surrounding_text"
  return None


def _closing_positions(body: str) -> list[int]:
  """Candidate ends of the literal: the last few closing brackets, last first."""
  closer = "]" if body[0] == "[" else "}" if body[0] == "{" else ")"
  positions = [m.start() for m in re.finditer(re.escape(closer), body)]
  return positions[::-1][:4]


def _candidates(text: str) -> list[int]:
  """Starts worth trying: every '[' / '{' (first first), then the first '('."""
  starts = [m.start() for m in re.finditer(r"[\[{]", text)][:8]
  paren = text.find("(")
  if paren >= 0:
    starts.append(paren)
  return starts


def parse_answer(text: Any) -> ParsedAnswer:
  """The (entity, type) pairs of one teacher answer; see the module doc."""
  if not isinstance(text, str):
    return ParsedAnswer([], ok=False, notes=["not_a_string"])
  notes: list[str] = []
  body = text.strip()
  fence = _FENCE.search(body)
  if fence:
    body = fence.group(1).strip()
    notes.append("code_fence")
  if body.lower() in _NONE_ANSWERS:
    return ParsedAnswer([], ok=True, notes=notes)
  best: ParsedAnswer | None = None
  for start in _candidates(body):
    candidate = _parse_from(body[start:], list(notes))
    if start > 0 and body[:start].strip():
      candidate.notes.append("surrounding_text")
    if candidate.ok and (candidate.pairs or best is None):
      if candidate.pairs:
        return _dedupe_notes(candidate)
      best = candidate  # '[]': keep looking for a later, non-empty list
    elif best is None and candidate.pairs:
      best = candidate
  if best is not None:
    return _dedupe_notes(best)
  return ParsedAnswer([], ok=False, notes=notes + ["no_list"])


def _dedupe_notes(parsed: ParsedAnswer) -> ParsedAnswer:
  parsed.notes = [n for n in dict.fromkeys(
      part for note in parsed.notes for part in note.split("+")) if n]
  return parsed


def _parse_from(body: str, notes: list[str]) -> ParsedAnswer:
  strict = _strict(body)
  if strict is not None:
    value, note = strict
    notes.append(note)
    truncated = False
  else:
    notes.append("tolerant_scan")
    scanner = _Scanner(body)
    truncated = False
    try:
      value = scanner.value()
    except _Incomplete as e:
      value, truncated = e.partial, True
    except RecursionError:
      return ParsedAnswer([], ok=False, notes=notes + ["too_deep"])
    if body[0] == "(" and isinstance(value, list) and value and not any(
        isinstance(v, (list, tuple, dict)) for v in value):
      # `("a", "person"), ("b", "org")` without brackets: read them all.
      try:
        value = _Scanner("[" + body + "]").value()
      except _Incomplete as e:
        value, truncated = e.partial, True
  if truncated:
    notes.append("truncated")
  if value is None:
    return ParsedAnswer([], ok=False, notes=notes)
  pairs, bad, shape_ok = _pairs(value, notes)
  return ParsedAnswer(pairs, ok=shape_ok, notes=notes, bad_items=bad)


def _pairs(value: Any, notes: list[str]) -> tuple[list[tuple[str, str]], int, bool]:
  """(pairs, bad item count, whether the value has an answer's shape)."""
  if isinstance(value, dict):
    notes.append("dict_answer")
    return _pairs_from_dict(value, notes)
  if not isinstance(value, (list, tuple)):
    return [], 0, False
  if len(value) == 2 and all(isinstance(v, str) for v in value) and (
      not isinstance(value, _Partial)) and isinstance(value, tuple):
    return [(value[0], value[1])], 0, True  # a single bare pair
  pairs: list[tuple[str, str]] = []
  bad = 0
  for item in value:
    if isinstance(item, _Partial):
      continue  # the unfinished last item of a truncated answer
    pair = _pair(item)
    if pair is not None:
      pairs.append(pair)
    elif isinstance(item, dict):
      more, more_bad, _ = _pairs_from_dict(item, notes)
      pairs.extend(more)
      bad += more_bad
    else:
      bad += 1
  return pairs, bad, True


def _pair(item: Any) -> tuple[str, str] | None:
  if isinstance(item, (list, tuple)) and len(item) == 2 and all(
      isinstance(v, (str, int, float)) and not isinstance(v, bool)
      for v in item):
    return _text(item[0]), _text(item[1])
  if isinstance(item, dict):
    lowered = {str(k).lower(): v for k, v in item.items()}
    entity = next((lowered[k] for k in _ENTITY_KEYS if k in lowered), None)
    etype = next((lowered[k] for k in _TYPE_KEYS if k in lowered), None)
    if isinstance(entity, (str, int, float)) and isinstance(etype, str):
      return _text(entity), etype
  return None


def _pairs_from_dict(value: dict, notes: list[str]
                     ) -> tuple[list[tuple[str, str]], int, bool]:
  """{"entities": [...]}, {type: [entities]}, {entity: type} or one pair dict."""
  single = _pair(value)
  if single is not None:
    return [single], 0, True
  if len(value) == 1:
    (key, inner), = value.items()
    if str(key).lower() in ("entities", "named_entities", "named entities",
                            "answer", "result", "results", "output"):
      return _pairs(inner, notes)
  pairs: list[tuple[str, str]] = []
  bad = 0
  for key, inner in value.items():
    if isinstance(inner, _Partial):
      inner = list(inner)
    if isinstance(inner, (list, tuple)):  # {type: [entity, ...]}
      for entity in inner:
        if isinstance(entity, (str, int, float)) and not isinstance(entity,
                                                                    bool):
          pairs.append((_text(entity), key))
        else:
          bad += 1
    elif isinstance(inner, str):  # {entity: type}
      pairs.append((key, inner))
    else:
      bad += 1
  return pairs, bad, True
