r"""Trains an encoder-decoder on a seqio mixture, T5X style.

  python -m launch.train \
    --gin_file=gin/models/t5_1_1_tiny.gin --gin_file=gin/runs/finetune.gin \
    --gin.MIXTURE_OR_TASK_NAME="'ie_sample_default'" --gin.MODEL_DIR="'/tmp/run'"

or `launch/train.sh` with the same flags (also on every worker of a Cloud TPU).
A run resumes from the latest checkpoint in MODEL_DIR (params, optimizer state
and data position), else starts from INITIAL_CHECKPOINT_PATH, else from init.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

from absl import flags
from absl import logging
import gin
import jax
import jax.numpy as jnp

from launch import gin_utils
from models import checkpoints as checkpoints_lib
from models import evaluation
from models import optimizers as optimizers_lib
from models import partitioning as partitioning_lib
from models import trainer as trainer_lib
from models import utils


def input_shapes_for(cfg: utils.DatasetConfig) -> dict[str, tuple[int, int]]:
  """Global batch shapes of the EncDecFeatureConverter features."""
  lengths = cfg.task_feature_lengths
  enc, dec = (cfg.batch_size, lengths["inputs"]), (cfg.batch_size, lengths["targets"])
  return {"encoder_input_tokens": enc, "decoder_input_tokens": dec,
          "decoder_target_tokens": dec, "decoder_loss_weights": dec}


def train(*,
          model: Any,
          train_dataset_cfg: utils.DatasetConfig,
          model_dir: str,
          total_steps: int,
          partitioner: partitioning_lib.Partitioner | None = None,
          optimizer: optimizers_lib.Optimizer | None = None,
          checkpoint_cfg: checkpoints_lib.CheckpointConfig | None = None,
          num_microbatches: int = 1,
          eval_period: int | None = None,
          evaluator: Any | None = None,
          eval_at_start: bool = False,
          random_seed: int = 0,
          log_period: int = 10,
          peak_flops_per_device: float | None = None,
          summarize_config_fn: Callable[[str], Any] | None = gin_utils.write_gin_config,
          ) -> tuple[Any, dict[str, Any]]:
  """The training loop; returns (final state, {"history": [...], "eval": {...}}).

  Args:
    model: EncoderDecoderModel (MODEL in gin).
    train_dataset_cfg: the mixture, lengths, GLOBAL batch size, seed.
    model_dir: checkpoints, TensorBoard events, config.gin, eval results.
    total_steps: train until the state's step reaches this (TRAIN_STEPS).
    partitioner: mesh + logical rules (default: data parallel on all devices).
    optimizer: `optimizers.create_optimizer()` (default Adafactor, lr 1e-3).
    checkpoint_cfg: saving period/retention and INITIAL_CHECKPOINT_PATH.
    num_microbatches: gradient accumulation.
    eval_period: evaluate every this many steps (EVAL_PERIOD) and at the end.
    evaluator: `evaluation.Evaluator` (decodes, postprocesses, IE metrics).
    eval_at_start: also evaluate before the first step of a fresh run (step
      0), so a report shows where F1 started.
    random_seed: parameter init and dropout (the dataset has its own seed).
    log_period: steps between metric lines / TensorBoard points.
    peak_flops_per_device: for MFU; default from the device kind.
  """
  partitioner = partitioner or partitioning_lib.Partitioner()
  optimizer = optimizer or optimizers_lib.create_optimizer()
  checkpoint_cfg = checkpoint_cfg or checkpoints_lib.CheckpointConfig()
  if summarize_config_fn is not None:
    summarize_config_fn(model_dir)
  trainer = trainer_lib.Trainer(model, optimizer, partitioner, num_microbatches)
  input_shapes = input_shapes_for(train_dataset_cfg)
  abstract_state, shardings = trainer.abstract_state(input_shapes)
  init_rng, dropout_rng = jax.random.split(jax.random.key(random_seed))

  manager = None
  if checkpoint_cfg.save is not None:
    manager = checkpoints_lib.CheckpointManager(model_dir, checkpoint_cfg.save)
  data_state = {"batches_consumed": 0, "seed": train_dataset_cfg.seed,
                "mixture_or_task_name": train_dataset_cfg.mixture_or_task_name}
  if manager is not None and manager.latest_step() is not None:
    state, restored_data = manager.restore(abstract_state)
    if restored_data.get("seed") != train_dataset_cfg.seed:
      logging.warning("Dataset seed changed (%s -> %s): the resumed data stream "
                      "differs.", restored_data.get("seed"), train_dataset_cfg.seed)
    data_state.update(restored_data)
  else:
    state = trainer.init_state(init_rng, input_shapes)
    restore = checkpoint_cfg.restore
    if restore is not None and restore.path:
      params = checkpoints_lib.load_initial_params(
          restore.path, abstract_state.params, shardings.params, restore.strict)
      state = state.replace(params=params)

  start_step = int(jax.device_get(state.step))
  shard_info = partitioner.data_shard_info()
  per_host_batch = partitioner.per_process_batch_size(train_dataset_cfg.batch_size)
  dataset = utils.get_dataset(train_dataset_cfg, shard_info, per_host_batch,
                              skip_batches=int(data_state["batches_consumed"]))
  batches = dataset.as_numpy_iterator()

  lengths = train_dataset_cfg.task_feature_lengths
  logger = trainer_lib.MetricsLogger(
      os.path.join(model_dir, "train"), model_config=model.config,
      global_batch_size=train_dataset_cfg.batch_size,
      input_length=lengths["inputs"], target_length=lengths["targets"],
      total_steps=total_steps, peak_flops_per_device=peak_flops_per_device,
      num_microbatches=num_microbatches)
  watcher = checkpoints_lib.PreemptionWatcher()
  eval_results: dict[str, Any] = {}

  def run_eval(step: int) -> dict[str, float]:
    nonlocal eval_results
    if evaluator is None:
      return {}
    eval_results = evaluator.evaluate(model, state.params, partitioner, step,
                                      output_dir=model_dir)
    logger.write_scalars(step, {f"eval/{k}": v for k, v in eval_results.items()
                                if isinstance(v, (int, float))})
    if jax.process_index() == 0:
      print(evaluation.format_console_summary(step, eval_results), flush=True)
    return eval_results

  logging.info("Training from step %d to %d (%d batches already consumed)",
               start_step, total_steps, data_state["batches_consumed"])
  step = start_step
  if eval_at_start and start_step == 0:
    run_eval(0)
  logger.start(step)
  compile_start = time.perf_counter()
  preempted = False
  while step < total_steps:
    try:
      batch = next(batches)
    except StopIteration:
      logging.warning("The training data ran out at step %d.", step)
      break
    state, metrics = trainer.train_step(state, partitioner.shard_batch(batch),
                                        dropout_rng)
    step += 1
    data_state["batches_consumed"] = int(data_state["batches_consumed"]) + 1
    if step == start_step + 1:
      jax.block_until_ready(metrics)
      if jax.process_index() == 0:
        print(f"step {step}: first step (compile + run) took "
              f"{time.perf_counter() - compile_start:.1f}s", flush=True)
      logger.start(step)
    elif step % log_period == 0 or step == total_steps:
      logger.log(step, metrics)
    eval_metrics = None
    if eval_period and step % eval_period == 0 and step != total_steps:
      eval_metrics = run_eval(step)
    if manager is not None:
      manager.save(state, data_state, metrics=eval_metrics or None)
    if watcher.should_stop():
      preempted = True
      logging.warning("Stopping at step %d on a termination signal.", step)
      break

  if not preempted and evaluator is not None and step == total_steps:
    eval_metrics = run_eval(step)
  if manager is not None:
    manager.save(state, data_state, metrics=eval_results or None, force=True)
    manager.wait_until_finished()
    manager.close()
  watcher.restore_handlers()
  gin_utils.write_operative_config(model_dir)
  logger.flush()
  logger.close()
  return state, {"history": logger.history, "eval": eval_results,
                 "preempted": preempted, "step": step}


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  # Registered before parsing so `train_script.train.x = ...` binds it (T5X).
  train_using_gin = gin.configurable(train)
  gin_utils.setup_from_flags(finalize=True)
  train_using_gin()


if __name__ == "__main__":
  gin_utils.run(main)
