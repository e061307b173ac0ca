"""The mesh, the logical-axis rules and the shardings they give (8 fake CPU devices)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from models import partitioning
from test_trainer_standin import StandInConfig, StandInModel, random_batch


def test_mesh_has_data_and_model_axes_over_all_devices():
  mesh = partitioning.create_mesh(num_partitions=4)
  assert mesh.axis_names == ("data", "model")
  assert dict(mesh.shape) == {"data": 2, "model": 4}
  assert mesh.devices.size == jax.device_count() == 8


def test_model_parallel_submesh_sets_the_model_axis_like_t5x():
  mesh = partitioning.create_mesh(model_parallel_submesh=(1, 1, 2, 1))
  assert dict(mesh.shape) == {"data": 4, "model": 2}


def test_num_partitions_that_does_not_divide_the_devices_is_an_error():
  with pytest.raises(ValueError, match="num_partitions=3"):
    partitioning.create_mesh(num_partitions=3)


def test_fsdp_rules_shard_params_on_embed_but_activations_on_batch():
  rules = partitioning.standard_logical_axis_rules("fsdp")
  assert nn.logical_to_mesh_axes(("embed", "mlp"), rules) == P("data", "model")
  assert nn.logical_to_mesh_axes(("vocab", "embed"), rules) == P("model", "data")
  assert nn.logical_to_mesh_axes(("batch", "length", "embed"), rules) == P("data", None, None)
  assert nn.logical_to_mesh_axes(("batch", "length", "heads", "kv"), rules) == P(
      "data", None, "model", None)


def test_model_only_rules_replicate_params_across_data():
  rules = partitioning.standard_logical_axis_rules("model_only")
  assert nn.logical_to_mesh_axes(("embed", "mlp"), rules) == P(None, "model")


def test_additional_rules_win_over_the_standard_ones():
  rules = partitioning.standard_logical_axis_rules(
      "model_only", additional_rules=[("mlp", None)])
  assert nn.logical_to_mesh_axes(("embed", "mlp"), rules) == P(None, None)


def test_a_dim_the_mesh_does_not_divide_is_replicated_not_an_error():
  p = partitioning.Partitioner(num_partitions=4)
  # vocab 385 is odd: it cannot be split 4 ways; embed 16 splits 2 ways.
  assert p.logical_to_mesh_spec(("vocab", "embed"), (385, 16)) == P(None, "data")
  assert p.logical_to_mesh_spec(("vocab", "embed"), (384, 16)) == P("model", "data")


def _abstract(config, tx):
  model = StandInModel(config)
  shapes = {k: v.shape for k, v in random_batch().items()}
  boxed = jax.eval_shape(
      lambda rng: model.get_initial_variables(rng, shapes), jax.random.key(0))["params"]
  params = nn.meta.unbox(boxed)
  return boxed, params, jax.eval_shape(tx.init, params)


def test_param_shardings_follow_the_logical_axes():
  p = partitioning.Partitioner(num_partitions=4)
  boxed, _, _ = _abstract(StandInConfig(), optax.adamw(1e-3))
  shardings = p.variables_shardings(boxed)
  assert shardings["wi"].spec == P("data", "model")
  assert shardings["token_embedder"].spec == P("model", "data")
  assert shardings["heads"].spec == P("data", "model", None)
  assert shardings["scale"].spec == P("data")


def test_factored_adafactor_state_is_sharded_like_its_parameter():
  p = partitioning.Partitioner(num_partitions=4)
  tx = optax.adafactor(1e-3, min_dim_size_to_factor=8)
  boxed, params, opt = _abstract(StandInConfig(), tx)
  shardings = p.optimizer_state_shardings(opt, params, p.variables_shardings(boxed))
  flat = {jax.tree_util.keystr(k): s.spec
          for k, s in jax.tree_util.tree_flatten_with_path(shardings)[0]}
  shapes = {jax.tree_util.keystr(k): a.shape
            for k, a in jax.tree_util.tree_flatten_with_path(opt)[0]}
  wi_state = {k: v for k, v in flat.items() if "'wi'" in k}
  # wi is [embed=16 -> data, mlp=32 -> model]; its factored row/col moments
  # keep the axis of the dim they did not reduce.
  specs_by_shape = {shapes[k]: v for k, v in wi_state.items()}
  assert specs_by_shape[(16,)] == P("data")
  assert specs_by_shape[(32,)] == P("model")
  counts = [v for k, v in flat.items() if shapes[k] == ()]
  assert counts and all(v == P() for v in counts)


def test_adamw_moments_are_sharded_exactly_like_params():
  p = partitioning.Partitioner(num_partitions=4)
  boxed, params, opt = _abstract(StandInConfig(), optax.adamw(1e-3))
  param_sh = p.variables_shardings(boxed)
  shardings = p.optimizer_state_shardings(opt, params, param_sh)
  mu = shardings[0].mu
  assert mu["wi"].spec == param_sh["wi"].spec
  assert mu["token_embedder"].spec == param_sh["token_embedder"].spec


def test_shard_batch_makes_global_arrays_split_over_data():
  p = partitioning.Partitioner(num_partitions=4)
  batch = random_batch(batch_size=8)
  sharded = p.shard_batch(batch)
  x = sharded["encoder_input_tokens"]
  assert x.shape == (8, 12) and x.sharding.spec == P("data", None)
  np.testing.assert_array_equal(np.asarray(x), batch["encoder_input_tokens"])
  # Each of the 2 data rows holds half the batch (replicated over model).
  assert {s.data.shape for s in x.addressable_shards} == {(4, 12)}


def test_one_process_reads_the_whole_batch():
  p = partitioning.Partitioner(num_partitions=2)
  info = p.data_shard_info()
  assert (info.index, info.num_shards) == (0, 1)
  assert p.per_process_batch_size(16) == 16


def test_activation_constraints_apply_inside_the_context():
  p = partitioning.Partitioner(num_partitions=4)

  def f(x):
    return nn.with_logical_constraint(x * 2, ("batch", "length", "embed"))

  with p.activation_context():
    y = jax.jit(f)(jnp.ones((8, 4, 16)))
  assert y.sharding.spec[0] == "data" and not any(y.sharding.spec[1:])
