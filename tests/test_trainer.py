"""The sharded train step: same numbers on a 2x4 mesh as on one device; accumulation; metrics."""
from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from models import optimizers, partitioning, trainer as trainer_lib, utils
from test_trainer_standin import StandInConfig, StandInModel, random_batch

SHAPES = {k: v.shape for k, v in random_batch().items()}


def _train(partitioner, optimizer, batches, num_microbatches=1, config=None):
  model = StandInModel(config or StandInConfig())
  trainer = trainer_lib.Trainer(model, optimizer, partitioner, num_microbatches)
  state = trainer.init_state(jax.random.key(0), SHAPES)
  losses = []
  for batch in batches:
    state, metrics = trainer.train_step(state, partitioner.shard_batch(batch),
                                        jax.random.key(1))
    losses.append(float(metrics["train/loss"]))
  return state, losses, metrics


def _assert_same_params(a, b, rtol=2e-5, atol=2e-6):
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0],
                          jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol,
                               err_msg=jax.tree_util.keystr(path))


def test_2x4_mesh_gives_the_single_device_loss_and_params():
  # Factored Adafactor: its row/column moments are sharded too (AdamW's
  # moments, sharded exactly like params, run in the accumulation test).
  optimizer_fn = functools.partial(optimizers.adafactor, min_dim_size_to_factor=8)
  batches = [random_batch(seed=s) for s in range(3)]
  opt = optimizers.create_optimizer(optimizer_fn, learning_rate=1e-2,
                                    grad_clip_norm=1.0)
  one = partitioning.Partitioner(devices=jax.devices()[:1])
  mesh = partitioning.Partitioner(num_partitions=4)
  state1, losses1, _ = _train(one, opt, batches)
  state8, losses8, _ = _train(mesh, opt, batches)
  assert state8.params["wi"].sharding.spec == P("data", "model")
  assert len(state8.params["wi"].addressable_shards) == 8
  np.testing.assert_allclose(losses8, losses1, rtol=1e-5)
  assert losses1[-1] < losses1[0]  # it did train
  _assert_same_params(state8.params, state1.params)
  assert int(state8.step) == 3


def test_gradient_accumulation_matches_the_full_batch():
  # Without dropout and with equal token counts per microbatch, the mean of
  # microbatch gradients is the full-batch gradient.
  config = dataclasses.replace(StandInConfig(), dropout_rate=0.0)
  batches = [random_batch(seed=s) for s in range(2)]
  opt = optimizers.create_optimizer(optimizers.adamw, learning_rate=1e-2)
  p = partitioning.Partitioner(num_partitions=2)
  full, losses_full, _ = _train(p, opt, batches, 1, config)
  acc, losses_acc, _ = _train(p, opt, batches, 4, config)
  np.testing.assert_allclose(losses_acc, losses_full, rtol=1e-5)
  _assert_same_params(acc.params, full.params)


def test_step_donates_the_old_state_and_reports_metrics():
  p = partitioning.Partitioner(num_partitions=2)
  opt = optimizers.create_optimizer(learning_rate=optimizers.rsqrt_schedule(
      base_learning_rate=1.0, warmup_steps=100))
  trainer = trainer_lib.Trainer(StandInModel(), opt, p)
  state = trainer.init_state(jax.random.key(0), SHAPES)
  old_wi = state.params["wi"]
  new_state, metrics = trainer.train_step(state, p.shard_batch(random_batch()),
                                          jax.random.key(1))
  assert old_wi.is_deleted()  # updated in place
  assert set(metrics) >= {"train/loss", "train/accuracy", "train/learning_rate",
                          "train/grad_norm", "train/target_tokens"}
  assert float(metrics["train/learning_rate"]) == pytest.approx(0.1)  # 1/sqrt(100)
  assert int(metrics["train/target_tokens"]) == 8 * 6
  assert int(new_state.step) == 1


def test_metrics_logger_reports_tokens_per_second_and_mfu(tmp_path, capsys):
  config = StandInConfig()
  logger = trainer_lib.MetricsLogger(
      str(tmp_path), model_config=config, global_batch_size=8, input_length=12,
      target_length=6, total_steps=10, peak_flops_per_device=1e9)
  logger.start(0)
  m = logger.log(2, {"train/loss": np.float32(2.5), "train/learning_rate": 1e-3})
  logger.close()
  assert m["timing/tokens_per_second"] > 0
  flops = utils.encoder_decoder_train_flops(config, 8, 12, 6)
  assert m["timing/mfu"] == pytest.approx(
      flops / m["timing/step_time_s"] / (1e9 * jax.device_count()))
  assert "step 2/10 | loss 2.5000" in capsys.readouterr().out
  assert list(tmp_path.glob("events.out.tfevents*"))  # TensorBoard file


def test_train_flops_count_matches_a_hand_count():
  @dataclasses.dataclass
  class Cfg:
    emb_dim: int = 4
    num_heads: int = 1
    head_dim: int = 2
    mlp_dim: int = 8
    mlp_activations: tuple = ("relu",)
    vocab_size: int = 10
    num_encoder_layers: int = 1
    num_decoder_layers: int = 1
  # Encoder token: qkvo 4*2*4*2=64, scores 2*2*3*2=24, mlp 2*4*8*2=128 -> 216.
  # Decoder token: self 64 + 2*2*2*2=16, cross q,o 32 + scores 24, mlp 128 -> 264.
  # Cross k,v per input token 32; logits per target token 2*4*10=80.
  forward = 3 * 216 + 2 * 264 + 3 * 32 + 2 * 80
  assert utils.encoder_decoder_forward_flops(Cfg(), 1, 3, 2) == forward
  assert utils.encoder_decoder_train_flops(Cfg(), 5, 3, 2) == 3 * 5 * forward


def test_schedules_have_t5_shapes():
  rsqrt = optimizers.rsqrt_schedule(base_learning_rate=1.0, warmup_steps=10_000)
  assert float(rsqrt(0)) == pytest.approx(0.01)
  assert float(rsqrt(40_000)) == pytest.approx(0.005)
  cosine = optimizers.cosine_decay_schedule(1e-3, warmup_steps=10, decay_steps=110)
  assert float(cosine(0)) == 0.0 and float(cosine(10)) == pytest.approx(1e-3)
  assert float(cosine(110)) == pytest.approx(0.0, abs=1e-9)
  linear = optimizers.linear_decay_schedule(1e-3, warmup_steps=0, decay_steps=100)
  assert float(linear(50)) == pytest.approx(5e-4)
