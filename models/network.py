"""The T5 encoder-decoder (v1.0, v1.1, Flan-T5, mT5, ByT5) as a flax linen module.

Parameter tree, layouts and numerics follow T5X's `t5x/examples/t5/network.py`,
so T5X checkpoints load name for name (`token_embedder/embedding`,
`encoder/layers_0/attention/query/kernel`, ...). With `scan_layers=True` each
stack's layers become one `layers` subtree with a leading `layers` axis;
`stack_layers` / `unstack_layers` convert between the two layouts.
"""
from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import layers
from models.config import T5Config

__all__ = ["T5Config", "Transformer", "stack_layers", "unstack_layers"]

Array = jax.Array


def _dropout(cfg: T5Config, deterministic: bool, broadcast: bool = True) -> nn.Dropout:
  return nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,) if broadcast else (),
                    deterministic=deterministic)


def _mlp_sublayer(cfg: T5Config, deterministic: bool, x: Array) -> Array:
  """RMSNorm -> MLP -> dropout + residual, the last sub-layer of both layer kinds.

  A function, not a module: called from a layer's compact `__call__`, its
  `pre_mlp_layer_norm` and `mlp` sit directly under `layers_N` as in T5X.
  """
  dtype = cfg.activation_dtype
  y = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_mlp_layer_norm")(x)
  y = layers.MlpBlock(cfg.mlp_dim, cfg.mlp_activations, cfg.dropout_rate, deterministic,
                      dtype, name="mlp")(y)
  y = _dropout(cfg, deterministic)(y) + x
  return layers.constrain(y, ("batch", "length", "embed"))


class EncoderLayer(nn.Module):
  config: T5Config
  deterministic: bool = True
  scanned: bool = False

  @nn.compact
  def __call__(self, inputs: Array, mask: Array | None, bias: Array):
    cfg, dtype = self.config, self.config.activation_dtype
    x = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_attention_layer_norm")(inputs)
    x = layers.MultiHeadAttention(
        cfg.num_heads, cfg.head_dim, dtype, cfg.dropout_rate, self.deterministic,
        cfg.float32_attention_logits, name="attention")(x, x, mask, bias)
    x = _dropout(cfg, self.deterministic)(x) + inputs
    y = _mlp_sublayer(cfg, self.deterministic, x)
    return (y, None) if self.scanned else y


class DecoderLayer(nn.Module):
  config: T5Config
  deterministic: bool = True
  decode: bool = False
  max_decode_length: int | None = None
  scanned: bool = False

  @nn.compact
  def __call__(self, inputs: Array, encoded: Array | None, decoder_mask: Array | None,
               encoder_decoder_mask: Array | None, bias: Array):
    cfg, dtype = self.config, self.config.activation_dtype
    attention = lambda name, mode: layers.MultiHeadAttention(
        cfg.num_heads, cfg.head_dim, dtype, cfg.dropout_rate, self.deterministic,
        cfg.float32_attention_logits, mode=mode, max_decode_length=self.max_decode_length, name=name)
    x = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_self_attention_layer_norm")(inputs)
    x = attention("self_attention", "self_decode" if self.decode else "full")(x, x, decoder_mask, bias)
    x = _dropout(cfg, self.deterministic)(x) + inputs
    y = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_cross_attention_layer_norm")(x)
    y = attention("encoder_decoder_attention", "cross_decode" if self.decode else "full")(
        y, encoded, encoder_decoder_mask)
    y = _dropout(cfg, self.deterministic)(y) + x
    z = _mlp_sublayer(cfg, self.deterministic, y)
    return (z, None) if self.scanned else z


def _layer_class(layer_cls, cfg: T5Config, num_broadcast: int, length: int):
  """Wraps a layer class in remat and/or scan as the config asks."""
  if cfg.remat_policy != "none":
    layer_cls = nn.remat(layer_cls, policy=cfg.remat, prevent_cse=not cfg.scan_layers)
  if cfg.scan_layers:
    layer_cls = nn.scan(
        layer_cls, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
        in_axes=(nn.broadcast,) * num_broadcast, length=length,
        metadata_params={nn.PARTITION_NAME: "layers"})
  return layer_cls


def _relpos(cfg: T5Config) -> layers.RelativePositionBiases:
  return layers.RelativePositionBiases(
      cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance, cfg.num_heads,
      cfg.activation_dtype, name="relpos_bias")


class Encoder(nn.Module):
  config: T5Config
  shared_embedding: nn.Module

  @nn.compact
  def __call__(self, tokens: Array, mask: Array | None, deterministic: bool = True) -> Array:
    cfg = self.config
    x = self.shared_embedding(tokens.astype(jnp.int32))
    x = _dropout(cfg, deterministic)(x).astype(cfg.activation_dtype)
    bias = _relpos(cfg)(tokens.shape[1], tokens.shape[1], bidirectional=True)
    layer_cls = _layer_class(EncoderLayer, cfg, 2, cfg.num_encoder_layers)
    if cfg.scan_layers:
      x, _ = layer_cls(cfg, deterministic, scanned=True, name="layers")(x, mask, bias)
    else:
      for i in range(cfg.num_encoder_layers):
        x = layer_cls(cfg, deterministic, name=f"layers_{i}")(x, mask, bias)
    x = layers.RMSNorm(cfg.layer_norm_epsilon, cfg.activation_dtype, name="encoder_norm")(x)
    return _dropout(cfg, deterministic, broadcast=False)(x)


class Decoder(nn.Module):
  """Decoder stack. With decode=True it runs one position per call from the cache.

  Decode mode: the first call (no "cache" collection yet) must get the encoder
  output and encoder tokens; it creates the self-attention caches
  [batch, max_decode_length, heads, head_dim], projects and stores the
  cross-attention keys/values once, and stores the encoder padding mask. Every
  later call reads them from the cache. A call past `max_decode_length`
  returns NaN logits instead of silently overwriting the cache.
  """
  config: T5Config
  shared_embedding: nn.Module

  @nn.compact
  def __call__(self, encoded: Array | None, decoder_input_tokens: Array,
               decoder_mask: Array | None = None, encoder_decoder_mask: Array | None = None,
               encoder_input_tokens: Array | None = None, deterministic: bool = True,
               decode: bool = False, max_decode_length: int | None = None) -> Array:
    cfg = self.config
    if decode and cfg.scan_layers:
      raise ValueError("decode=True needs unscanned layers: convert params with unstack_layers "
                       "and use T5Config(scan_layers=False) (EncoderDecoderModel does this)")
    y = self.shared_embedding(decoder_input_tokens.astype(jnp.int32))
    y = _dropout(cfg, deterministic)(y).astype(cfg.activation_dtype)
    relpos = _relpos(cfg)
    step_index = None
    if decode:
      if max_decode_length is None:
        raise ValueError("decode=True needs max_decode_length (the cache length)")
      initialized = self.has_variable("cache", "cache_index")
      index_var = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
      valid_var = self.variable("cache", "encoder_valid", lambda: encoder_input_tokens > 0)
      encoder_decoder_mask = layers.attention_mask(
          jnp.ones(decoder_input_tokens.shape, bool), valid_var.value)
      if initialized:
        step_index = index_var.value
        bias = relpos.decode_step(step_index, max_decode_length)
        index_var.value = step_index + 1
      else:
        bias = relpos(decoder_input_tokens.shape[1], decoder_input_tokens.shape[1], False)
    else:
      bias = relpos(decoder_input_tokens.shape[1], decoder_input_tokens.shape[1], False)

    layer_cls = _layer_class(DecoderLayer, cfg, 4, cfg.num_decoder_layers)
    if cfg.scan_layers:
      y, _ = layer_cls(cfg, deterministic, scanned=True, name="layers")(
          y, encoded, decoder_mask, encoder_decoder_mask, bias)
    else:
      for i in range(cfg.num_decoder_layers):
        y = layer_cls(cfg, deterministic, decode, max_decode_length, name=f"layers_{i}")(
            y, encoded, decoder_mask, encoder_decoder_mask, bias)
    y = layers.RMSNorm(cfg.layer_norm_epsilon, cfg.activation_dtype, name="decoder_norm")(y)
    y = _dropout(cfg, deterministic)(y)
    if cfg.logits_via_embedding:
      # Tied embeddings (v1.0): rescale so logits keep unit-ish variance, as T5X.
      logits = self.shared_embedding.attend(y) / jnp.sqrt(y.shape[-1]).astype(jnp.float32)
    else:
      logits = layers.DenseGeneral(cfg.vocab_size, kernel_axes=("embed", "vocab"), dtype=jnp.float32,
                                   row_major_grads=True, name="logits_dense")(y)
    logits = layers.constrain(logits, ("batch", "length", "vocab"))
    if step_index is not None:
      logits = jnp.where(step_index < max_decode_length, logits, jnp.nan)
    return logits


class Transformer(nn.Module):
  """Encoder-decoder with T5X's `encode` / `decode` / `__call__` signatures."""
  config: T5Config

  def setup(self):
    cfg = self.config
    self.shared_embedding = layers.Embed(cfg.vocab_size, cfg.emb_dim, cfg.activation_dtype,
                                         name="token_embedder")
    self.encoder = Encoder(cfg, self.shared_embedding)
    self.decoder = Decoder(cfg, self.shared_embedding)

  def encode(self, encoder_input_tokens: Array, encoder_segment_ids: Array | None = None,
             enable_dropout: bool = True) -> Array:
    valid = encoder_input_tokens > 0
    mask = layers.attention_mask(valid, valid)
    if encoder_segment_ids is not None:  # packing: attend within the same example only
      mask = layers.combine_masks(mask, layers.attention_mask(
          encoder_segment_ids, encoder_segment_ids, jnp.equal))
    return self.encoder(encoder_input_tokens, mask, deterministic=not enable_dropout)

  def decode(self, encoded: Array | None, encoder_input_tokens: Array | None,
             decoder_input_tokens: Array, decoder_target_tokens: Array | None,
             encoder_segment_ids: Array | None = None, decoder_segment_ids: Array | None = None,
             decoder_positions: Array | None = None, enable_dropout: bool = True,
             decode: bool = False, max_decode_length: int | None = None) -> Array:
    """Decoder logits [batch, length, vocab] (float32).

    decoder_positions is accepted for T5X compatibility and unused: relative
    positions come from indices, which inside one packed example equal its own.
    """
    del decoder_positions
    if decode:
      if encoder_segment_ids is not None:
        raise ValueError("packed inputs (encoder_segment_ids) cannot be decoded incrementally")
      return self.decoder(encoded, decoder_input_tokens, None, None, encoder_input_tokens,
                          deterministic=not enable_dropout, decode=True,
                          max_decode_length=max_decode_length)
    length = decoder_input_tokens.shape[1]
    target_valid = decoder_target_tokens > 0
    decoder_mask = layers.combine_masks(layers.causal_mask(length),
                                        layers.attention_mask(target_valid, target_valid))
    encoder_decoder_mask = layers.attention_mask(target_valid, encoder_input_tokens > 0)
    if decoder_segment_ids is not None:
      decoder_mask = layers.combine_masks(decoder_mask, layers.attention_mask(
          decoder_segment_ids, decoder_segment_ids, jnp.equal))
    if encoder_segment_ids is not None:
      encoder_decoder_mask = layers.combine_masks(encoder_decoder_mask, layers.attention_mask(
          decoder_segment_ids, encoder_segment_ids, jnp.equal))
    return self.decoder(encoded, decoder_input_tokens, decoder_mask, encoder_decoder_mask,
                        deterministic=not enable_dropout)

  def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array,
               decoder_target_tokens: Array, encoder_segment_ids: Array | None = None,
               decoder_segment_ids: Array | None = None, encoder_positions: Array | None = None,
               decoder_positions: Array | None = None, *, enable_dropout: bool = True,
               decode: bool = False) -> Array:
    del encoder_positions  # see `decode`
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
                       encoder_segment_ids, decoder_segment_ids, decoder_positions,
                       enable_dropout=enable_dropout, decode=decode)


# ---------------------------------------------------------------------------
# Scanned <-> unscanned parameter layouts.
# ---------------------------------------------------------------------------
_STACKS = (("encoder", "num_encoder_layers"), ("decoder", "num_decoder_layers"))


def stack_layers(params: Mapping[str, Any], config: T5Config) -> dict:
  """T5X layout (`encoder/layers_0`, `layers_1`, ...) -> scanned (`encoder/layers`, axis 0)."""
  out = jax.tree_util.tree_map(lambda x: x, dict(params))
  for stack, attr in _STACKS:
    tree = dict(out[stack])
    per_layer = [tree.pop(f"layers_{i}") for i in range(getattr(config, attr))]
    tree["layers"] = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_layer)
    out[stack] = tree
  return out


def unstack_layers(params: Mapping[str, Any], config: T5Config) -> dict:
  """Scanned layout -> T5X layout; the inverse of `stack_layers`."""
  out = jax.tree_util.tree_map(lambda x: x, dict(params))
  for stack, attr in _STACKS:
    tree = dict(out[stack])
    stacked = tree.pop("layers")
    for i in range(getattr(config, attr)):
      tree[f"layers_{i}"] = jax.tree_util.tree_map(lambda x, i=i: x[i], stacked)
    out[stack] = tree
  return out
