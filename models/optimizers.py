"""Optimizers and learning-rate schedules from optax, wired for gin.

T5 fine-tuning defaults: Adafactor with factored second moments, decay rate
0.8, update clipping at 1.0, no momentum, step size scaled by the parameter's
RMS, and a constant learning rate of 1e-3 (T5X's finetune setting); pretraining
uses the rsqrt schedule with 10k warm-up steps.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array], jax.Array]


# --- schedules ---------------------------------------------------------------
def constant_schedule(value: float = 1e-3) -> Schedule:
  return optax.constant_schedule(value)


def rsqrt_schedule(base_learning_rate: float = 1.0,
                   warmup_steps: int = 10_000,
                   linear_warmup: bool = False) -> Schedule:
  """T5's inverse square root: base / sqrt(max(step, warmup_steps)).

  With `linear_warmup` the rate ramps linearly from 0 to its value at
  `warmup_steps` instead of staying flat (the T5 paper keeps it flat).
  """
  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    warmup = jnp.float32(max(warmup_steps, 1))
    lr = base_learning_rate / jnp.sqrt(jnp.maximum(step, warmup))
    if linear_warmup:
      lr = lr * jnp.minimum(1.0, (step + 1.0) / warmup)
    return lr
  return schedule


def linear_decay_schedule(peak_value: float = 1e-3, warmup_steps: int = 0,
                          decay_steps: int = 10_000,
                          end_value: float = 0.0) -> Schedule:
  """Linear warm-up from 0 to peak, then linear decay to end_value."""
  decay = optax.linear_schedule(peak_value, end_value,
                                max(decay_steps - warmup_steps, 1))
  if not warmup_steps:
    return decay
  warmup = optax.linear_schedule(0.0, peak_value, warmup_steps)
  return optax.join_schedules([warmup, decay], [warmup_steps])


def cosine_decay_schedule(peak_value: float = 1e-3, warmup_steps: int = 0,
                          decay_steps: int = 10_000,
                          end_value: float = 0.0) -> Schedule:
  """Linear warm-up, then cosine decay to end_value at decay_steps."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak_value, warmup_steps=warmup_steps,
      decay_steps=max(decay_steps, warmup_steps + 1), end_value=end_value)


# --- optimizers ----------------------------------------------------------------
def adafactor(learning_rate: float | Schedule | None = None,
              decay_rate: float = 0.8,
              clipping_threshold: float | None = 1.0,
              multiply_by_parameter_scale: bool = True,
              momentum: float | None = None,
              factored: bool = True,
              min_dim_size_to_factor: int = 128,
              weight_decay_rate: float | None = None,
              epsilon: float = 1e-30) -> optax.GradientTransformation:
  """optax Adafactor with T5's defaults (learning rate defaults to 1e-3)."""
  if learning_rate is None:
    learning_rate = constant_schedule(1e-3)
  return optax.adafactor(
      learning_rate=learning_rate, decay_rate=decay_rate,
      clipping_threshold=clipping_threshold,
      multiply_by_parameter_scale=multiply_by_parameter_scale,
      momentum=momentum, factored=factored,
      min_dim_size_to_factor=min_dim_size_to_factor,
      weight_decay_rate=weight_decay_rate, eps=epsilon)


def _decay_mask(params):
  """Weight decay on matrices only (not on norms' scales or biases)."""
  return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


def adamw(learning_rate: float | Schedule | None = None,
          b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 0.01) -> optax.GradientTransformation:
  if learning_rate is None:
    learning_rate = constant_schedule(1e-4)
  return optax.adamw(learning_rate=learning_rate, b1=b1, b2=b2, eps=eps,
                     weight_decay=weight_decay, mask=_decay_mask)


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """The optax transformation and its schedule (the trainer logs the rate)."""
  tx: optax.GradientTransformation
  learning_rate: Schedule


def create_optimizer(optimizer_fn: Callable[..., optax.GradientTransformation] = adafactor,
                     learning_rate: float | Schedule | None = None,
                     grad_clip_norm: float | None = None) -> Optimizer:
  """Builds `optimizer_fn(learning_rate=schedule)`, optionally behind clipping.

  Args:
    optimizer_fn: `adafactor` or `adamw` (or any optax factory taking
      `learning_rate`); gin: `create_optimizer.optimizer_fn = @optimizers.adamw`.
    learning_rate: a float or a schedule; defaults to constant 1e-3.
    grad_clip_norm: clip gradients to this global norm first (None: no clip).
  """
  schedule = learning_rate_fn(learning_rate)
  tx = optimizer_fn(learning_rate=schedule)
  if grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(grad_clip_norm), tx)
  return Optimizer(tx=tx, learning_rate=schedule)


def learning_rate_fn(learning_rate: float | Schedule | None,
                     default: float = 1e-3) -> Schedule:
  """A schedule from a float, a schedule, or None (the default constant)."""
  if learning_rate is None:
    return constant_schedule(default)
  if callable(learning_rate):
    return learning_rate
  return constant_schedule(float(learning_rate))
