"""Import T5X checkpoints: legacy msgpack files and the tensorstore directory layout.

Two layouts exist in the wild:
- legacy: one msgpack file holding `{"version", "optimizer": {"target": params,
  "state": ...}}` (flax.serialization); e.g. T5X's test_t5_tiny.checkpoint_0.
- directory (public T5X checkpoints, e.g. gs://t5-data/pretrained_models/t5x/...):
  `<dir>/checkpoint_<step>/checkpoint` is a msgpack index whose leaves are
  either small arrays inline or a tensorstore spec (`{"driver": "zarr",
  "kvstore": {"path": "target.encoder.layers_0.attention.query.kernel"}}`)
  pointing to a zarr array beside it. Local paths and gs:// (tensorstore's gcs
  kvstore) both work.

Only the params ("target") are imported; optimizer state is ignored.

  params = load_t5x_checkpoint("gs://t5-data/pretrained_models/t5x/flan_t5_small/checkpoint_1198000")
  params = restore_into(model_params_template, params)  # validates names and shapes
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

import jax
import numpy as np
from flax import serialization, traverse_util

PyTree = Any
CHECKPOINT_FILE = "checkpoint"


class CheckpointMismatchError(ValueError):
  """A checkpoint does not fit the model: lists missing, unexpected and mis-shaped params."""


def _is_gcs(path: str) -> bool:
  return path.startswith("gs://")


def _read_bytes(path: str) -> bytes:
  if _is_gcs(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.io.gfile.GFile(path, "rb") as f:
      return f.read()
  with open(path, "rb") as f:
    return f.read()


def _isdir(path: str) -> bool:
  if _is_gcs(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def _latest_step_dir(path: str) -> str:
  """`<model_dir>` -> its newest `checkpoint_<step>`; a step dir is returned as is."""
  if _is_gcs(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(path)]
  else:
    names = os.listdir(path)
  if CHECKPOINT_FILE in names:
    return path
  steps = sorted(int(m.group(1)) for n in names if (m := re.fullmatch(r"checkpoint_(\d+)", n)))
  if not steps:
    raise FileNotFoundError(f"{path}: neither a '{CHECKPOINT_FILE}' file nor checkpoint_<step> dirs")
  return f"{path.rstrip('/')}/checkpoint_{steps[-1]}"


def _kvstore(base_dir: str, relative: str) -> dict:
  full = f"{base_dir.rstrip('/')}/{relative}"
  if _is_gcs(full):
    bucket, _, inner = full[len("gs://"):].partition("/")
    return {"driver": "gcs", "bucket": bucket, "path": inner}
  return {"driver": "file", "path": full}


def _is_tensorstore_spec(leaf: Any) -> bool:
  return isinstance(leaf, dict) and "driver" in leaf and "kvstore" in leaf


def _read_tensorstore(spec: Mapping[str, Any], base_dir: str) -> np.ndarray:
  import tensorstore as ts  # pylint: disable=g-import-not-at-top
  spec = dict(spec)
  kvstore = spec["kvstore"]
  # T5X writes paths relative to the step directory; resolve them against where we read.
  relative = kvstore["path"] if isinstance(kvstore, dict) else kvstore
  spec["kvstore"] = _kvstore(base_dir, relative)
  spec.pop("base_path", None)
  return ts.open(spec, open=True, read=True).result().read().result()


def _unflatten_index(tree: Any) -> Any:
  """The directory index stores tensorstore specs as dicts: keep them as leaves."""
  if _is_tensorstore_spec(tree) or not isinstance(tree, dict):
    return tree
  return {k: _unflatten_index(v) for k, v in tree.items()}


def load_t5x_checkpoint(path: str) -> PyTree:
  """Params ({"token_embedder": ..., "encoder": ..., "decoder": ...}) as numpy arrays.

  `path`: a legacy msgpack file, a `checkpoint_<step>` directory, or a model
  directory (its newest step is used); local or gs://.
  """
  if _isdir(path):
    step_dir = _latest_step_dir(path)
    index_path = f"{step_dir.rstrip('/')}/{CHECKPOINT_FILE}"
    # flax's msgpack decodes inline ndarray leaves; tensorstore specs stay dicts.
    state = serialization.msgpack_restore(_read_bytes(index_path))
    target = _target(state, index_path)
    return jax.tree_util.tree_map(
        lambda leaf: _read_tensorstore(leaf, step_dir) if _is_tensorstore_spec(leaf) else np.asarray(leaf),
        _unflatten_index(target), is_leaf=_is_tensorstore_spec)
  state = serialization.msgpack_restore(_read_bytes(path))
  return jax.tree_util.tree_map(np.asarray, _target(state, path))


def _target(state: Mapping[str, Any], path: str) -> PyTree:
  """The params subtree: `optimizer/target` (T5X) or `target` (train-state dicts)."""
  if isinstance(state.get("optimizer"), dict) and "target" in state["optimizer"]:
    return state["optimizer"]["target"]
  if "target" in state:
    return state["target"]
  raise ValueError(f"{path}: not a T5X checkpoint (no optimizer/target); top-level keys {sorted(state)}")


def _flat(tree: PyTree) -> dict[str, Any]:
  return traverse_util.flatten_dict(dict(tree), sep="/") if tree else {}


def check_compatible(template: PyTree, loaded: PyTree, max_listed: int = 10) -> None:
  """Raises CheckpointMismatchError naming the first mismatching paths and shapes."""
  expected = {k: tuple(np.shape(v)) for k, v in _flat(template).items()}
  found = {k: tuple(np.shape(v)) for k, v in _flat(loaded).items()}
  problems = [f"missing in checkpoint: {k} (expected shape {expected[k]})" for k in sorted(expected) if k not in found]
  problems += [f"shape mismatch: {k}: expected {expected[k]}, found {found[k]}"
               for k in sorted(expected) if k in found and expected[k] != found[k]]
  problems += [f"unexpected in checkpoint: {k} (shape {found[k]})" for k in sorted(found) if k not in expected]
  if problems:
    shown = "\n  ".join(problems[:max_listed])
    more = f"\n  ... and {len(problems) - max_listed} more" if len(problems) > max_listed else ""
    raise CheckpointMismatchError(f"checkpoint does not match the model ({len(problems)} problems):\n  {shown}{more}")


def restore_into(params_template: PyTree, loaded: PyTree) -> PyTree:
  """`loaded` cast to the template's dtypes after checking names and shapes.

  The template may hold arrays, jax.ShapeDtypeStruct (from jax.eval_shape) or
  flax's boxed params; scanned templates (`encoder/layers`) get the loaded
  unscanned layers stacked.
  """
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  template = nn.unbox(params_template)
  if "layers" in template.get("encoder", {}) and "layers_0" in loaded.get("encoder", {}):
    loaded = _stack_like(template, loaded)
  check_compatible(template, loaded)
  flat_template, flat_loaded = _flat(template), _flat(loaded)
  out = {k: np.asarray(flat_loaded[k]).astype(v.dtype) for k, v in flat_template.items()}
  return traverse_util.unflatten_dict(out, sep="/")


def _stack_like(template: PyTree, loaded: PyTree) -> PyTree:
  out = dict(loaded)
  for stack in ("encoder", "decoder"):
    count = jax.tree_util.tree_leaves(template[stack]["layers"])[0].shape[0]
    tree = dict(loaded[stack])
    layers = [tree.pop(f"layers_{i}") for i in range(count) if f"layers_{i}" in tree]
    if len(layers) == count:
      tree["layers"] = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *layers)
    out[stack] = tree
  return out
