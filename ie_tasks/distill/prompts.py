"""The UniversalNER teacher prompt: ask for every entity with its type.

The conversation is the one of the UniversalNER paper (Zhou et al., 2023):
the passage in one user turn, a canned assistant turn, then the request for
a list of (entity, type) tuples. Change PROMPT_VERSION whenever the messages
change: it is part of the annotation cache key, so old answers are not reused
for a new prompt.
"""
from __future__ import annotations

import hashlib
import json
from typing import Sequence

PROMPT_VERSION = "universalner-open-ner-v1"

SYSTEM_PROMPT = ("A virtual assistant answers questions from a user based on "
                 "the provided text.")
TEXT_PREFIX = "Text: "
ACKNOWLEDGEMENT = "I've read this text."
INSTRUCTION = ("Please identify all named entities in the text and their "
               "types. Output format is a list of tuples [(\"entity 1\", "
               "\"type of entity 1\"), ...].")


def build_messages(passage: str) -> list[dict[str, str]]:
  """Chat-completions messages asking the teacher to annotate `passage`."""
  return [
      {"role": "system", "content": SYSTEM_PROMPT},
      {"role": "user", "content": TEXT_PREFIX + passage},
      {"role": "assistant", "content": ACKNOWLEDGEMENT},
      {"role": "user", "content": INSTRUCTION},
  ]


def passage_from_messages(messages: Sequence[dict]) -> str | None:
  """The passage of a `build_messages` conversation (its 'Text: ' turn)."""
  for message in messages:
    content = message.get("content") if isinstance(message, dict) else None
    if (isinstance(message, dict) and message.get("role") == "user" and
        isinstance(content, str) and content.startswith(TEXT_PREFIX)):
      return content[len(TEXT_PREFIX):]
  return None


def cache_key(model: str, messages: Sequence[dict],
              prompt_version: str = PROMPT_VERSION) -> str:
  """sha256 over (model, prompt version, messages): one paid answer per key."""
  payload = json.dumps([model, prompt_version, list(messages)],
                       ensure_ascii=False, sort_keys=True,
                       separators=(",", ":"))
  return hashlib.sha256(payload.encode("utf-8")).hexdigest()
