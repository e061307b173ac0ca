"""EncoderDecoderModel: loss, scoring and decoding around the T5 `Transformer` (T5X's API).

Batches are T5X `EncDecFeatureConverter` features: `encoder_input_tokens`,
`decoder_input_tokens`, `decoder_target_tokens`, `decoder_loss_weights` and,
when packed, `encoder_segment_ids`, `decoder_segment_ids`, `*_positions`.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models import decoding
from models import losses
from models.config import T5Config
from models.network import Transformer, unstack_layers

Array = jax.Array
PyTree = Any

EOS_ID = 1
DECODING_METHODS = ("greedy", "beam", "sample")
_DEFAULT_DECODER_PARAMS = {"temperature": 1.0, "topk": 0, "topp": 0.0, "alpha": 0.6}


class EncoderDecoderModel:
  """T5-style encoder-decoder: `loss_fn`, `score_batch`, `predict_batch[_with_aux]`.

  Args:
    config: network hyperparameters (a `T5Config`).
    input_vocabulary / output_vocabulary: seqio vocabularies (kept for the
      trainer's feature conversion and decoding of predictions).
    z_loss: coefficient of the log(Z)^2 auxiliary loss (T5X default 1e-4).
    label_smoothing: mass spread uniformly over non-target ids.
    loss_normalizing_factor: None (sum over tokens), a number, or one of
      "NUM_REAL_TARGET_TOKENS", "NUM_TOTAL_TARGET_TOKENS", "AVERAGE_PER_SEQUENCE".
    decoding_method: "greedy", "beam" (length penalty `alpha`) or "sample"
      (temperature/top-k/top-p); `decoder_params` sets those knobs.
    num_decodes: beams or samples per input (default 4 for beam, 1 otherwise).
    eos_id: decoding stops a row after it writes this id.
  """

  def __init__(self, config: T5Config, *, input_vocabulary=None, output_vocabulary=None,
               z_loss: float = 1e-4, label_smoothing: float = 0.0,
               loss_normalizing_factor: float | str | None = None,
               decoding_method: str = "greedy", decoder_params: Mapping[str, Any] | None = None,
               num_decodes: int | None = None, eos_id: int = EOS_ID):
    if decoding_method not in DECODING_METHODS:
      raise ValueError(f"decoding_method must be one of {DECODING_METHODS}, got {decoding_method!r}")
    self.config = config
    self.module = Transformer(config)
    self.input_vocabulary = input_vocabulary
    self.output_vocabulary = output_vocabulary
    self.z_loss = z_loss
    self.label_smoothing = label_smoothing
    self.loss_normalizing_factor = loss_normalizing_factor
    self.decoding_method = decoding_method
    self.decoder_params = {**_DEFAULT_DECODER_PARAMS, **(decoder_params or {})}
    self.num_decodes = num_decodes
    self.eos_id = eos_id
    # Incremental decoding always runs unscanned layers (cache leaves keep batch first).
    self._decode_module = Transformer(config.replace(scan_layers=False, remat_policy="none"))
    self._predict_jit = jax.jit(self._predict, static_argnames=(
        "method", "num_decodes", "temperature", "topk", "topp", "alpha", "max_decode_steps"))

  # ------------------------------------------------------------------ init
  def get_initial_variables(self, rng: Array, input_shapes: Mapping[str, tuple[int, ...]],
                            input_types: Mapping[str, Any] | None = None) -> PyTree:
    """Variables with logical-axis metadata (`nn.get_partition_spec` works on them)."""
    input_types = input_types or {}
    def zeros(name, like=None):
      shape = input_shapes.get(name) or input_shapes[like]
      return jnp.zeros(shape, input_types.get(name, jnp.int32))
    return self.module.init(
        {"params": rng, "dropout": rng},
        zeros("encoder_input_tokens"), zeros("decoder_input_tokens"),
        zeros("decoder_target_tokens", "decoder_input_tokens"), enable_dropout=False)

  # ------------------------------------------------------------------ logits
  def compute_logits(self, params: PyTree, batch: Mapping[str, Array],
                     dropout_rng: Array | None = None) -> Array:
    """Full teacher-forced forward pass; dropout on iff `dropout_rng` is given."""
    rngs = {"dropout": dropout_rng} if dropout_rng is not None else None
    return self.module.apply(
        {"params": nn.unbox(params)},
        batch["encoder_input_tokens"], batch["decoder_input_tokens"], batch["decoder_target_tokens"],
        batch.get("encoder_segment_ids"), batch.get("decoder_segment_ids"),
        batch.get("encoder_positions"), batch.get("decoder_positions"),
        enable_dropout=dropout_rng is not None, rngs=rngs)

  def loss_fn(self, params: PyTree, batch: Mapping[str, Array],
              dropout_rng: Array | None) -> tuple[Array, dict[str, Array]]:
    """(loss, metrics). Metrics are scalars: loss, z_loss, cross_ent_loss, accuracy,
    correct, weight_sum (sum of loss weights), num_tokens (nonpadding targets),
    num_examples."""
    logits = self.compute_logits(params, batch, dropout_rng)
    targets = batch["decoder_target_tokens"]
    factor, weights = losses.loss_normalizing_factor_and_weights(self.loss_normalizing_factor, batch)
    loss, z_loss, _ = losses.compute_weighted_cross_entropy(
        logits, targets, weights, self.label_smoothing, self.z_loss, factor)
    real_weights = batch.get("decoder_loss_weights")
    real_weights = (targets > 0) if real_weights is None else real_weights
    real_weights = real_weights.astype(jnp.float32)
    weight_sum = jnp.sum(real_weights)
    correct = jnp.sum((decoding.first_argmax(logits) == targets) * real_weights)
    segments = batch.get("decoder_segment_ids")
    num_examples = (jnp.sum(jnp.max(segments, axis=1)) if segments is not None
                    else jnp.sum(jnp.any(targets > 0, axis=1)))
    metrics = {
        "loss": loss, "z_loss": z_loss, "cross_ent_loss": loss - z_loss,
        "accuracy": correct / jnp.maximum(weight_sum, 1.0), "correct": correct,
        "weight_sum": weight_sum, "num_tokens": jnp.sum(targets > 0).astype(jnp.float32),
        "num_examples": num_examples.astype(jnp.float32),
    }
    return loss, metrics

  def score_batch(self, params: PyTree, batch: Mapping[str, Array]) -> Array:
    """[B] sum of log p(target token) over weighted positions (option ranking)."""
    logits = self.compute_logits(params, batch).astype(jnp.float32)
    targets = batch["decoder_target_tokens"]
    weights = batch.get("decoder_loss_weights")
    weights = (targets > 0) if weights is None else weights
    token_scores = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]
    return jnp.sum(token_scores * weights.astype(jnp.float32), axis=-1)

  # ------------------------------------------------------------------ decoding
  def _decoding_params(self, params: PyTree) -> PyTree:
    params = nn.unbox(params)
    return unstack_layers(params, self.config) if self.config.scan_layers else params

  def init_cache(self, params: PyTree, encoder_input_tokens: Array, max_decode_length: int) -> PyTree:
    """Runs the encoder once and builds the decoding cache for `max_decode_length` positions:
    empty self-attention caches plus the projected cross-attention keys/values."""
    module = self._decode_module
    encoded = module.apply({"params": params}, encoder_input_tokens, enable_dropout=False,
                           method=module.encode)
    batch = encoder_input_tokens.shape[0]
    dummy = jnp.zeros((batch, 1), jnp.int32)
    _, variables = module.apply(
        {"params": params}, encoded, encoder_input_tokens, dummy, dummy, enable_dropout=False,
        decode=True, max_decode_length=max_decode_length, mutable=["cache"], method=module.decode)
    return variables["cache"]

  def tokens_to_logits_fn(self, params: PyTree, max_decode_length: int):
    """tokens_to_logits(token_ids [B, 1], cache) -> (logits [B, V] float32, cache)."""
    module = self._decode_module
    def tokens_to_logits(token_ids, cache):
      logits, variables = module.apply(
          {"params": params, "cache": cache}, None, None, token_ids, None, enable_dropout=False,
          decode=True, max_decode_length=max_decode_length, mutable=["cache"], method=module.decode)
      return logits[:, 0, :].astype(jnp.float32), variables["cache"]
    return tokens_to_logits

  def _predict(self, params, encoder_input_tokens, decoder_prompt, rng, *, method, num_decodes,
               temperature, topk, topp, alpha, max_decode_steps):
    params = self._decoding_params(params)
    length = decoder_prompt.shape[1]
    cache = self.init_cache(params, encoder_input_tokens, length)
    tokens_to_logits = self.tokens_to_logits_fn(params, length)
    if method == "beam":
      return decoding.beam_search(decoder_prompt, cache, tokens_to_logits, self.eos_id,
                                  num_decodes=num_decodes, alpha=alpha,
                                  max_decode_len=max_decode_steps)
    return decoding.temperature_sample(
        decoder_prompt, cache, tokens_to_logits, self.eos_id, decode_rng=rng,
        num_decodes=num_decodes, temperature=0.0 if method == "greedy" else temperature,
        topk=topk, topp=topp, max_decode_steps=max_decode_steps)

  def predict_batch_with_aux(self, params: PyTree, batch: Mapping[str, Array], rng: Array | None = None,
                             *, decoder_params: Mapping[str, Any] | None = None,
                             num_decodes: int | None = None, return_all_decodes: bool = False,
                             method: str | None = None, max_decode_steps: int | None = None
                             ) -> tuple[Array, dict[str, Array]]:
    """Decodes `batch`; returns (tokens, {"scores": ...}).

    tokens: [B, L] best decode (or [B, num_decodes, L] with return_all_decodes),
    L = decoder_input_tokens length (the cache length); PAD after EOS. Scores
    are log-probabilities (beam: length-penalised). The values of
    `decoder_input_tokens` are ignored (only its length counts): decoding
    starts from BOS, as T5X without `prompt_with_targets`.
    Compiles once per (shapes, method, decoder params).
    """
    method = method or self.decoding_method
    if method not in DECODING_METHODS:
      raise ValueError(f"method must be one of {DECODING_METHODS}, got {method!r}")
    knobs = {**self.decoder_params, **(decoder_params or {})}
    num_decodes = num_decodes or knobs.get("num_decodes") or self.num_decodes or (
        4 if method == "beam" else 1)
    decoder_prompt = jnp.zeros_like(jnp.asarray(batch["decoder_input_tokens"], jnp.int32))
    length = decoder_prompt.shape[1]
    if max_decode_steps is not None and max_decode_steps > length:
      raise ValueError(f"max_decode_steps={max_decode_steps} exceeds the decoding cache length "
                       f"{length} (the decoder_input_tokens length); use longer decoder features")
    if rng is None:
      rng = jax.random.PRNGKey(0)
    sequences, scores = self._predict_jit(
        params, jnp.asarray(batch["encoder_input_tokens"], jnp.int32), decoder_prompt, rng,
        method=method, num_decodes=num_decodes, temperature=float(knobs["temperature"]),
        topk=int(knobs["topk"]), topp=float(knobs["topp"]), alpha=float(knobs["alpha"]),
        max_decode_steps=max_decode_steps)
    if return_all_decodes:
      return sequences, {"scores": scores}
    best = jnp.argmax(scores, axis=1)
    tokens = jnp.take_along_axis(sequences, best[:, None, None], axis=1)[:, 0]
    return tokens, {"scores": jnp.take_along_axis(scores, best[:, None], axis=1)[:, 0]}

  def predict_batch(self, params: PyTree, batch: Mapping[str, Array], rng: Array | None = None,
                    **kwargs) -> Array:
    return self.predict_batch_with_aux(params, batch, rng, **kwargs)[0]
