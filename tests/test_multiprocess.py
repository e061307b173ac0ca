"""Two local JAX processes (4 fake CPU devices each) form one 8-device job.

Each process feeds its half of the global batch; the (4, 2) mesh spans both;
the loss and parameters match the one-process run on the full batch. Then
the real loop runs with each host reading its own seqio shard and writing
its shards of a shared checkpoint (gloo collectives on CPU, see DESIGN.md).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))

WORKER = textwrap.dedent("""
    import json, os, sys
    process_id, num_processes, port, out_dir = sys.argv[1:5]
    process_id, num_processes = int(process_id), int(num_processes)
    import jax
    from launch import gin_utils
    if num_processes > 1:
      gin_utils.initialize_distributed("on", f"127.0.0.1:{port}", num_processes, process_id)
    import numpy as np
    from models import optimizers, partitioning, trainer as trainer_lib, utils, checkpoints
    from launch import train as train_lib
    from test_trainer_standin import COPY_TASK, StandInModel, random_batch

    p = partitioning.Partitioner(num_partitions=2)
    opt = optimizers.create_optimizer(optimizers.adamw, learning_rate=1e-2)
    trainer = trainer_lib.Trainer(StandInModel(), opt, p)
    state = trainer.init_state(jax.random.key(0), {k: v.shape for k, v in random_batch().items()})
    shard = p.data_shard_info()
    losses = []
    for seed in range(2):
      full = random_batch(batch_size=8, seed=seed)
      rows = 8 // shard.num_shards
      local = {k: v[shard.index * rows:(shard.index + 1) * rows] for k, v in full.items()}
      state, metrics = trainer.train_step(state, p.shard_batch(local), jax.random.key(1))
      losses.append(float(metrics["train/loss"]))
    from jax.experimental import multihost_utils
    wi = np.asarray(multihost_utils.process_allgather(state.params["wi"], tiled=True))

    cfg = utils.DatasetConfig(COPY_TASK, {"inputs": 24, "targets": 8}, batch_size=8, seed=0)
    final, result = train_lib.train(
        model=StandInModel(), train_dataset_cfg=cfg, model_dir=os.path.join(out_dir, f"run_{num_processes}"),
        total_steps=2, partitioner=p, optimizer=opt, log_period=100,
        checkpoint_cfg=checkpoints.CheckpointConfig(save=checkpoints.SaveCheckpointConfig(period=1)),
        summarize_config_fn=None)
    with open(os.path.join(out_dir, f"result_{process_id}_of_{num_processes}.json"), "w") as f:
      json.dump({"losses": losses, "wi_sum": float(np.abs(wi).sum()),
                 "wi_first": wi.ravel()[:8].tolist(), "shard": [shard.index, shard.num_shards],
                 "devices": jax.device_count(), "step": int(final.step)}, f)
""")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(process_id, num_processes, port, out_dir, devices):
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, TESTS]),
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
         "JAX_PLATFORMS": "cpu"}
  return subprocess.Popen([sys.executable, "-c", WORKER, str(process_id),
                           str(num_processes), str(port), str(out_dir)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def _wait(procs, timeout=300):
  for proc in procs:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
  port = _free_port()
  _wait([_launch(i, 2, port, tmp_path, 4) for i in range(2)])
  _wait([_launch(0, 1, 0, tmp_path, 8)])
  r0, r1 = (json.loads((tmp_path / f"result_{i}_of_2.json").read_text()) for i in range(2))
  single = json.loads((tmp_path / "result_0_of_1.json").read_text())
  assert r0["devices"] == r1["devices"] == 8
  assert [r0["shard"], r1["shard"]] == [[0, 2], [1, 2]]  # each host its own rows
  assert r0["losses"] == r1["losses"]  # one global loss
  np.testing.assert_allclose(r0["losses"], single["losses"], rtol=1e-5)
  np.testing.assert_allclose(r0["wi_first"], single["wi_first"], rtol=1e-5, atol=1e-6)
  assert r0["step"] == r1["step"] == 2
  # The checkpoint both processes wrote together is complete.
  assert (tmp_path / "run_2" / "checkpoints" / "2" / "state").is_dir()
