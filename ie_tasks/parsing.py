"""Generated text -> structures, for every template format; never raises.

Each parser returns a `ParseResult(items, ok, num_unparsable, num_unknown)`:
`items` are tuples laid out like the templates' gold items (see
`ie_tasks.templates.instructuie.gold_items`); `ok` is False when some piece of
the output did not parse (counted in `num_unparsable`), so a metric can report
how many outputs were malformed. Items are deduplicated in order.

Tolerated: extra spaces, duplicates, "Answer:" echoes, "None"/"[]" answers,
missing ";" separators (when the label set is known, "person: A location: B"
splits at "location:"), the older "," item separator, truncated output (the
complete items before the cut are kept, the cut one is counted), code fences
and single quotes in JSON answers.

Decisions (documented because they change scores):
  * An empty output is unparsable (every target, even an empty one, says
    " None" or "[]"), with no items.
  * Items whose type is not among the options are KEPT and counted in
    `num_unknown`: they are false positives, as in InstructUIE's evaluator,
    which scores every "type: span" it can split.
  * Commas inside spans ("relation: head, tail" with a comma in head or tail,
    ES span lists): the separator the templates write is ", " right after a
    span; commas inside tokenised spans are usually " , " (space before).
    Among the candidate split commas we prefer, in order: (1) splits whose
    both sides occur in the source sentence (when given), (2) commas with no
    space before them, (3) the last such comma (heads like "Washington, D.C."
    are more common than tails with commas in our data).
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Any, Callable, Sequence

NONE_ANSWERS = {"none", "none.", "[]", "no entity", "no entities",
                "no relation", "no relations", "no event", "no events", "n/a"}


@dataclasses.dataclass
class ParseResult:
  items: list[tuple]
  ok: bool = True
  num_unparsable: int = 0  # pieces of the output that could not be read
  num_unknown: int = 0     # items whose type/role/relation is not an option


def _clean(text: Any) -> str:
  if isinstance(text, bytes):
    text = text.decode("utf-8", errors="replace")
  text = str(text)
  if "Answer:" in text:  # a model that echoes the prompt
    text = text.rsplit("Answer:", 1)[1]
  return text.strip()


def _squash(text: str) -> str:
  return " ".join(text.split())


def _is_none(text: str) -> bool:
  return text.strip().strip('"').lower() in NONE_ANSWERS


def _dedup(items: Sequence[tuple]) -> list[tuple]:
  return list(dict.fromkeys(items))


def _canonical(labels: Sequence[str] | None) -> dict[str, str]:
  return {_squash(l).lower(): l for l in labels or ()}


def _label_marker(labels: Sequence[str] | None) -> re.Pattern | None:
  """Matches "<label>:" where a label starts (after start, ';', ',' or space)."""
  if not labels:
    return None
  alternatives = sorted({re.escape(_squash(l)) for l in labels if l.strip()},
                        key=len, reverse=True)
  if not alternatives:
    return None
  return re.compile(r"(?:^|(?<=[\s;,(]))(?:" + "|".join(alternatives) +
                    r")\s*:", re.IGNORECASE)


def _split_at_markers(piece: str, marker: re.Pattern | None) -> list[str]:
  """Splits "a: x b: y" at label markers; text before the first stays."""
  if marker is None:
    return [piece]
  starts = [m.start() for m in marker.finditer(piece)]
  if not starts:
    return [piece]
  bounds = ([0] if starts[0] > 0 else []) + starts + [len(piece)]
  pieces = [piece[a:b] for a, b in zip(bounds, bounds[1:])]
  # "type: a, type: b" (older InstructUIE targets): the comma before a marker
  # separates items; a comma ending the last piece may belong to the span.
  return [_drop_one_comma(p) for p in pieces[:-1]] + pieces[-1:]


def _drop_one_comma(text: str) -> str:
  """Removes the one separator comma at the end (a span may end in ',')."""
  text = text.rstrip()
  return text[:-1] if text.endswith(",") else text


def _strip_piece(text: str) -> str:
  return text.strip().strip(";").strip()


def _pieces(text: str, labels: Sequence[str] | None) -> list[str]:
  """Splits an output into "key: value" pieces (';' and label markers)."""
  marker = _label_marker(labels)
  pieces = []
  for chunk in text.split(";"):
    for piece in _split_at_markers(chunk, marker):
      piece = _strip_piece(piece)
      if piece:
        pieces.append(piece)
  return pieces


def _key_value(piece: str) -> tuple[str, str] | None:
  if ":" not in piece:
    return None
  key, value = piece.split(":", 1)
  key, value = _squash(key), _strip_piece(value)
  if not key or not value:
    return None
  return key, value


def _known(key: str, canonical: dict[str, str]) -> tuple[str, bool]:
  """The label in its option spelling, and whether it is an option."""
  if not canonical:
    return key, True
  found = canonical.get(key.lower())
  return (found, True) if found is not None else (key, False)


def parse_typed_spans(text: Any, labels: Sequence[str] | None = None
                      ) -> ParseResult:
  """ " type: span; type: span" (NER, ET, EET, EEA) -> [(type, span)]."""
  text = _clean(text)
  if not text:
    return ParseResult([], ok=False, num_unparsable=1)
  if _is_none(text):
    return ParseResult([])
  canonical = _canonical(labels)
  items, bad, unknown = [], 0, 0
  for piece in _pieces(text, labels):
    kv = _key_value(piece)
    if kv is None:
      bad += 1
      continue
    key, known = _known(kv[0], canonical)
    unknown += not known
    items.append((key, kv[1]))
  return ParseResult(_dedup(items), ok=bad == 0, num_unparsable=bad,
                     num_unknown=unknown)


parse_ner_output = parse_typed_spans


def _occurs(part: str, sentence: str) -> bool:
  return _squash(part).lower() in _squash(sentence).lower()


def split_pair(text: str, sentence: str | None = None
               ) -> tuple[str, str] | None:
  """ "head, tail" -> (head, tail), resolving commas inside spans."""
  commas = [m.start() for m in re.finditer(",", text)]
  candidates = []
  for c in commas:
    head, tail = text[:c].strip(), text[c + 1:].strip()
    if head and tail:
      candidates.append((c, head, tail))
  if not candidates:
    return None
  if sentence:
    found = [x for x in candidates
             if _occurs(x[1], sentence) and _occurs(x[2], sentence)]
    candidates = found or candidates
  tight = [x for x in candidates if x[0] == 0 or not text[x[0] - 1].isspace()]
  candidates = tight or candidates
  _, head, tail = candidates[-1]
  return head, tail


def parse_relation_output(text: Any, labels: Sequence[str] | None = None,
                          sentence: str | None = None) -> ParseResult:
  """ " relation: head, tail; ..." (RE, EPR) -> [(relation, head, tail)]."""
  text = _clean(text)
  if not text:
    return ParseResult([], ok=False, num_unparsable=1)
  if _is_none(text):
    return ParseResult([])
  canonical = _canonical(labels)
  items, bad, unknown = [], 0, 0
  for piece in _pieces(text, labels):
    kv = _key_value(piece)
    pair = split_pair(kv[1], sentence) if kv else None
    if pair is None:
      bad += 1
      continue
    relation, known = _known(kv[0], canonical)
    unknown += not known
    items.append((relation, pair[0], pair[1]))
  return ParseResult(_dedup(items), ok=bad == 0, num_unparsable=bad,
                     num_unknown=unknown)


parse_re_output = parse_relation_output


def parse_pair_output(text: Any, labels: Sequence[str] | None = None,
                      sentence: str | None = None) -> ParseResult:
  """ " head, tail; head, tail" (EP) -> [(head, tail)]."""
  text = _clean(text)
  if not text:
    return ParseResult([], ok=False, num_unparsable=1)
  if _is_none(text):
    return ParseResult([])
  items, bad = [], 0
  for piece in text.split(";"):
    piece = _strip_piece(piece)
    if not piece:
      continue
    pair = split_pair(piece, sentence)
    if pair is None:
      bad += 1
      continue
    items.append(pair)
  return ParseResult(_dedup(items), ok=bad == 0, num_unparsable=bad)


def split_span_list(text: str, sentence: str | None = None) -> list[str]:
  """ "a, b, c" -> spans; with a sentence, rejoins pieces of one span.

  Splits at commas without a space before them (the template's separator),
  then, when the sentence is known, greedily merges neighbouring pieces into
  the longest run that occurs in the sentence.
  """
  pieces = [p.strip() for p in re.split(r"(?<!\s),", text)]
  pieces = [p for p in pieces if p]
  if not sentence:
    return pieces
  spans, i = [], 0
  while i < len(pieces):
    best = i + 1
    for j in range(len(pieces), i + 1, -1):
      if _occurs(", ".join(pieces[i:j]), sentence):
        best = j
        break
    merged = ", ".join(pieces[i:best])
    spans.append(merged if best > i + 1 else pieces[i])
    i = best
  return spans


def parse_span_output(text: Any, labels: Sequence[str] | None = None,
                      sentence: str | None = None) -> ParseResult:
  """ " span, span" (ES) -> [(span,)]."""
  text = _clean(text)
  if not text:
    return ParseResult([], ok=False, num_unparsable=1)
  if _is_none(text):
    return ParseResult([])
  items = [(s,) for s in split_span_list(text.replace(";", ","), sentence)]
  return ParseResult(_dedup(items))


_EVENT_GROUP = re.compile(r"\(([^()]*)\)")


def _event_arguments(body: str, roles: Sequence[str] | None
                     ) -> tuple[list[tuple[str, str]], int]:
  """ "role: arg, role: arg" -> pairs; commas inside arguments are kept."""
  body = body.strip().strip(",").strip()
  if not body or _is_none(body):
    return [], 0
  marker = _label_marker(roles) if roles else re.compile(
      r"(?:^|(?<=,))\s*[^\s,:][^,:]{0,40}:")
  starts = [m.start() for m in marker.finditer(body)]
  if not starts:
    return [], 1
  bad = 1 if _strip_piece(body[:starts[0]]) else 0
  pairs = []
  ends = starts[1:] + [len(body)]
  for k, (a, b) in enumerate(zip(starts, ends)):
    piece = body[a:b] if k == len(starts) - 1 else _drop_one_comma(body[a:b])
    kv = _key_value(piece.strip().lstrip(","))
    if kv is None or _is_none(kv[1]):
      bad += kv is None
      continue
    pairs.append(kv)
  return pairs, bad


def _parse_event(group: str, roles: Sequence[str] | None
                 ) -> tuple[tuple | None, int]:
  head, _, rest = group.partition(",")
  kv = _key_value(head)
  if kv is None:
    return None, 1
  arguments, bad = _event_arguments(rest, roles)
  return (kv[0], kv[1], tuple(_dedup(arguments))), bad


def parse_event_output(text: Any, labels: Sequence[str] | None = None,
                       roles: Sequence[str] | None = None) -> ParseResult:
  """ " ( type: trigger, role: arg, ...) , ( ... ) " (EE)
  -> [(type, trigger, ((role, arg), ...))]. A cut-off last group is parsed if
  its type and trigger are complete, and counted as unparsable."""
  text = _clean(text)
  if not text:
    return ParseResult([], ok=False, num_unparsable=1)
  if _is_none(text):
    return ParseResult([])
  canonical = _canonical(labels)
  items, bad, unknown = [], 0, 0
  groups = _EVENT_GROUP.findall(text)
  tail = text[text.rfind(")") + 1:] if ")" in text else text
  if "(" in tail:  # truncated final event
    bad += 1
    groups.append(tail[tail.rfind("(") + 1:])
  elif not groups:
    bad += 1
  for group in groups:
    event, group_bad = _parse_event(group, roles)
    bad += group_bad
    if event is None:
      continue
    event_type, known = _known(event[0], canonical)
    unknown += not known
    items.append((event_type,) + event[1:])
  return ParseResult(_dedup(items), ok=bad == 0, num_unparsable=bad,
                     num_unknown=unknown)


parse_ee_output = parse_event_output

_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'')


def parse_conversation_output(text: Any) -> ParseResult:
  """A JSON list of spans (UniversalNER) -> [(span,)].

  Tolerates code fences, text around the list, single quotes (Python list
  syntax) and a list cut off by the length limit (complete quoted items are
  recovered, the output is counted as unparsable). Non-string items are
  counted and dropped.
  """
  text = _FENCE.sub("", _clean(text)).strip()
  if not text:
    return ParseResult([], ok=False, num_unparsable=1)
  start = text.find("[")
  if start < 0:
    if _is_none(text):
      return ParseResult([])
    return ParseResult([], ok=False, num_unparsable=1)
  body = text[start:]
  values, ok = None, True
  try:
    values, _ = json.JSONDecoder().raw_decode(body)
  except ValueError:
    end = body.find("]")
    try:
      values = ast.literal_eval(body[:end + 1]) if end >= 0 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
      values = None
  if not isinstance(values, (list, tuple)):
    ok = False  # truncated or broken: keep the complete quoted items
    values = [a or b for a, b in _QUOTED.findall(body)]
    values = [_unescape(v) for v in values]
  items, bad = [], 0 if ok else 1
  for value in values:
    if isinstance(value, str) and value.strip():
      items.append((value.strip(),))
    elif not isinstance(value, str):
      bad += 1
  return ParseResult(_dedup(items), ok=bad == 0, num_unparsable=bad)


def _unescape(value: str) -> str:
  try:
    return json.loads(f'"{value}"')
  except ValueError:
    return value


_PARSERS: dict[str, Callable[..., ParseResult]] = {
    "NER": lambda t, labels, sentence: parse_typed_spans(t, labels),
    "ET": lambda t, labels, sentence: parse_typed_spans(t, labels),
    "EET": lambda t, labels, sentence: parse_typed_spans(t, labels),
    "EEA": lambda t, labels, sentence: parse_typed_spans(t, labels),
    "ES": lambda t, labels, sentence: parse_span_output(t, labels, sentence),
    "RE": parse_relation_output,
    "EPR": parse_relation_output,
    "EP": lambda t, labels, sentence: parse_pair_output(t, labels, sentence),
    "EE": lambda t, labels, sentence: parse_event_output(t, labels),
    "CONV": lambda t, labels, sentence: parse_conversation_output(t),
}


def parse_output(task: str, text: Any, labels: Sequence[str] | None = None,
                 sentence: str | None = None) -> ParseResult:
  """Parses one output of `task` ("NER", "RE", ..., "CONV"); never raises."""
  parser = _PARSERS.get(task)
  if parser is None:
    raise ValueError(f"no parser for task {task!r}; known: {sorted(_PARSERS)}")
  try:
    return parser(text, labels, sentence)
  except Exception:  # a malformed generation is a miss, never a crash
    return ParseResult([], ok=False, num_unparsable=1)


def _field(example: Any, name: str, default: str = "") -> str:
  if example is None:
    return default
  value = example.get(name, default)
  if hasattr(value, "numpy"):
    value = value.numpy()
  if hasattr(value, "item") and getattr(value, "shape", None) == ():
    value = value.item()
  if isinstance(value, bytes):
    value = value.decode("utf-8")
  return str(value)


def _json_field(example: Any, name: str) -> list:
  raw = _field(example, name, "[]") or "[]"
  try:
    return json.loads(raw)
  except ValueError:
    return []


def _to_tuple(value: Any) -> Any:
  if isinstance(value, list):
    return tuple(_to_tuple(v) for v in value)
  return value


def postprocess(output_text: Any, example: Any = None,
                is_target: bool = False) -> dict[str, Any]:
  """A seqio postprocess_fn: text -> {"task", "dataset", "id", "items", ...}.

  Targets take their items from example["gold"] (exact, no parsing); outputs
  are parsed with the example's option labels and sentence. Conversation
  items become (type, span) with the type asked in the example, so one
  entity metric serves both formats. Also returns "parse_ok",
  "num_unparsable" and "num_unknown".
  """
  task = _field(example, "task", "NER")
  labels = _json_field(example, "labels")
  result = {"task": task, "dataset": _field(example, "dataset"),
            "id": _field(example, "id")}
  if is_target:
    items = [_to_tuple(g) for g in _json_field(example, "gold")]
    parsed = ParseResult([tuple(i) if isinstance(i, tuple) else (i,)
                          for i in items])
  else:
    parsed = parse_output(task, output_text, labels,
                          _field(example, "text") or None)
  items = parsed.items
  if task == "CONV":
    asked = labels[0] if labels else ""
    items = [(asked, item[0]) for item in items]
  result.update(items=list(items), parse_ok=parsed.ok,
                num_unparsable=parsed.num_unparsable,
                num_unknown=parsed.num_unknown)
  return result
