"""Checkpoints with orbax: periodic, asynchronous, atomic, keep-last-N and keep-best.

A checkpoint step directory holds two items:
  state/  the TrainState (step, params, optimizer state), sharded arrays
          written cooperatively by every process (orbax/tensorstore);
  data/   JSON with the data iterator position: batches consumed and the
          dataset seed, so a resumed run replays the exact batch stream.
Orbax writes into a temporary directory and renames it when complete, so a
crash never leaves a half-written checkpoint that looks finished.

`load_initial_params` restores parameters from INITIAL_CHECKPOINT_PATH, which
may be one of ours, a T5X checkpoint or a Hugging Face model folder.
"""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
from typing import Any, Mapping

from absl import logging
from etils import epath  # orbax's path library: local and gs:// alike
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

STATE_ITEM = "state"
DATA_ITEM = "data"


@dataclasses.dataclass
class SaveCheckpointConfig:
  """How often and how many (T5X's `utils.SaveCheckpointConfig`).

  Attributes:
    period: save every `period` steps (CHECKPOINT_PERIOD); the last step is
      always saved.
    keep: keep the latest `keep` checkpoints (None keeps all).
    keep_best: also keep this many best checkpoints by `best_metric`.
    best_metric: eval metric key ranking checkpoints, e.g. "average/f1".
    best_mode: "max" or "min".
    async_save: write in a background thread while training continues.
  """
  period: int = 1000
  keep: int | None = 3
  keep_best: int | None = None
  best_metric: str | None = None
  best_mode: str = "max"
  async_save: bool = True


@dataclasses.dataclass
class RestoreCheckpointConfig:
  """Where a run starts from when MODEL_DIR holds no checkpoint yet.

  Attributes:
    path: INITIAL_CHECKPOINT_PATH: one of ours (a run dir or a step dir), a
      T5X checkpoint (`checkpoint_<step>` dir or its `checkpoint` file) or a
      Hugging Face model folder (config.json + safetensors/bin). None: init.
    strict: every parameter must be found with the right shape.
  """
  path: str | None = None
  strict: bool = True


@dataclasses.dataclass
class CheckpointConfig:
  save: SaveCheckpointConfig | None = dataclasses.field(default_factory=SaveCheckpointConfig)
  restore: RestoreCheckpointConfig | None = None


class CheckpointError(ValueError):
  """A checkpoint path that cannot be read, with what was looked for."""


class CheckpointManager:
  """Our run's checkpoints under `<model_dir>/checkpoints`."""

  def __init__(self, model_dir: str, config: SaveCheckpointConfig | None = None):
    self.config = config or SaveCheckpointConfig()
    self.directory = os.path.join(model_dir, "checkpoints")
    policies: list[Any] = [checkpoint_managers.LatestN(n=self.config.keep)]
    if self.config.keep_best and self.config.best_metric:
      metric = self.config.best_metric
      policies.append(checkpoint_managers.BestN(
          get_metric_fn=lambda m: m[metric], reverse=False if self.config.best_mode == "max" else True,
          n=self.config.keep_best, keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=max(int(self.config.period), 1),
        enable_async_checkpointing=self.config.async_save,
        preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
        create=True)
    self._manager = ocp.CheckpointManager(
        self.directory, item_names=(STATE_ITEM, DATA_ITEM), options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: Any, data_state: Mapping[str, Any], *,
           step: int | None = None, metrics: Mapping[str, float] | None = None,
           force: bool = False) -> bool:
    """Saves if the period says so (or `force`); returns whether it started."""
    step = int(jax.device_get(state.step)) if step is None else int(step)
    if step in self._manager.all_steps():
      return False
    saved = self._manager.save(
        step,
        args=ocp.args.Composite(**{
            STATE_ITEM: ocp.args.StandardSave(state),
            DATA_ITEM: ocp.args.JsonSave(dict(data_state))}),
        metrics=dict(metrics) if metrics else None, force=force)
    if saved:
      logging.info("Checkpoint save started at step %d in %s", step, self.directory)
    return saved

  def restore(self, abstract_state: Any, step: int | None = None
              ) -> tuple[Any, dict[str, Any]]:
    """(state placed by the abstract state's shardings, data iterator state)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint found in {self.directory}")
    restored = self._manager.restore(step, args=ocp.args.Composite(**{
        STATE_ITEM: ocp.args.StandardRestore(abstract_state),
        DATA_ITEM: ocp.args.JsonRestore()}))
    logging.info("Restored step %d from %s", step, self.directory)
    return restored[STATE_ITEM], dict(restored[DATA_ITEM] or {})

  def should_save(self, step: int) -> bool:
    return self._manager.should_save(step)

  def reached_preemption(self, step: int) -> bool:
    return self._manager.reached_preemption(step)

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


# --- preemption ------------------------------------------------------------------
class PreemptionWatcher:
  """Turns SIGTERM (TPU/GPU preemption, `kill`) into a save-and-exit at a step end.

  The handler only sets a flag; the train loop asks `should_stop()` after each
  step, so the state saved is a consistent one. All processes agree: one
  process's signal stops everyone at the same step (a collective save needs
  every process).
  """

  def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
    self._event = threading.Event()
    self._previous = {}
    if threading.current_thread() is threading.main_thread():
      for sig in signals:
        self._previous[sig] = signal.signal(sig, self._handle)

  def _handle(self, signum, frame) -> None:
    logging.warning("Received signal %d: will save a checkpoint and exit.", signum)
    self._event.set()

  def should_stop(self) -> bool:
    local = self._event.is_set()
    if jax.process_count() == 1:
      return local
    flags = multihost_utils.process_allgather(np.array(local, np.int32))
    return bool(np.any(flags))

  def restore_handlers(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}


# --- initial checkpoints (ours, T5X, Hugging Face) -----------------------------------
def checkpoint_kind(path: str) -> str:
  """"ours", "t5x" or "hf", from what the path contains; else CheckpointError."""
  path = path.rstrip("/")
  p = epath.Path(path)
  if not p.exists():
    raise CheckpointError(f"INITIAL_CHECKPOINT_PATH {path!r} does not exist")
  if p.is_dir():
    names = {c.name for c in p.iterdir()}
    if "config.json" in names:
      return "hf"
    if STATE_ITEM in names or "checkpoints" in names or any(
        n.isdigit() and (p / n / STATE_ITEM).exists() for n in names):
      return "ours"
    if "checkpoint" in names or any(re.fullmatch(r"checkpoint_\d+", n) for n in names):
      return "t5x"
    raise CheckpointError(
        f"INITIAL_CHECKPOINT_PATH {path!r} is not a checkpoint this trainer reads: "
        f"expected one of ours ('{STATE_ITEM}/' in a step dir, or a run dir "
        f"with 'checkpoints/'), a T5X checkpoint dir (a 'checkpoint' file) or "
        f"a Hugging Face folder ('config.json' + weights); found {sorted(names)[:12]}")
  if p.name == "checkpoint" or _is_msgpack_map(p):
    return "t5x"  # T5X's legacy single-file (msgpack) checkpoint
  raise CheckpointError(f"INITIAL_CHECKPOINT_PATH {path!r} is a file, not a "
                        f"T5X 'checkpoint' file or a checkpoint directory")


def _is_msgpack_map(p: epath.Path) -> bool:
  with p.open("rb") as f:
    first = f.read(1)
  return bool(first) and (0x80 <= first[0] <= 0x8F or first[0] in (0xDE, 0xDF))


def our_step_dir(path: str) -> str:
  p = epath.Path(path)
  if (p / "checkpoints").exists():
    p = p / "checkpoints"
  if (p / STATE_ITEM).exists():
    return str(p)
  steps = sorted(int(c.name) for c in p.iterdir()
                 if c.name.isdigit() and (c / STATE_ITEM).exists())
  if not steps:
    raise CheckpointError(f"no finished checkpoint step under {path!r}")
  return str(p / str(steps[-1]))


def _flatten(tree: Any) -> dict[str, Any]:
  return {"/".join(_key_name(k) for k in path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _key_name(entry: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def check_params_match(found: Mapping[str, Any], abstract_params: Any, source: str,
                       strict: bool = True) -> None:
  """Raises CheckpointError listing missing, unexpected and misshapen params."""
  want = {k: tuple(v.shape) for k, v in _flatten(abstract_params).items()}
  have = {k: tuple(np.shape(v)) for k, v in _flatten(found).items()}
  missing = sorted(set(want) - set(have))
  extra = sorted(set(have) - set(want))
  wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
  if missing or wrong or (strict and extra):
    lines = [f"checkpoint {source!r} does not match the model:"]
    lines += [f"  missing {k} (expected shape {want[k]})" for k in missing[:10]]
    lines += [f"  shape of {k}: expected {want[k]}, found {have[k]}" for k in wrong[:10]]
    if strict:
      lines += [f"  unexpected {k} {have[k]}" for k in extra[:10]]
    raise CheckpointError("\n".join(lines))


def _place(found: Any, abstract_params: Any, shardings: Any) -> Any:
  """Numpy params in the model's tree structure -> sharded jax arrays."""
  flat = _flatten(found)
  keys = list(_flatten(abstract_params))
  leaves = [np.asarray(flat[k]).astype(a.dtype) for k, a in
            zip(keys, jax.tree.leaves(abstract_params))]
  tree = jax.tree.unflatten(jax.tree.structure(abstract_params), leaves)
  return jax.tree.map(
      lambda x, s: jax.make_array_from_callback(x.shape, s, lambda i: x[i]),
      tree, shardings)


def load_initial_params(path: str, abstract_params: Any, shardings: Any,
                        strict: bool = True) -> Any:
  """Params from INITIAL_CHECKPOINT_PATH, checked and sharded like the model's.

  The optimizer state starts fresh, as when T5X fine-tunes from a pretrained
  checkpoint with a new optimizer.
  """
  kind = checkpoint_kind(path)
  logging.info("Loading initial params (%s checkpoint) from %s", kind, path)
  if kind == "ours":
    step_dir = our_step_dir(path)
    abstract = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
        abstract_params, shardings)
    restored = ocp.PyTreeCheckpointer().restore(
        os.path.join(step_dir, STATE_ITEM),
        args=ocp.args.PyTreeRestore(
            item={"params": abstract},
            restore_args=jax.tree.map(
                lambda s: ocp.ArrayRestoreArgs(sharding=s), {"params": shardings}),
            partial_restore=True))
    check_params_match(restored["params"], abstract_params, path, strict)
    return restored["params"]
  from models import t5x_checkpoints
  if kind == "t5x":
    found = t5x_checkpoints.load_t5x_checkpoint(path)
  else:
    from models import hf_checkpoints
    _, found = hf_checkpoints.load_hf_checkpoint(path)
  try:  # names, shapes, dtypes; stacks layers for a scanned model
    found = t5x_checkpoints.restore_into(abstract_params, found)
  except ValueError as e:
    raise CheckpointError(f"{kind} checkpoint {path!r}: {e}") from e
  check_params_match(found, abstract_params, path, strict)
  return _place(found, abstract_params, shardings)
