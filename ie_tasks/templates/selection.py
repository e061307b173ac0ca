"""Deterministic per-example choices, stable across runs, processes and hosts.

Python's `hash()` is salted per process, so choices are derived from sha256 of
(seed, salt, example id) instead.
"""
from __future__ import annotations

import hashlib
import random


def stable_int(*parts: object) -> int:
  """A 64-bit integer that depends only on the given parts."""
  key = "\x1f".join(str(p) for p in parts).encode("utf-8")
  return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def choose_index(n: int, *parts: object) -> int:
  """An index in [0, n) chosen from the parts (e.g. seed, task, example id)."""
  if n <= 0:
    raise ValueError(f"cannot choose from {n} options")
  return stable_int(*parts) % n


def rng_for(*parts: object) -> random.Random:
  """A private random generator seeded from the parts."""
  return random.Random(stable_int(*parts))
