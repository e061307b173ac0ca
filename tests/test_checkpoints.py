"""Checkpoints: bit-exact resume (data included), retention, SIGTERM, initial checkpoints."""
from __future__ import annotations

import json
import os
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from launch import train as train_lib
from models import checkpoints, optimizers, partitioning, utils
from test_trainer_standin import COPY_TASK, StandInModel
from test_trainer_standin import reuse_compiled_programs  # pylint: disable=unused-import

# Every train() below compiles the same step: compile it once (see the fixture).
pytestmark = pytest.mark.usefixtures("reuse_compiled_programs")

LENGTHS = {"inputs": 24, "targets": 8}


def _run(model_dir, total_steps, *, period=2, initial=None, keep=3):
  cfg = utils.DatasetConfig(COPY_TASK, LENGTHS, batch_size=8, seed=7)
  ckpt = checkpoints.CheckpointConfig(
      save=checkpoints.SaveCheckpointConfig(period=period, keep=keep),
      restore=checkpoints.RestoreCheckpointConfig(path=initial) if initial else None)
  return train_lib.train(
      model=StandInModel(), train_dataset_cfg=cfg, model_dir=str(model_dir),
      total_steps=total_steps, partitioner=partitioning.Partitioner(num_partitions=2),
      optimizer=optimizers.create_optimizer(learning_rate=1e-2),
      checkpoint_cfg=ckpt, log_period=100, summarize_config_fn=None)


def _host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
  """Six uninterrupted steps (compared against, and reused as a checkpoint)."""
  model_dir = tmp_path_factory.mktemp("straight")
  state, _ = _run(model_dir, 6)
  return model_dir, state


def test_k_steps_then_resume_equals_n_straight_steps_bit_for_bit(tmp_path, straight_run):
  _, straight = straight_run
  _run(tmp_path / "resumed", 3)  # stops at 3 and saves
  assert checkpoints.CheckpointManager(str(tmp_path / "resumed")).latest_step() == 3
  resumed, _ = _run(tmp_path / "resumed", 6)  # restores step 3 + data position
  for a, b in zip(jax.tree.leaves(_host(straight.params)),
                  jax.tree.leaves(_host(resumed.params))):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(_host(straight.opt_state)),
                  jax.tree.leaves(_host(resumed.opt_state))):
    np.testing.assert_array_equal(a, b)
  data = json.loads((tmp_path / "resumed/checkpoints/6/data/metadata").read_text())
  assert data["batches_consumed"] == 6 and data["seed"] == 7


def test_resume_skips_exactly_the_consumed_batches():
  cfg = utils.DatasetConfig(COPY_TASK, LENGTHS, batch_size=4, seed=3)
  import seqio
  full = list(utils.get_dataset(cfg, seqio.ShardInfo(0, 1), 4).take(5).as_numpy_iterator())
  rest = list(utils.get_dataset(cfg, seqio.ShardInfo(0, 1), 4, skip_batches=3)
              .take(2).as_numpy_iterator())
  for a, b in zip(full[3:], rest):
    np.testing.assert_array_equal(a["encoder_input_tokens"], b["encoder_input_tokens"])


def _tiny_state(step):
  return {"step": jnp.int32(step), "w": jnp.full((4,), float(step))}


def test_keeps_the_last_n_and_the_best_by_eval_metric(tmp_path):
  manager = checkpoints.CheckpointManager(str(tmp_path), checkpoints.SaveCheckpointConfig(
      period=1, keep=2, keep_best=1, best_metric="average/f1", async_save=False))
  f1_by_step = {1: 0.2, 2: 0.9, 3: 0.4, 4: 0.3, 5: 0.1}
  for step, f1 in f1_by_step.items():
    manager.save(_tiny_state(step), {"batches_consumed": step}, step=step,
                 metrics={"average/f1": f1})
  manager.wait_until_finished()
  assert manager.all_steps() == [2, 4, 5]  # best (0.9 at 2) + the last two
  restored, data = manager.restore(
      {"step": jax.ShapeDtypeStruct((), jnp.int32),
       "w": jax.ShapeDtypeStruct((4,), jnp.float32)}, step=2)
  assert float(restored["w"][0]) == 2.0 and data["batches_consumed"] == 2
  manager.close()


def test_sigterm_saves_at_a_step_end_and_exits_cleanly(tmp_path):
  # The signal arrives while training; the loop finishes the step it is in,
  # saves, and returns instead of dying mid-write.
  stop = threading.Event()

  def send_sigterm_once_handled():
    # Only once train() handles SIGTERM: the default action would kill pytest.
    while not stop.is_set() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
      stop.wait(0.05)
    if not stop.is_set():
      os.kill(os.getpid(), signal.SIGTERM)

  sender = threading.Thread(target=send_sigterm_once_handled, daemon=True)
  sender.start()
  try:
    state, result = _run(tmp_path, 100_000, period=100_000)
  finally:
    stop.set()
  assert result["preempted"] and 0 < result["step"] < 100_000
  manager = checkpoints.CheckpointManager(str(tmp_path))
  assert manager.latest_step() == result["step"] == int(state.step)
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
  resumed, again = _run(tmp_path, result["step"] + 2, period=100_000)
  assert int(resumed.step) == result["step"] + 2 and not again["preempted"]


def test_initial_checkpoint_from_our_run_gives_its_params_and_a_fresh_step(
    tmp_path, straight_run):
  trained_dir, trained = straight_run
  abstract, shardings = jax.eval_shape(lambda: trained.params), jax.tree.map(
      lambda x: x.sharding, trained.params)
  loaded = checkpoints.load_initial_params(str(trained_dir), abstract, shardings)
  for a, b in zip(jax.tree.leaves(_host(loaded)), jax.tree.leaves(_host(trained.params))):
    np.testing.assert_array_equal(a, b)
  # Through train(): the step counts from zero again, the optimizer is fresh.
  started, _ = _run(tmp_path, 1, initial=str(trained_dir))
  assert int(started.step) == 1


def test_checkpoint_kind_is_read_from_what_the_path_contains(tmp_path):
  hf = tmp_path / "hf"
  hf.mkdir()
  (hf / "config.json").write_text("{}")
  assert checkpoints.checkpoint_kind(str(hf)) == "hf"
  t5x = tmp_path / "checkpoint_1000"
  t5x.mkdir()
  (t5x / "checkpoint").write_bytes(b"")
  assert checkpoints.checkpoint_kind(str(t5x)) == "t5x"
  assert checkpoints.checkpoint_kind(str(t5x / "checkpoint")) == "t5x"
  ours = tmp_path / "run" / "checkpoints" / "10" / "state"
  ours.mkdir(parents=True)
  assert checkpoints.checkpoint_kind(str(tmp_path / "run")) == "ours"
  other = tmp_path / "other"
  other.mkdir()
  (other / "weights.npz").write_bytes(b"")
  with pytest.raises(checkpoints.CheckpointError, match="weights.npz"):
    checkpoints.checkpoint_kind(str(other))
  with pytest.raises(checkpoints.CheckpointError, match="does not exist"):
    checkpoints.checkpoint_kind(str(tmp_path / "nowhere"))


def test_the_real_t5x_checkpoint_is_recognised(shared_data):
  path = os.path.join(shared_data, "t5x_checkpoints", "test_t5_tiny.checkpoint_0")
  assert checkpoints.checkpoint_kind(path) == "t5x"


def test_a_checkpoint_missing_a_parameter_names_it_and_its_shape():
  abstract = {"encoder": {"wi": jax.ShapeDtypeStruct((4, 8), jnp.float32),
                          "wo": jax.ShapeDtypeStruct((8, 4), jnp.float32)}}
  found = {"encoder": {"wi": np.zeros((4, 6))}}
  with pytest.raises(checkpoints.CheckpointError) as e:
    checkpoints.check_params_match(found, abstract, "/ckpt")
  assert "missing encoder/wo (expected shape (8, 4))" in str(e.value)
  assert "shape of encoder/wi: expected (4, 8), found (4, 6)" in str(e.value)


def _t5x_tiny_abstract(emb_dim):
  from models.config import T5Config
  from models.models import EncoderDecoderModel
  from models import trainer as trainer_lib
  config = T5Config(vocab_size=32128, emb_dim=emb_dim, num_heads=4, head_dim=3, mlp_dim=16,
                    num_encoder_layers=2, num_decoder_layers=2, dtype="float32")
  return trainer_lib.abstract_params_and_shardings(
      EncoderDecoderModel(config), partitioning.Partitioner(num_partitions=2),
      {"encoder_input_tokens": (2, 8), "decoder_input_tokens": (2, 4)})


def test_initial_checkpoint_from_the_real_t5x_file_is_loaded_sharded(shared_data):
  path = os.path.join(shared_data, "t5x_checkpoints", "test_t5_tiny.checkpoint_0")
  abstract, shardings = _t5x_tiny_abstract(emb_dim=8)  # upstream t5_1_1/tiny.gin shapes
  params = checkpoints.load_initial_params(path, abstract, shardings)
  logits = params["decoder"]["logits_dense"]["kernel"]
  assert logits.shape == (8, 32128) and logits.sharding.spec == shardings[
      "decoder"]["logits_dense"]["kernel"].spec
  assert float(jnp.abs(logits).sum()) > 0
  wrong, wrong_shardings = _t5x_tiny_abstract(emb_dim=16)
  with pytest.raises(checkpoints.CheckpointError, match=r"decoder_norm/scale: expected \(16,\), found \(8,\)"):
    checkpoints.load_initial_params(path, wrong, wrong_shardings)
