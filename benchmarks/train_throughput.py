r"""Training speed: our jitted train step vs Hugging Face `T5ForConditionalGeneration`.

Both sides train the same T5 v1.1 layout (gated GELU, untied LM head, d_kv 64,
vocab 32128) in float32 on the same random batch (B x (inputs + targets)
tokens, every position real), with dropout 0.1 on both, in one invocation:
- ours: `models.trainer.Trainer.train_step` (one jit-compiled step, params and
  optimizer state donated) with optax Adafactor (T5 defaults) or AdamW;
- peer: PyTorch CPU, forward + backward + `transformers.optimization.Adafactor`
  (T5 settings: lr 1e-3, scale_parameter, no relative step) or `torch.optim.AdamW`.

Per (size, optimizer): steady-state step time (the minimum over timed runs that
other processes left quiet, the two sides interleaved so load drift hits both),
tokens/s, compile time (our first step; HF's first step) apart, peak resident
memory of each side, model FLOPs per step (matmuls, 2 per multiply-add, train =
3x forward; `models.utils`) and MFU. On CPU, MFU is against a measured fp32
matmul ceiling (a large `jnp.dot`, timed here and reported). Also our tokens/s
against batch size (for `benchmarks/plots.py`).

On an accelerator (jax's default backend is GPU/TPU) the script instead
measures our step for T5 v1.1 base and large in bfloat16 activations (float32
params) and reports MFU against the device's dense bf16 peak
(`models.utils.PEAK_FLOPS_BY_DEVICE_KIND`: H100/H200 989, A100 312, TPU v4
275, v5e 197 TFLOP/s); no peer there.

Run (quiet machine; about 6-10 minutes on 2 cores):
  .venv/bin/python benchmarks/train_throughput.py
  .venv/bin/python benchmarks/train_throughput.py --update_readme    # also rewrite README's table
  .venv/bin/python benchmarks/train_throughput.py --sizes=tiny --optimizers=adafactor \
      --repeats=1 --batch_sweep= --results_dir=/tmp/bench            # smoke run
Writes <results_dir>/train_throughput.{json,md}.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import types
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position

# HF T5Config fields of the T5 v1.1 sizes (d_kv 64, vocab 32128, gated GELU).
MODEL_SIZES = {
    "tiny": dict(d_model=256, d_ff=1024, num_layers=4, num_decoder_layers=4, num_heads=4),
    "small": dict(d_model=512, d_ff=1024, num_layers=8, num_decoder_layers=8, num_heads=6),
    "base": dict(d_model=768, d_ff=2048, num_layers=12, num_decoder_layers=12, num_heads=12),
    "large": dict(d_model=1024, d_ff=2816, num_layers=24, num_decoder_layers=24, num_heads=16),
}
COMMON_HF_FIELDS = dict(d_kv=64, vocab_size=32128, feed_forward_proj="gated-gelu",
                        tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0,
                        eos_token_id=1)
_STUBBED_MODULES: list[str] = []  # stand-ins installed by _import_trainer_modules
README_BEGIN = "<!-- train_throughput:begin -->"
README_END = "<!-- train_throughput:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--sizes", default=None,
                      help="comma-separated sizes (default: tiny,small on CPU, base,large on an "
                      "accelerator)")
  parser.add_argument("--optimizers", default="adafactor,adamw")
  parser.add_argument("--batch_size", type=int, default=None,
                      help="default 16 on CPU, 64 on an accelerator")
  parser.add_argument("--input_length", type=int, default=None, help="default 128 (CPU), 512")
  parser.add_argument("--target_length", type=int, default=None, help="default 64 (CPU), 128")
  parser.add_argument("--dropout_rate", type=float, default=0.1)
  parser.add_argument("--dtype", default=None,
                      help="activation dtype: float32 (CPU default) or bfloat16 (accelerator)")
  parser.add_argument("--steps_per_run", type=int, default=2, help="train steps per timed run")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--max_extra_runs", type=int, default=3,
                      help="extra rounds allowed per measurement to replace busy ones")
  parser.add_argument("--busy_threshold", type=float, default=0.2,
                      help="cores used by other processes above which a run counts as busy")
  parser.add_argument("--batch_sweep", default="4,8,16,32",
                      help="batch sizes for our tokens/s vs batch size (first size, first "
                      "optimizer); empty to skip")
  parser.add_argument("--sweep_hf", action="store_true", help="also sweep the peer (slow)")
  parser.add_argument("--no_hf", action="store_true", help="skip the Hugging Face peer")
  parser.add_argument("--torch_threads", type=int, default=0,
                      help="torch intra-op threads (0: torch's default, one per core)")
  parser.add_argument("--matmul_size", type=int, default=2048,
                      help="n of the n x n x n fp32 matmul timed as the CPU FLOP/s ceiling")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--results_dir", default=common.RESULTS_DIR)
  parser.add_argument("--name", default="train_throughput")
  parser.add_argument("--update_readme", action="store_true",
                      help="replace the train_throughput section of benchmarks/README.md")
  return parser.parse_args(argv)


# --------------------------------------------------------------------------
# Imports that the accelerator image may lack


def _import_trainer_modules():
  """models.trainer / partitioning / optimizers / utils.

  The accelerator image has jax/flax/optax but not seqio, clu or tensorflow,
  which those modules import for data loading and summaries only (never in
  the train step). Where they are missing, empty stand-ins are installed so
  the step itself can be measured; the report lists them.
  """
  stubbed = _STUBBED_MODULES
  for name in ("seqio", "tensorflow", "clu", "clu.metric_writers"):
    try:
      __import__(name)
    except ImportError:
      module = types.ModuleType(name)
      # The partitioner builds seqio.ShardInfo(index=, num_shards=) to place batches.
      module.ShardInfo = collections.namedtuple("ShardInfo", ["index", "num_shards"])
      sys.modules[name] = module
      if name == "clu.metric_writers":
        sys.modules["clu"].metric_writers = module
      stubbed.append(name)
  from models import optimizers, partitioning, trainer, utils  # pylint: disable=g-import-not-at-top
  return optimizers, partitioning, trainer, utils, list(stubbed)


# --------------------------------------------------------------------------
# The two sides


def hf_config_dict(size: str, dropout_rate: float) -> dict[str, Any]:
  return {**MODEL_SIZES[size], **COMMON_HF_FIELDS, "dropout_rate": dropout_rate,
          "model_type": "t5"}


def random_batch(rng: np.random.Generator, batch_size: int, input_length: int,
                 target_length: int, vocab_size: int) -> dict[str, np.ndarray]:
  """EncDecFeatureConverter-style features; every position is a real token."""
  targets = rng.integers(2, vocab_size, size=(batch_size, target_length)).astype(np.int32)
  decoder_inputs = np.concatenate([np.zeros((batch_size, 1), np.int32), targets[:, :-1]], axis=1)
  return {
      "encoder_input_tokens": rng.integers(2, vocab_size, size=(batch_size, input_length)
                                           ).astype(np.int32),
      "decoder_input_tokens": decoder_inputs,
      "decoder_target_tokens": targets,
      "decoder_loss_weights": np.ones((batch_size, target_length), np.int32),
  }


class OurStep:
  """`Trainer.train_step` on one device; `run(n)` takes n steps and blocks."""

  def __init__(self, size: str, optimizer_name: str, batch: dict[str, np.ndarray], args,
               dtype: str):
    import jax  # pylint: disable=g-import-not-at-top
    from models import hf_checkpoints  # pylint: disable=g-import-not-at-top
    from models.models import EncoderDecoderModel  # pylint: disable=g-import-not-at-top
    optimizers, partitioning, trainer_lib, self.utils, self.stubbed = _import_trainer_modules()
    self.jax = jax
    self.config = hf_checkpoints.config_from_hf(
        hf_config_dict(size, args.dropout_rate), logits_via_embedding=False, dtype=dtype)
    model = EncoderDecoderModel(self.config, z_loss=1e-4,
                                loss_normalizing_factor="NUM_REAL_TARGET_TOKENS")
    optimizer_fn = {"adafactor": optimizers.adafactor, "adamw": optimizers.adamw}[optimizer_name]
    optimizer = optimizers.create_optimizer(optimizer_fn, learning_rate=1e-3)
    self.partitioner = partitioning.Partitioner(devices=jax.devices()[:1])
    self.trainer = trainer_lib.Trainer(model, optimizer, self.partitioner)
    shapes = {k: v.shape for k, v in batch.items()}
    self.state = self.trainer.init_state(jax.random.key(args.seed), shapes)
    self.batch = self.partitioner.shard_batch(batch)
    self.rng = jax.random.key(args.seed + 1)
    self.num_params = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(self.state.params)))
    self.last_loss = None

  def run(self, steps: int) -> None:
    metrics = None
    for _ in range(steps):
      self.state, metrics = self.trainer.train_step(self.state, self.batch, self.rng)
    self.jax.block_until_ready((self.state, metrics))
    self.last_loss = float(metrics["train/loss"])

  def device_memory(self) -> dict[str, Any] | None:
    stats = self.jax.devices()[0].memory_stats()
    if not stats:
      return None
    return {k: stats.get(k) for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")}


class HfStep:
  """forward + backward + optimizer step of `T5ForConditionalGeneration` (PyTorch CPU)."""

  def __init__(self, size: str, optimizer_name: str, batch: dict[str, np.ndarray], args):
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top
    self.torch = torch
    if args.torch_threads:
      torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    fields = {k: v for k, v in hf_config_dict(size, args.dropout_rate).items() if k != "model_type"}
    config = transformers.T5Config(**fields)
    self.model = transformers.T5ForConditionalGeneration(config).train()
    if self.model.lm_head.weight is self.model.shared.weight:  # v1.1 keeps its own head
      self.model.lm_head.weight = torch.nn.Parameter(self.model.shared.weight.detach().clone())
    params = list(self.model.parameters())
    if optimizer_name == "adafactor":
      # T5's fine-tuning settings, as transformers documents them.
      self.optimizer = transformers.optimization.Adafactor(
          params, lr=1e-3, scale_parameter=True, relative_step=False, warmup_init=False,
          clip_threshold=1.0, decay_rate=-0.8)
    else:
      self.optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    self.inputs = {
        "input_ids": torch.from_numpy(batch["encoder_input_tokens"]).long(),
        "attention_mask": torch.from_numpy(batch["encoder_input_tokens"] > 0).long(),
        "decoder_input_ids": torch.from_numpy(batch["decoder_input_tokens"]).long(),
        "labels": torch.from_numpy(np.where(batch["decoder_loss_weights"] > 0,
                                            batch["decoder_target_tokens"], -100)).long(),
    }
    self.num_params = int(sum(p.numel() for p in params))
    self.last_loss = None

  def run(self, steps: int) -> None:
    for _ in range(steps):
      self.optimizer.zero_grad(set_to_none=True)
      loss = self.model(**self.inputs).loss
      loss.backward()
      self.optimizer.step()
    self.last_loss = float(loss.detach())


# --------------------------------------------------------------------------
# Measurements


def _first_run(side, args) -> tuple[float, dict[str, Any]]:
  """Compiles/warms up with one step, measuring its time and the memory peak."""
  common.reset_peak_rss()
  before = common.rss_bytes()["rss"]
  start = time.perf_counter()
  side.run(1)
  first_s = time.perf_counter() - start
  side.run(args.steps_per_run)  # the steady state's buffers (donation, optimizer state) settle
  after = common.rss_bytes()
  memory = {"peak_rss_bytes": after["peak_rss"], "rss_before_bytes": before,
            "peak_rss_increase_bytes": (after["peak_rss"] - before
                                        if after["peak_rss"] and before else None)}
  return first_s, memory


def _side_result(name: str, side, first_s: float, memory: dict[str, Any],
                 summary: common.TimingSummary, tokens_per_step: int, flops_per_step: float,
                 peak_flops: float, steps_per_run: int) -> dict[str, Any]:
  step_s = summary.best_s / steps_per_run
  return {
      "side": name,
      "step_s": step_s,
      "tokens_per_s": tokens_per_step / step_s,
      "first_step_s": first_s,
      "compile_s": max(0.0, first_s - step_s),
      "achieved_flops_per_s": flops_per_step / step_s,
      "mfu": flops_per_step / step_s / peak_flops,
      "memory": memory,
      "num_params": side.num_params,
      "final_loss": side.last_loss,
      "timing": summary.to_json(),
  }


def measure_pair(size: str, optimizer_name: str, batch_size: int, args, dtype: str,
                 peak_flops: float, with_hf: bool) -> dict[str, Any]:
  rng = np.random.default_rng(args.seed)
  batch = random_batch(rng, batch_size, args.input_length, args.target_length,
                       COMMON_HF_FIELDS["vocab_size"])
  tokens_per_step = batch_size * (args.input_length + args.target_length)
  print(f"[train_throughput] {size} {optimizer_name} batch {batch_size} ...", file=sys.stderr,
        flush=True)
  sides: dict[str, Any] = {"ours": OurStep(size, optimizer_name, batch, args, dtype)}
  flops = sides["ours"].utils.encoder_decoder_train_flops(
      sides["ours"].config, batch_size, args.input_length, args.target_length)
  firsts = {"ours": _first_run(sides["ours"], args)}
  if with_hf:
    sides["hf"] = HfStep(size, optimizer_name, batch, args)
    firsts["hf"] = _first_run(sides["hf"], args)
  summaries = common.time_interleaved(
      {name: (lambda s=side: s.run(args.steps_per_run)) for name, side in sides.items()},
      repeats=args.repeats, busy_threshold=args.busy_threshold,
      max_extra_runs=args.max_extra_runs)
  results = {name: _side_result(name, side, *firsts[name], summaries[name], tokens_per_step,
                                flops, peak_flops, args.steps_per_run)
             for name, side in sides.items()}
  device_memory = sides["ours"].device_memory()
  if device_memory:
    results["ours"]["memory"]["device"] = device_memory
  row = {"size": size, "optimizer": optimizer_name, "batch_size": batch_size,
         "input_length": args.input_length, "target_length": args.target_length,
         "dtype": dtype, "tokens_per_step": tokens_per_step, "model_flops_per_step": flops,
         "stubbed_modules": sides["ours"].stubbed, **results,
         "all_quiet": all(r["timing"]["all_quiet"] for r in results.values())}
  if with_hf:
    row["ratio_tokens_per_s"] = results["ours"]["tokens_per_s"] / results["hf"]["tokens_per_s"]
  del sides
  return row


def run(args: argparse.Namespace) -> dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top
  on_cpu = jax.default_backend() == "cpu"
  args.sizes = args.sizes or ("tiny,small" if on_cpu else "base,large")
  args.batch_size = args.batch_size or (16 if on_cpu else 64)
  args.input_length = args.input_length or (128 if on_cpu else 512)
  args.target_length = args.target_length or (64 if on_cpu else 128)
  dtype = args.dtype or ("float32" if on_cpu else "bfloat16")
  with_hf = on_cpu and not args.no_hf
  sizes = [s for s in args.sizes.split(",") if s]
  optimizer_names = [o for o in args.optimizers.split(",") if o]
  for name in sizes:
    if name not in MODEL_SIZES:
      raise ValueError(f"--sizes: unknown size {name!r} (one of {sorted(MODEL_SIZES)})")
  for name in optimizer_names:
    if name not in ("adafactor", "adamw"):
      raise ValueError(f"--optimizers: unknown optimizer {name!r} (adafactor, adamw)")

  _, _, _, utils, _ = _import_trainer_modules()
  if on_cpu:
    ceiling = common.cpu_matmul_ceiling(args.matmul_size, max(args.repeats, 3), args.busy_threshold)
    peak_flops, peak_source = ceiling["flops_per_s"], "measured fp32 matmul ceiling"
  else:
    ceiling = None
    peak_flops = utils.peak_flops_per_device(jax.devices()[0])
    peak_source = f"{jax.devices()[0].device_kind} dense bf16 peak (models/utils.py table)"

  rows = [measure_pair(size, opt, args.batch_size, args, dtype, peak_flops, with_hf)
          for size in sizes for opt in optimizer_names]
  sweep = []
  for batch_size in [int(b) for b in args.batch_sweep.split(",") if b]:
    sweep.append(measure_pair(sizes[0], optimizer_names[0], batch_size, args, dtype, peak_flops,
                              with_hf and args.sweep_hf))
  import torch  # pylint: disable=g-import-not-at-top
  return {
      "benchmark": args.name,
      "settings": {k: v for k, v in vars(args).items() if k != "results_dir"},
      "backend": jax.default_backend(),
      "device_kind": jax.devices()[0].device_kind,
      "peak_flops_per_s": peak_flops,
      "peak_source": peak_source,
      "cpu_matmul_ceiling": ceiling,
      "torch_threads": torch.get_num_threads() if with_hf else None,
      "machine": common.machine_info(),
      "rows": rows,
      "batch_sweep": sweep,
  }


# --------------------------------------------------------------------------
# Reports


def _mib(value: int | None) -> str:
  return "-" if value is None else f"{value / 2**20:,.0f}"


def _memory_cell(side: dict[str, Any]) -> str:
  device = side["memory"].get("device")
  if device and device.get("peak_bytes_in_use"):
    return _mib(device["peak_bytes_in_use"]) + " (device)"
  return _mib(side["memory"].get("peak_rss_increase_bytes"))


def to_markdown(result: dict[str, Any]) -> str:
  s = result["settings"]
  with_hf = any("hf" in row for row in result["rows"])
  headers = ["size", "optimizer", "ours tok/s", "ours step s", "ours compile s", "ours MFU",
             "ours peak MiB"]
  if with_hf:
    headers += ["HF tok/s", "HF step s", "HF MFU", "HF peak MiB", "ours / HF"]
  headers.append("quiet")
  table = []
  for row in result["rows"]:
    ours = row["ours"]
    cells = [row["size"], row["optimizer"], ours["tokens_per_s"], ours["step_s"],
             ours["compile_s"], f"{ours['mfu']:.1%}", _memory_cell(ours)]
    if with_hf:
      hf = row.get("hf")
      cells += ([hf["tokens_per_s"], hf["step_s"], f"{hf['mfu']:.1%}", _memory_cell(hf),
                 f"{row['ratio_tokens_per_s']:.2f}x"] if hf else ["-"] * 5)
    cells.append("yes" if row["all_quiet"] else "NO (busy machine)")
    table.append(cells)
  peak = result["peak_flops_per_s"]
  parts = [
      "## Train throughput: ours (JAX, jitted Trainer.train_step) vs Hugging Face (PyTorch)",
      f"T5 v1.1 layout (gated GELU, untied head, vocab 32128), {result['rows'][0]['dtype']} "
      f"activations, batch {s['batch_size']}, lengths {s['input_length']}/{s['target_length']}, "
      f"dropout {s['dropout_rate']}, random tokens; {s['steps_per_run']} steps per timed run, "
      f"min over {s['repeats']} quiet runs, the sides interleaved. MFU = model FLOPs "
      f"(matmuls, train = 3x forward) / {peak / 1e9:,.0f} GFLOP/s ({result['peak_source']}). "
      f"Peak MiB: rise of the process's resident-set high-water mark during that side's "
      f"first steps (device memory on an accelerator)."
      + (f" Torch threads {result['torch_threads']}." if with_hf else ""),
      common.markdown_table(headers, table),
  ]
  if result["batch_sweep"]:
    sweep_rows = []
    for row in result["batch_sweep"]:
      sweep_rows.append([row["batch_size"], row["ours"]["tokens_per_s"], row["ours"]["step_s"],
                         f"{row['ours']['mfu']:.1%}",
                         row["hf"]["tokens_per_s"] if "hf" in row else "-",
                         "yes" if row["all_quiet"] else "NO"])
    first = result["batch_sweep"][0]
    parts += [f"Tokens/s vs batch size ({first['size']}, {first['optimizer']}):",
              common.markdown_table(["batch", "ours tok/s", "ours step s", "ours MFU",
                                     "HF tok/s", "quiet"], sweep_rows)]
  parts.append(common.machine_markdown(result["machine"]))
  return "\n\n".join(parts)


def update_readme(markdown: str, readme: str) -> None:
  """Replaces the text between the train_throughput markers of benchmarks/README.md."""
  with open(readme, encoding="utf-8") as f:
    text = f.read()
  if README_BEGIN not in text or README_END not in text:
    raise ValueError(f"{readme}: markers {README_BEGIN} / {README_END} not found")
  head, rest = text.split(README_BEGIN, 1)
  _, tail = rest.split(README_END, 1)
  section = markdown.replace("## ", "### ", 1)
  with open(readme, "w", encoding="utf-8") as f:
    f.write(f"{head}{README_BEGIN}\n{section}\n{README_END}{tail}")


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  result = run(args)
  markdown = to_markdown(result)
  common.report(result, markdown, args.name, args.results_dir)
  if args.update_readme:
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")
    update_readme(markdown, readme)
    print(f"updated {readme}")


if __name__ == "__main__":
  main()
