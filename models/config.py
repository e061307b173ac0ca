"""Hyperparameters of the T5 encoder-decoder (T5X's `network.T5Config`, plus speed knobs).

One frozen dataclass carries everything the network needs; gin binds it in
`gin/models/*.gin` (`config.T5Config.emb_dim = 768`, ...).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

# Names accepted by `T5Config.remat_policy`, mapped to jax.checkpoint_policies.
# "none": no rematerialisation; "full": recompute everything in the backward pass;
# "minimal": keep matmul outputs (recompute only elementwise ops);
# "dots_no_batch": keep only matmul outputs without batch dims (weights-side).
REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "minimal": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


@dataclasses.dataclass(frozen=True)
class T5Config:
  """Shapes and numerics of a T5-family encoder-decoder.

  Attributes mirror T5X's `T5Config` (same names, same meaning). Extra ones:
    dtype: activation dtype, "float32", "bfloat16" or "auto" (bfloat16 on an
      accelerator, float32 on CPU). Params are always float32.
    scan_layers: run each stack as one `nn.scan` over stacked layer params (a
      leading `layers` axis); faster compiles for deep models.
    remat_policy: one of REMAT_POLICIES; rematerialise each layer in backprop.
    layer_norm_epsilon: RMS norm epsilon (1e-6 as T5).
  """
  vocab_size: int = 32128
  emb_dim: int = 512
  num_heads: int = 8
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  head_dim: int = 64
  mlp_dim: int = 2048
  mlp_activations: Sequence[str] = ("gelu", "linear")
  dropout_rate: float = 0.1
  logits_via_embedding: bool = False
  dtype: str = "auto"
  float32_attention_logits: bool = False
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  layer_norm_epsilon: float = 1e-6
  scan_layers: bool = False
  remat_policy: str = "none"

  def __post_init__(self):
    # A list from gin would make the dataclass unhashable (flax needs hashing).
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
    if self.dtype not in ("auto", "float32", "bfloat16"):
      raise ValueError(f"T5Config.dtype must be 'auto', 'float32' or 'bfloat16', got {self.dtype!r}")
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"T5Config.remat_policy must be one of {sorted(REMAT_POLICIES)}, got {self.remat_policy!r}")
    for act in self.mlp_activations:
      if act not in ("relu", "gelu", "gelu_exact", "silu", "linear"):
        raise ValueError(f"T5Config.mlp_activations: unknown activation {act!r}")

  @property
  def activation_dtype(self) -> jnp.dtype:
    if self.dtype == "auto":
      return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    return jnp.dtype(self.dtype)

  @property
  def remat(self):
    return REMAT_POLICIES[self.remat_policy]

  def replace(self, **changes) -> "T5Config":
    return dataclasses.replace(self, **changes)
