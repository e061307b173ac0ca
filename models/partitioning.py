"""Device mesh, logical-axis rules and the shardings of params, optimizer state and batches.

The model names every parameter and activation axis logically (`batch`, `embed`,
`mlp`, `heads`, `kv`, `vocab`, ...); the rules here map those names onto the two
mesh axes `data` and `model`, as T5X's `PjitPartitioner` does. Changing the mesh
or the rules is a gin change; the model never mentions devices.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Iterator, Mapping, Sequence

from absl import logging
import flax.linen as nn
import jax
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np
import seqio

DATA_AXIS = "data"
MODEL_AXIS = "model"
LogicalRules = Sequence[tuple[str, str | tuple[str, ...] | None]]


def standard_logical_axis_rules(
    parameter_partitioning: str = "fsdp",
    additional_rules: LogicalRules = (),
) -> list[tuple[str, Any]]:
  """T5X's standard rules: batch->data, model-parallel dims->model.

  Args:
    parameter_partitioning: "fsdp" also shards every parameter's `embed` axis
      over `data` (ZeRO-3 style, T5X's `parameter_partitioning_dims=2`);
      "model_only" keeps parameters replicated across `data`.
    additional_rules: rules placed first, so they win over the standard ones.

  Rule order matters: flax gives a mesh axis to the first rule that claims it,
  so `batch` comes before `embed` and activations [batch, length, embed] keep
  `data` on the batch while parameters [embed, mlp] put `data` on `embed`.
  """
  if parameter_partitioning not in ("fsdp", "model_only"):
    raise ValueError(f"parameter_partitioning must be 'fsdp' or 'model_only', "
                     f"got {parameter_partitioning!r}")
  rules: list[tuple[str, Any]] = list(additional_rules)
  rules.append(("batch", DATA_AXIS))
  if parameter_partitioning == "fsdp":
    rules.append(("embed", DATA_AXIS))
  rules += [
      ("vocab", MODEL_AXIS),
      ("mlp", MODEL_AXIS),
      ("heads", MODEL_AXIS),
      ("joined_kv", MODEL_AXIS),
      ("embed", None),
      ("kv", None),
      ("length", None),
      ("relpos_buckets", None),
      ("abspos_buckets", None),
      ("layers", None),
      ("stack", None),
      ("mlp_activations", None),
  ]
  return rules


def create_mesh(num_partitions: int = 1,
                model_parallel_submesh: Sequence[int] | None = None,
                devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A (data, model) mesh over all devices of all processes.

  Args:
    num_partitions: size of the `model` axis (model parallelism); the `data`
      axis takes the rest.
    model_parallel_submesh: T5X-style (x, y, z, core) submesh of a TPU slice
      for one model replica; its product is used as `num_partitions`.
    devices: defaults to `jax.devices()` (every process's devices).
  """
  devices = list(devices if devices is not None else jax.devices())
  if model_parallel_submesh:
    num_partitions = int(math.prod(model_parallel_submesh))
  if num_partitions < 1 or len(devices) % num_partitions:
    raise ValueError(f"num_partitions={num_partitions} must divide the number "
                     f"of devices ({len(devices)})")
  shape = (len(devices) // num_partitions, num_partitions)
  if devices[0].platform in ("tpu", "gpu") and len(devices) == jax.device_count():
    try:  # Topology-aware placement keeps the model axis on fast links.
      return Mesh(mesh_utils.create_device_mesh(shape, devices),
                  (DATA_AXIS, MODEL_AXIS))
    except (ValueError, NotImplementedError, AssertionError) as e:
      logging.warning("create_device_mesh failed (%s); using device order.", e)
  # Devices are ordered by process, so the model axis stays within a host
  # whenever num_partitions <= local device count.
  ordered = sorted(devices, key=lambda d: (d.process_index, d.id))
  return Mesh(np.array(ordered, dtype=object).reshape(shape),
              (DATA_AXIS, MODEL_AXIS))


def _axis_size(mesh: Mesh, axes: Any) -> int:
  if axes is None:
    return 1
  if isinstance(axes, str):
    axes = (axes,)
  return int(math.prod(mesh.shape[a] for a in axes))


def fit_spec_to_shape(spec: PartitionSpec, shape: Sequence[int],
                      mesh: Mesh) -> PartitionSpec:
  """Drops mesh axes from dims they do not divide (e.g. an odd vocab size).

  Replicating such a dim costs memory but stays correct; the alternative is a
  crash on a model whose sizes were not chosen for this mesh.
  """
  entries = list(spec) + [None] * (len(shape) - len(spec))
  fitted = []
  for dim, (size, axes) in enumerate(zip(shape, entries)):
    if axes is not None and size % _axis_size(mesh, axes):
      logging.info("dim %d of size %d not divisible by mesh axes %s: replicated",
                   dim, size, axes)
      axes = None
    fitted.append(axes)
  return PartitionSpec(*fitted)


def _is_boxed(x: Any) -> bool:
  return isinstance(x, nn.meta.AxisMetadata)


@dataclasses.dataclass
class Partitioner:
  """Owns the mesh and the logical rules; turns logical axes into shardings.

  Attributes:
    num_partitions: size of the `model` mesh axis.
    model_parallel_submesh: alternative to num_partitions (TPU topology).
    logical_axis_rules: defaults to `standard_logical_axis_rules()`.
  """
  num_partitions: int = 1
  model_parallel_submesh: Sequence[int] | None = None
  logical_axis_rules: LogicalRules | None = None
  devices: Sequence[jax.Device] | None = None

  def __post_init__(self):
    self.mesh = create_mesh(self.num_partitions, self.model_parallel_submesh,
                            self.devices)
    if self.logical_axis_rules is None:
      self.logical_axis_rules = standard_logical_axis_rules()
    self.logical_axis_rules = [tuple(r) for r in self.logical_axis_rules]

  # --- basic shardings -----------------------------------------------------
  def sharding(self, spec: PartitionSpec) -> NamedSharding:
    return NamedSharding(self.mesh, spec)

  @property
  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, PartitionSpec())

  def logical_to_mesh_spec(self, logical_axes: Sequence[str | None],
                           shape: Sequence[int] | None = None) -> PartitionSpec:
    spec = nn.logical_to_mesh_axes(tuple(logical_axes), self.logical_axis_rules)
    if shape is not None:
      spec = fit_spec_to_shape(spec, shape, self.mesh)
    return spec

  def logical_sharding(self, logical_axes: Sequence[str | None],
                       shape: Sequence[int] | None = None) -> NamedSharding:
    return self.sharding(self.logical_to_mesh_spec(logical_axes, shape))

  @contextlib.contextmanager
  def activation_context(self) -> Iterator[None]:
    """Mesh + rules in scope so `nn.with_logical_constraint` takes effect."""
    with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.logical_axis_rules):
      yield

  # --- parameters and optimizer state ---------------------------------------
  def variables_shardings(self, boxed_variables: Any) -> Any:
    """NamedShardings for a (possibly abstract) tree of boxed flax variables.

    Unboxed leaves (no logical axes) are replicated. The result has the
    structure of `nn.meta.unbox(boxed_variables)`.
    """
    def leaf_sharding(leaf):
      if _is_boxed(leaf):
        names = nn.get_partition_spec(leaf)
        value = leaf.unbox()
        return self.logical_sharding(tuple(names), value.shape)
      return self.replicated
    return jax.tree.map(leaf_sharding, boxed_variables, is_leaf=_is_boxed)

  def optimizer_state_shardings(self, abstract_opt_state: Any,
                                abstract_params: Any,
                                params_shardings: Any) -> Any:
    """Shardings for optax state, derived from the parameter each leaf mirrors.

    optax keeps per-parameter state in trees shaped like the params (AdamW's
    mu/nu) or with one axis reduced (Adafactor's factored v_row/v_col). A
    state leaf is matched to its parameter by key-path suffix; a leaf of the
    same shape takes the parameter's spec, a reduced one the spec with the
    reduced dim removed, anything else (counts, placeholders) is replicated.
    """
    param_paths = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(abstract_params)[0]:
      param_paths[_path_key(path)] = leaf
    spec_by_path = {
        _path_key(path): s.spec for path, s in
        jax.tree_util.tree_flatten_with_path(params_shardings)[0]}
    max_len = max((len(k) for k in param_paths), default=0)

    def state_sharding(path, leaf):
      shape = getattr(leaf, "shape", ())
      if not shape or math.prod(shape) <= 1:
        return self.replicated
      key = _path_key(path)
      for n in range(min(len(key), max_len), 0, -1):
        suffix = key[-n:]
        if suffix in param_paths:
          return self.sharding(_derived_spec(
              spec_by_path[suffix], param_paths[suffix].shape, shape))
      return self.replicated

    return jax.tree_util.tree_map_with_path(state_sharding, abstract_opt_state)

  # --- batches and data shards ------------------------------------------------
  def batch_spec(self, ndim: int = 2) -> PartitionSpec:
    return self.logical_to_mesh_spec(("batch",) + (None,) * (ndim - 1))

  def batch_sharding(self, ndim: int = 2) -> NamedSharding:
    return self.sharding(self.batch_spec(ndim))

  def data_shard_info(self) -> seqio.ShardInfo:
    """Which slice of the global batch this process reads.

    Processes whose devices cover the same `data` indices (model parallelism
    across hosts) read the same shard; otherwise each host reads its own.
    """
    return data_shard_info(self.mesh, self.batch_spec())

  def per_process_batch_size(self, global_batch_size: int) -> int:
    num_shards = self.data_shard_info().num_shards
    if global_batch_size % num_shards:
      raise ValueError(f"batch size {global_batch_size} is not divisible by "
                       f"the {num_shards} data shards (hosts)")
    return global_batch_size // num_shards

  def shard_batch(self, local_batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
    """Host-local numpy batch -> global jax.Arrays sharded over `data`."""
    num_shards = self.data_shard_info().num_shards
    out = {}
    for name, value in local_batch.items():
      value = np.asarray(value)
      global_shape = (value.shape[0] * num_shards,) + value.shape[1:]
      out[name] = jax.make_array_from_process_local_data(
          self.batch_sharding(value.ndim), value, global_shape)
    return out


def _path_key(path: Sequence[Any]) -> tuple[str, ...]:
  parts = []
  for entry in path:
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        parts.append(str(getattr(entry, attr)))
        break
    else:
      parts.append(str(entry))
  return tuple(parts)


def _derived_spec(param_spec: PartitionSpec, param_shape: Sequence[int],
                  state_shape: Sequence[int]) -> PartitionSpec:
  entries = list(param_spec) + [None] * (len(param_shape) - len(param_spec))
  if tuple(state_shape) == tuple(param_shape):
    return PartitionSpec(*entries)
  if len(state_shape) == len(param_shape) - 1:
    for removed in range(len(param_shape)):  # the reduced (factored) dim
      kept = [d for i, d in enumerate(param_shape) if i != removed]
      if tuple(kept) == tuple(state_shape):
        return PartitionSpec(*[e for i, e in enumerate(entries) if i != removed])
  return PartitionSpec()


def data_shard_info(mesh: Mesh, batch_spec: PartitionSpec) -> seqio.ShardInfo:
  """seqio.ShardInfo for this process from which batch rows its devices hold."""
  batch_axes = batch_spec[0] if len(batch_spec) else None
  if batch_axes is None:
    return seqio.ShardInfo(index=0, num_shards=1)
  if isinstance(batch_axes, str):
    batch_axes = (batch_axes,)
  axis_ids = [mesh.axis_names.index(a) for a in batch_axes]
  rows_by_process: dict[int, set[int]] = {}
  for idx in np.ndindex(mesh.devices.shape):
    device = mesh.devices[idx]
    row = 0
    for a in axis_ids:  # row-major index over the batch mesh axes
      row = row * mesh.devices.shape[a] + idx[a]
    rows_by_process.setdefault(device.process_index, set()).add(row)
  groups = sorted({tuple(sorted(r)) for r in rows_by_process.values()})
  mine = tuple(sorted(rows_by_process[jax.process_index()]))
  return seqio.ShardInfo(index=groups.index(mine), num_shards=len(groups))
