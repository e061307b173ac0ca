"""ReadStats: what a reader read, skipped, repaired and noticed, by reason."""
from __future__ import annotations

import collections
import dataclasses

from ie_tasks.records import DataError

_EXAMPLES_PER_REASON = 3


@dataclasses.dataclass
class ReadStats:
  """Counters a reader fills in; pass one in to see what happened to the data.

  `skipped` counts records dropped under `skip_invalid=True`, `repaired` counts
  fixes a reader applied on purpose (e.g. shifted CASIE offsets), and `notes`
  counts things worth knowing that are not errors (answers not found in the
  passage, arguments outside their trigger's sentence, ...).
  """
  read: int = 0
  skipped: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  repaired: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  notes: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

  def skip(self, reason: str, message: str = "") -> None:
    self.skipped[reason] += 1
    self._example(reason, message)

  def repair(self, reason: str, message: str = "") -> None:
    self.repaired[reason] += 1
    self._example(reason, message)

  def note(self, reason: str, count: int = 1) -> None:
    self.notes[reason] += count

  def _example(self, reason: str, message: str) -> None:
    if message:
      kept = self.examples.setdefault(reason, [])
      if len(kept) < _EXAMPLES_PER_REASON:
        kept.append(message)

  @property
  def num_skipped(self) -> int:
    return sum(self.skipped.values())

  def summary(self) -> str:
    """One line per counter, e.g. for a prepare command's log."""
    lines = [f"read {self.read} records, skipped {self.num_skipped}"]
    for title, counter in (("skipped", self.skipped),
                           ("repaired", self.repaired), ("noted", self.notes)):
      for reason, n in sorted(counter.items()):
        lines.append(f"  {title} {reason}: {n}")
        if title != "noted":
          lines.extend(f"    e.g. {example}"
                       for example in self.examples.get(reason, ()))
    return "\n".join(lines)


def skip_or_raise(error: DataError, *, reason: str, skip_invalid: bool,
                  stats: ReadStats | None) -> None:
  """Raises `error`, or counts it under `reason` when skipping is allowed."""
  if not skip_invalid:
    raise error
  if stats is not None:
    stats.skip(reason, str(error))
