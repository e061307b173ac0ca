"""One jit-compiled, sharded train step with gradient accumulation, and its metrics.

The model supplies `get_initial_variables` (boxed with logical axes),
`loss_fn(params, batch, dropout_rng) -> (loss, aux)` and `config`; the
partitioner turns logical axes into shardings; optax does the update. Params
and optimizer state are donated, so a step updates them in place.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from absl import logging
from clu import metric_writers
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from models import optimizers as optimizers_lib
from models import partitioning as partitioning_lib
from models import train_state as train_state_lib
from models import utils

Batch = Mapping[str, jax.Array]
# Aux metrics that are counts: summed over microbatches, never averaged.
_COUNT_METRICS = frozenset({"correct", "weight_sum", "num_tokens", "num_examples"})


def _num_loss_tokens(batch: Batch) -> jax.Array:
  weights = batch.get("decoder_loss_weights")
  if weights is None:
    weights = batch["decoder_target_tokens"] > 0
  return jnp.sum(weights.astype(jnp.float32))


def _microbatch_combination(model: Any) -> str:
  """How microbatch losses add up to the full-batch loss, from the model's loss."""
  factor = getattr(model, "loss_normalizing_factor", "NUM_REAL_TARGET_TOKENS")
  if factor is None or isinstance(factor, (int, float)):
    return "sum"
  if factor == "NUM_REAL_TARGET_TOKENS":
    return "token_weighted"
  return "mean"


def _split_microbatches(batch: Batch, num_microbatches: int) -> Batch:
  """[B, ...] -> [M, B/M, ...] with microbatch m = rows m, M+m, 2M+m, ...

  Strided rows keep every device's slice of a microbatch inside the block of
  rows it already holds, so splitting needs no communication.
  """
  def split(x):
    b = x.shape[0]
    if b % num_microbatches:
      raise ValueError(f"batch size {b} not divisible by num_microbatches="
                       f"{num_microbatches}")
    x = x.reshape((b // num_microbatches, num_microbatches) + x.shape[1:])
    return jnp.swapaxes(x, 0, 1)
  return jax.tree.map(split, dict(batch))


def abstract_params_and_shardings(model: Any, partitioner: partitioning_lib.Partitioner,
                                  input_shapes: Mapping[str, tuple]) -> tuple[Any, Any]:
  """The model's params as ShapeDtypeStructs and their NamedShardings."""
  def init(rng):
    return model.get_initial_variables(rng, dict(input_shapes))["params"]
  with partitioner.activation_context():
    boxed = jax.eval_shape(init, jax.random.key(0))
  return nn.meta.unbox(boxed), partitioner.variables_shardings(boxed)


class Trainer:
  """Builds the sharded train state and the compiled train/eval steps.

  Attributes:
    model: EncoderDecoderModel-like object.
    optimizer: `optimizers.Optimizer` (optax tx + learning-rate schedule).
    partitioner: `partitioning.Partitioner`.
    num_microbatches: gradient accumulation steps per train step (lax.scan);
      gradients and metrics are averaged over microbatches.
  """

  def __init__(self, model: Any, optimizer: optimizers_lib.Optimizer,
               partitioner: partitioning_lib.Partitioner,
               num_microbatches: int = 1):
    self.model = model
    self.optimizer = optimizer
    self.partitioner = partitioner
    self.num_microbatches = max(int(num_microbatches or 1), 1)
    self.state_shardings = None
    self._compiled_train: dict[tuple, Callable] = {}
    self._compiled_eval: dict[tuple, Callable] = {}

  # --- state --------------------------------------------------------------------
  def _initial_params(self, rng: jax.Array, input_shapes: Mapping[str, tuple]):
    return self.model.get_initial_variables(rng, dict(input_shapes))["params"]

  def abstract_state(self, input_shapes: Mapping[str, tuple]
                     ) -> tuple[train_state_lib.TrainState, train_state_lib.TrainState]:
    """(abstract state, its shardings) without allocating anything."""
    p = self.partitioner
    abstract_params, params_shardings = abstract_params_and_shardings(
        self.model, p, input_shapes)
    abstract_opt = jax.eval_shape(self.optimizer.tx.init, abstract_params)
    opt_shardings = p.optimizer_state_shardings(abstract_opt, abstract_params,
                                                params_shardings)
    abstract = train_state_lib.TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32), params=abstract_params,
        opt_state=abstract_opt)
    shardings = train_state_lib.TrainState(
        step=p.replicated, params=params_shardings, opt_state=opt_shardings)
    abstract = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
        abstract, shardings)
    self.state_shardings = shardings
    return abstract, shardings

  def init_state(self, rng: jax.Array,
                 input_shapes: Mapping[str, tuple]) -> train_state_lib.TrainState:
    """A freshly initialised state, created directly in its shards."""
    _, shardings = self.abstract_state(input_shapes)

    def init(rng):
      params = nn.meta.unbox(self._initial_params(rng, input_shapes))
      return train_state_lib.TrainState.create(params, self.optimizer.tx)

    with self.partitioner.activation_context():
      return jax.jit(init, out_shardings=shardings)(rng)

  # --- steps ------------------------------------------------------------------------
  def _batch_shardings(self, batch: Batch) -> dict[str, Any]:
    return {k: self.partitioner.batch_sharding(np.ndim(v)) for k, v in batch.items()}

  def _loss_and_grads(self, params, batch: Batch, rng: jax.Array):
    grad_fn = jax.value_and_grad(self.model.loss_fn, has_aux=True)
    if self.num_microbatches == 1:
      (loss, aux), grads = grad_fn(params, batch, rng)
      return loss, aux, grads

    micro = _split_microbatches(batch, self.num_microbatches)
    batch_specs = {k: self.partitioner.batch_spec(np.ndim(v))
                   for k, v in batch.items()}
    first = jax.tree.map(lambda x: x[0], micro)
    (_, aux_shape), _ = jax.eval_shape(grad_fn, params, first, rng)
    zeros = lambda t: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), t)
    carry0 = (jnp.zeros((), jnp.float32), zeros(aux_shape),
              jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))
    combine = _microbatch_combination(self.model)

    def body(carry, inputs):
      loss_sum, aux_sum, grad_sum, weight_sum = carry
      index, mb = inputs
      mb = {k: jax.lax.with_sharding_constraint(v, self.partitioner.sharding(batch_specs[k]))
            for k, v in mb.items()}
      (loss, aux), grads = grad_fn(params, mb, jax.random.fold_in(rng, index))
      tokens = _num_loss_tokens(mb)
      w = tokens if combine == "token_weighted" else jnp.float32(1.0)
      # Losses combine like the loss; rates (accuracy) weight by tokens.
      aux = {k: v if k in _COUNT_METRICS else v * (w if "loss" in k else tokens)
             for k, v in dict(aux).items()}
      add = lambda a, b: jax.tree.map(jnp.add, a, b)
      grads = jax.tree.map(lambda g: g * w, grads)
      return (loss_sum + loss * w, add(aux_sum, aux), add(grad_sum, grads),
              weight_sum + tokens), None

    (loss, aux, grads, total_tokens), _ = jax.lax.scan(
        body, carry0, (jnp.arange(self.num_microbatches), micro))
    # "sum": the full-batch loss is the sum of microbatch losses (T5X's
    # default sum over tokens, or a constant factor); "token_weighted": per-
    # token normalisation, so weight each microbatch by its loss tokens;
    # "mean": per-sequence or other normalisation (equal-size microbatches).
    norm = {"sum": 1.0, "token_weighted": jnp.maximum(total_tokens, 1.0),
            "mean": float(self.num_microbatches)}[combine]
    token_norm = jnp.maximum(total_tokens, 1.0)
    aux = {k: v if k in _COUNT_METRICS else v / (norm if "loss" in k else token_norm)
           for k, v in aux.items()}
    return loss / norm, aux, jax.tree.map(lambda g: g / norm, grads)

  def _train_step(self, state: train_state_lib.TrainState, batch: Batch,
                  rng: jax.Array):
    step_rng = jax.random.fold_in(rng, state.step)
    loss, aux, grads = self._loss_and_grads(state.params, batch, step_rng)
    new_state = state.apply_gradients(grads, self.optimizer.tx)
    metrics = {f"train/{k}": jnp.mean(v) for k, v in dict(aux).items()
               if jnp.ndim(v) == 0 or jnp.size(v) == 1}
    metrics["train/loss"] = loss
    metrics["train/learning_rate"] = self.optimizer.learning_rate(state.step)
    metrics["train/grad_norm"] = optax.global_norm(grads)
    metrics["train/param_norm"] = optax.global_norm(state.params)
    weights = batch.get("decoder_loss_weights")
    if weights is not None:
      metrics["train/target_tokens"] = jnp.sum(weights > 0)
    return new_state, metrics

  def train_step(self, state: train_state_lib.TrainState, batch: Batch,
                 rng: jax.Array):
    """One optimizer step on a global (sharded) batch; donates `state`."""
    key = tuple(sorted((k, np.shape(v)) for k, v in batch.items()))
    if key not in self._compiled_train:
      if self.state_shardings is None:
        raise ValueError("call init_state/abstract_state before train_step")
      p = self.partitioner
      self._compiled_train[key] = jax.jit(
          self._train_step,
          in_shardings=(self.state_shardings, self._batch_shardings(batch),
                        p.replicated),
          out_shardings=(self.state_shardings, p.replicated),
          donate_argnums=(0,))
    with self.partitioner.activation_context():
      return self._compiled_train[key](state, batch, rng)

  def eval_step(self, params: Any, batch: Batch) -> dict[str, jax.Array]:
    """Loss and aux metrics without dropout (T5X's train_eval)."""
    key = tuple(sorted((k, np.shape(v)) for k, v in batch.items()))
    if key not in self._compiled_eval:
      def step(params, batch):
        loss, aux = self.model.loss_fn(params, batch, None)
        out = {k: jnp.mean(v) for k, v in dict(aux).items() if jnp.size(v) == 1}
        out["loss"] = loss
        return out
      p = self.partitioner
      self._compiled_eval[key] = jax.jit(
          step, in_shardings=(self.state_shardings.params,
                              self._batch_shardings(batch)),
          out_shardings=p.replicated)
    with self.partitioner.activation_context():
      return self._compiled_eval[key](params, batch)


class MetricsLogger:
  """Step time, tokens/s and MFU beside the step's metrics; TensorBoard + console.

  Only process 0 writes summaries; every process may print.
  """

  def __init__(self, logdir: str | None, *, model_config: Any,
               global_batch_size: int, input_length: int, target_length: int,
               total_steps: int, peak_flops_per_device: float | None = None,
               num_microbatches: int = 1):
    self.writer = metric_writers.create_default_writer(
        logdir, just_logging=jax.process_index() > 0 or logdir is None,
        asynchronous=True)
    self.total_steps = total_steps
    self.tokens_per_step = global_batch_size * (input_length + target_length)
    self.flops_per_step = utils.encoder_decoder_train_flops(
        model_config, global_batch_size, input_length, target_length)
    per_device = peak_flops_per_device or utils.peak_flops_per_device()
    self.peak_flops = per_device * jax.device_count()
    self._last_time = None
    self._last_step = None
    self.history: list[dict[str, float]] = []

  def start(self, step: int) -> None:
    self._last_time, self._last_step = time.perf_counter(), step

  def log(self, step: int, device_metrics: Mapping[str, jax.Array]) -> dict[str, float]:
    """Syncs on the metrics (so timing covers finished work) and writes them."""
    metrics = {k: float(v) for k, v in jax.device_get(dict(device_metrics)).items()}
    now = time.perf_counter()
    steps = max(step - (self._last_step or 0), 1)
    step_time = (now - (self._last_time or now)) / steps
    self._last_time, self._last_step = now, step
    if step_time > 0:
      metrics["timing/step_time_s"] = step_time
      metrics["timing/tokens_per_second"] = self.tokens_per_step / step_time
      metrics["timing/model_flops_per_step"] = self.flops_per_step
      metrics["timing/mfu"] = self.flops_per_step / step_time / self.peak_flops
    self.writer.write_scalars(step, metrics)
    self.history.append({"step": step, **metrics})
    self._print(step, metrics)
    return metrics

  def _print(self, step: int, m: Mapping[str, float]) -> None:
    parts = [f"step {step}/{self.total_steps}",
             f"loss {m.get('train/loss', float('nan')):.4f}"]
    if "train/accuracy" in m:
      parts.append(f"acc {m['train/accuracy']:.3f}")
    parts.append(f"lr {m.get('train/learning_rate', float('nan')):.2e}")
    if "timing/step_time_s" in m:
      parts += [f"{m['timing/step_time_s'] * 1e3:.0f} ms/step",
                f"{m['timing/tokens_per_second']:,.0f} tok/s",
                f"MFU {100 * m['timing/mfu']:.1f}%"]
    line = " | ".join(parts)
    logging.info(line)
    if jax.process_index() == 0:
      print(line, flush=True)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    self.writer.write_scalars(step, dict(scalars))

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()
