"""Trainer utilities: dataset configs (T5X's DatasetConfig), model FLOPs, device peaks."""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Mapping, Sequence

from absl import logging
import jax
import seqio
import tensorflow as tf

from models import packing as packing_lib


@dataclasses.dataclass
class DatasetConfig:
  """Where a run's examples come from (T5X's `utils.DatasetConfig`).

  Attributes:
    mixture_or_task_name: a registered seqio task or mixture.
    task_feature_lengths: e.g. {"inputs": 512, "targets": 128}.
    split: "train", "validation", "test".
    batch_size: the GLOBAL batch size (summed over hosts).
    shuffle: shuffle examples (training).
    seed: dataset seed; fixed so that a resumed run sees the same order.
    use_cached: read seqio's cache (prepared with seqio_cache_tasks).
    pack: pack several examples per row (how: `packing`).
    packing: how rows are filled when packing: "first_fit" (models/packing.py:
      each example into the first of several open rows with room) or "seqio"
      (upstream's next-fit: a row closes at the first example that overflows).
    module: module to import so the task is registered (MIXTURE_OR_TASK_MODULE).
    num_epochs: None repeats forever (training).
  """
  mixture_or_task_name: str
  task_feature_lengths: Mapping[str, int]
  split: str = "train"
  batch_size: int = 8
  shuffle: bool = True
  seed: int | None = 0
  use_cached: bool = False
  pack: bool = False
  packing: str = "first_fit"
  module: str | Sequence[str] | None = None
  num_epochs: int | None = None


def import_modules(modules: str | Sequence[str] | None) -> None:
  """Imports MIXTURE_OR_TASK_MODULE(s) so their seqio tasks register."""
  if not modules:
    return
  for name in [modules] if isinstance(modules, str) else modules:
    importlib.import_module(name)


PACKINGS = ("first_fit", "seqio")


def feature_converter(pack: bool, packing: str = "first_fit") -> seqio.FeatureConverter:
  """The encoder-decoder feature converter for a DatasetConfig's pack/packing."""
  if packing not in PACKINGS:
    raise ValueError(f"DatasetConfig.packing must be one of {PACKINGS}, got {packing!r}")
  if pack and packing == "first_fit":
    return packing_lib.FirstFitEncDecFeatureConverter(pack=True)
  return seqio.EncDecFeatureConverter(pack=pack)


def get_dataset(cfg: DatasetConfig, shard_info: seqio.ShardInfo,
                per_host_batch_size: int,
                skip_batches: int = 0) -> tf.data.Dataset:
  """This host's batched feature dataset, positioned after `skip_batches`.

  Skipping replays the deterministic pipeline (same seed, same shard), which
  is how a resumed run gets the exact batches it would have seen.
  """
  import_modules(cfg.module)
  if cfg.shuffle and cfg.seed is None:
    raise ValueError("a shuffled dataset needs a fixed seed to resume "
                     "exactly (DatasetConfig.seed)")
  converter = feature_converter(cfg.pack, cfg.packing)
  ds = seqio.get_dataset(
      cfg.mixture_or_task_name, task_feature_lengths=dict(cfg.task_feature_lengths),
      feature_converter=converter, dataset_split=cfg.split,
      use_cached=cfg.use_cached, shuffle=cfg.shuffle, num_epochs=cfg.num_epochs,
      shard_info=shard_info, verbose=False, seed=cfg.seed,
      batch_size=per_host_batch_size)
  if skip_batches:
    logging.info("Skipping %d batches to resume the data iterator.", skip_batches)
    ds = ds.skip(skip_batches)
  return ds.prefetch(tf.data.AUTOTUNE)


# --- FLOPs and MFU ----------------------------------------------------------------
def _cfg(config: Any, name: str, default: Any = None) -> Any:
  return getattr(config, name, default)


def encoder_decoder_forward_flops(config: Any, batch_size: int, input_length: int,
                                  target_length: int) -> float:
  """Matmul FLOPs (2 per multiply-add) of one forward pass on a padded batch.

  Counts the Q/K/V/O projections, the attention score and value matmuls, the
  MLP (every gated input projection) and the logits; norms, softmax and
  embedding lookups are left out, as in the usual MFU accounting.
  """
  d = _cfg(config, "emb_dim")
  inner = _cfg(config, "num_heads") * _cfg(config, "head_dim")
  mlp = _cfg(config, "mlp_dim")
  n_act = len(_cfg(config, "mlp_activations", ("relu",)))
  vocab = _cfg(config, "vocab_size")
  enc_layers = _cfg(config, "num_encoder_layers")
  dec_layers = _cfg(config, "num_decoder_layers")
  le, ld = input_length, target_length

  mlp_per_token = 2 * d * mlp * n_act + 2 * mlp * d
  enc_per_token = 4 * 2 * d * inner + 2 * 2 * le * inner + mlp_per_token
  dec_per_token = (4 * 2 * d * inner + 2 * 2 * ld * inner  # self-attention
                   + 2 * 2 * d * inner + 2 * 2 * le * inner  # cross q, o, scores
                   + mlp_per_token)
  cross_kv_per_input_token = 2 * 2 * d * inner
  logits_per_token = 2 * d * vocab
  per_example = (enc_layers * le * enc_per_token
                 + dec_layers * (ld * dec_per_token + le * cross_kv_per_input_token)
                 + ld * logits_per_token)
  return float(batch_size * per_example)


def encoder_decoder_train_flops(config: Any, batch_size: int, input_length: int,
                                target_length: int) -> float:
  """Training step FLOPs: forward + backward = 3x forward."""
  return 3.0 * encoder_decoder_forward_flops(config, batch_size, input_length,
                                             target_length)


# Dense peak FLOP/s per device in the precision training uses (bf16 on
# accelerators, fp32 on CPU).
PEAK_FLOPS_BY_DEVICE_KIND = {
    "TPU v2": 45e12 / 2, "TPU v3": 123e12 / 2,  # one jax device per core
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12,
    "TPU v5p": 459e12, "TPU v5": 459e12, "TPU v6 lite": 918e12, "TPU v6e": 918e12,
    "H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12,
}
# This 2-core machine's measured fp32 matmul ceiling (PERFORMANCE.md:
# 150-180 GFLOP/s); the fake CPU devices share it.
CPU_PEAK_FLOPS_PER_HOST = 160e9


def peak_flops_per_device(device: jax.Device | None = None) -> float:
  """Dense peak FLOP/s of one jax device; an unknown kind logs and uses CPU's.

  Override with the trainer's `peak_flops_per_device` (gin) when the table
  is wrong for your hardware.
  """
  device = device or jax.local_devices()[0]
  if device.platform == "cpu":
    return CPU_PEAK_FLOPS_PER_HOST / max(jax.local_device_count(), 1)
  kind = device.device_kind
  for name, peak in PEAK_FLOPS_BY_DEVICE_KIND.items():
    if name.lower() in kind.lower():
      return peak
  logging.warning("Unknown device kind %r: set peak_flops_per_device in gin "
                  "for a meaningful MFU.", kind)
  return CPU_PEAK_FLOPS_PER_HOST
