"""A tiny stand-in with EncoderDecoderModel's API, so trainer tests need no real network.

It has boxed logical axes (so sharding is exercised on every kind of axis),
dropout (so the rng path is exercised), a weighted cross-entropy and a greedy
`predict_batch`; it is not a transformer and does not need to be.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest


@dataclasses.dataclass(frozen=True)
class StandInConfig:
  vocab_size: int = 384
  emb_dim: int = 16
  mlp_dim: int = 32
  num_heads: int = 4
  head_dim: int = 4
  num_encoder_layers: int = 1
  num_decoder_layers: int = 1
  mlp_activations: tuple[str, ...] = ("relu",)
  dropout_rate: float = 0.1


class StandInNetwork(nn.Module):
  config: StandInConfig

  def setup(self):
    c = self.config
    init = nn.initializers.normal(0.1)
    self.embedding = self.param(
        "token_embedder", nn.with_logical_partitioning(init, ("vocab", "embed")),
        (c.vocab_size, c.emb_dim))
    self.wi = self.param("wi", nn.with_logical_partitioning(init, ("embed", "mlp")),
                         (c.emb_dim, c.mlp_dim))
    self.wo = self.param("wo", nn.with_logical_partitioning(init, ("mlp", "embed")),
                         (c.mlp_dim, c.emb_dim))
    self.heads = self.param(
        "heads", nn.with_logical_partitioning(init, ("embed", "heads", "kv")),
        (c.emb_dim, c.num_heads, c.head_dim))
    self.scale = self.param("scale", nn.with_logical_partitioning(
        nn.initializers.ones, ("embed",)), (c.emb_dim,))
    self.dropout = nn.Dropout(c.dropout_rate)

  def __call__(self, encoder_tokens, decoder_tokens, deterministic: bool = True):
    enc = self.embedding[encoder_tokens]
    enc = nn.with_logical_constraint(enc, ("batch", "length", "embed"))
    mask = (encoder_tokens > 0)[..., None]
    context = (enc * mask).sum(1) / jnp.maximum(mask.sum(1), 1)
    dec = self.embedding[decoder_tokens] + context[:, None, :]
    # A causal running mean lets each position see the tokens before it.
    dec = jnp.cumsum(dec, axis=1) / jnp.arange(1, dec.shape[1] + 1)[None, :, None]
    h = jnp.einsum("ble,ehk->blhk", dec, self.heads).reshape(dec.shape[:2] + (-1,))
    h = jax.nn.relu(dec @ self.wi + jnp.pad(h, ((0, 0), (0, 0), (0, self.wi.shape[1] - h.shape[-1]))))
    h = self.dropout(h, deterministic=deterministic)
    out = (dec + h @ self.wo) * self.scale
    out = nn.with_logical_constraint(out, ("batch", "length", "embed"))
    return out @ self.embedding.T


class StandInModel:
  """get_initial_variables / loss_fn / predict_batch like models.EncoderDecoderModel."""

  def __init__(self, config: StandInConfig | None = None):
    self.config = config or StandInConfig()
    self.module = StandInNetwork(self.config)

  def get_initial_variables(self, rng, input_shapes, input_types=None):
    enc = jnp.ones(input_shapes["encoder_input_tokens"], jnp.int32)
    dec = jnp.ones(input_shapes["decoder_input_tokens"], jnp.int32)
    return self.module.init(rng, enc, dec)

  def loss_fn(self, params, batch, dropout_rng):
    rngs = {"dropout": dropout_rng} if dropout_rng is not None else None
    logits = self.module.apply(
        {"params": params}, batch["encoder_input_tokens"],
        batch["decoder_input_tokens"], deterministic=dropout_rng is None, rngs=rngs)
    targets = batch["decoder_target_tokens"]
    weights = batch.get("decoder_loss_weights", (targets > 0).astype(jnp.float32))
    weights = weights.astype(jnp.float32)
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    denom = jnp.maximum(weights.sum(), 1.0)
    loss = (xent * weights).sum() / denom
    accuracy = ((logits.argmax(-1) == targets) * weights).sum() / denom
    return loss, {"accuracy": accuracy, "z_loss": jnp.zeros(())}

  def predict_batch(self, params, batch, rng=None, **unused_kwargs):
    enc = batch["encoder_input_tokens"]
    length = batch["decoder_input_tokens"].shape[1]
    tokens = jnp.zeros((enc.shape[0], length + 1), jnp.int32)  # BOS = 0

    def body(i, tokens):
      logits = self.module.apply({"params": params}, enc, tokens[:, :-1])
      next_token = logits[:, i].argmax(-1).astype(jnp.int32)
      earlier = jnp.arange(length)[None, :] < i  # outputs already produced
      done = jnp.any(jnp.where(earlier, tokens[:, 1:], 0) == 1, axis=1)
      return tokens.at[:, i + 1].set(jnp.where(done, 0, next_token))

    tokens = jax.lax.fori_loop(0, length, body, tokens)
    return tokens[:, 1:]


def random_batch(batch_size=8, input_length=12, target_length=6, vocab=384, seed=0):
  """An EncDecFeatureConverter-shaped batch of random tokens (EOS-terminated)."""
  r = np.random.RandomState(seed)
  enc = r.randint(2, vocab, (batch_size, input_length)).astype(np.int32)
  tgt = r.randint(2, vocab, (batch_size, target_length)).astype(np.int32)
  tgt[:, -1] = 1
  dec_in = np.concatenate([np.zeros((batch_size, 1), np.int32), tgt[:, :-1]], 1)
  return {"encoder_input_tokens": enc, "decoder_input_tokens": dec_in,
          "decoder_target_tokens": tgt,
          "decoder_loss_weights": (tgt > 0).astype(np.int32)}


def test_standin_model_has_the_model_api():
  model = StandInModel()
  batch = random_batch()
  shapes = {k: v.shape for k, v in batch.items()}
  variables = model.get_initial_variables(jax.random.key(0), shapes)
  specs = nn.get_partition_spec(variables)["params"]
  assert tuple(specs["token_embedder"]) == ("vocab", "embed")
  params = nn.meta.unbox(variables)["params"]
  loss, aux = model.loss_fn(params, batch, jax.random.key(1))
  assert np.isfinite(loss) and 0.0 <= aux["accuracy"] <= 1.0
  out = model.predict_batch(params, batch)
  assert out.shape == batch["decoder_target_tokens"].shape


# --- an in-memory seqio task (bytes vocabulary) for trainer/eval tests ---------
COPY_TASK = "trainer_test_copy"
_WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]


def _copy_examples(split: str, n: int) -> dict[str, list[str]]:
  """inputs 'copy: w1 w2 w3', target 'w1' (a task a model can learn quickly)."""
  r = np.random.RandomState({"train": 0, "validation": 1}[split])
  inputs, targets = [], []
  for _ in range(n):
    words = [_WORDS[i] for i in r.randint(0, len(_WORDS), 3)]
    inputs.append("copy: " + " ".join(words))
    targets.append(words[0])
  return {"inputs": inputs, "targets": targets}


def _copy_metric(targets, predictions):
  correct = 100.0 * float(np.mean([t == p for t, p in zip(targets, predictions)]))
  return {"copy/toy/f1": correct, "copy/average/f1": correct}


def register_copy_task() -> str:
  import seqio
  import tensorflow as tf
  if COPY_TASK in seqio.TaskRegistry.names():
    return COPY_TASK
  sizes = {"train": 256, "validation": 16}

  def dataset_fn(split, shuffle_files=False, seed=None):
    return tf.data.Dataset.from_tensor_slices(_copy_examples(split, sizes[split]))

  vocab = seqio.ByteVocabulary()
  seqio.TaskRegistry.add(
      COPY_TASK,
      source=seqio.FunctionDataSource(dataset_fn, splits=list(sizes)),
      preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos],
      output_features={"inputs": seqio.Feature(vocab), "targets": seqio.Feature(vocab)},
      postprocess_fn=lambda text, example=None, is_target=False: (
          text.decode() if isinstance(text, bytes) else text),
      metric_fns=[_copy_metric])
  return COPY_TASK


register_copy_task()


@pytest.fixture(scope="module")
def reuse_compiled_programs(tmp_path_factory):
  """A persistent XLA cache for one test module: each train() builds new jit
  wrappers, so without it every run recompiles the same step (most of these
  tests' time); with it the program is compiled once and read back."""
  from jax.experimental.compilation_cache import compilation_cache
  settings = {"jax_compilation_cache_dir": str(tmp_path_factory.mktemp("xla_cache")),
              "jax_persistent_cache_min_compile_time_secs": 0.0,
              "jax_persistent_cache_min_entry_size_bytes": 0}
  before = {name: getattr(jax.config, name) for name in settings}
  compilation_cache.reset_cache()
  for name, value in settings.items():
    jax.config.update(name, value)
  yield
  for name, value in before.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()
