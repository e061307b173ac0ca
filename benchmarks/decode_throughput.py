r"""Decoding speed: our jit-compiled decoder vs Hugging Face `generate`, same weights.

A random Hugging Face T5 v1.1-shaped model (PERFORMANCE.md "tiny": d_model 256,
d_ff 1024, 4+4 layers, 4 heads, d_kv 64, vocab 32128, gated GELU, separate
head) is saved to a temporary folder and converted with
`models.hf_checkpoints`, so both sides run exactly the same weights on the
same random inputs. Both generate exactly `--new_tokens` tokens per sentence:
EOS is switched off on both sides (HF `eos_token_id=None`, ours `eos_id=-1`),
so a random model's early EOS cannot shorten one side's work.

Reported per (method, batch size): generated tokens/s and sentences/s for
both, their ratio (ours / HF), our first-call time (compilation) apart from the
steady state, the minimum over `--repeats` timed runs that other processes left
quiet (see benchmarks/common.py), and how many greedy tokens agree with HF.
Beside them, the floor of a step on this machine (`step_floor`: the step's
matmul FLOPs at the measured matmul ceiling, or one read of its weights at the
measured read bandwidth), so `HF / floor` bounds the ratio any decoder could
reach against HF here.

Run (on a quiet machine; the peer runs in the same invocation):
  .venv/bin/python benchmarks/decode_throughput.py
  .venv/bin/python benchmarks/decode_throughput.py --batch_sizes=1 --repeats=1  # smoke run
Writes benchmarks/results/decode_throughput.{json,md}.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position

# HF T5Config fields per size (T5 v1.1 layouts, see PERFORMANCE.md).
MODEL_SIZES = {
    "tiny": dict(d_model=256, d_ff=1024, num_layers=4, num_decoder_layers=4, num_heads=4,
                 d_kv=64, vocab_size=32128),
    "small": dict(d_model=512, d_ff=1024, num_layers=8, num_decoder_layers=8, num_heads=6,
                  d_kv=64, vocab_size=32128),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--model_size", default="tiny", choices=sorted(MODEL_SIZES))
  parser.add_argument("--hf_folder", default=None,
                      help="an existing HF T5 folder to benchmark instead of a random model")
  parser.add_argument("--batch_sizes", default="1,8,32")
  parser.add_argument("--methods", default="greedy,beam", help="greedy and/or beam")
  parser.add_argument("--num_beams", type=int, default=4)
  parser.add_argument("--new_tokens", type=int, default=64)
  parser.add_argument("--input_length", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--max_extra_runs", type=int, default=3,
                      help="extra runs allowed per measurement to replace busy ones")
  parser.add_argument("--busy_threshold", type=float, default=0.2,
                      help="cores used by other processes above which a run counts as busy")
  parser.add_argument("--torch_threads", type=int, default=0,
                      help="torch intra-op threads (0: torch's default, one per core). On a "
                      "machine that other processes keep busy, 2 threads on 2 cores collapse "
                      "(OpenMP barriers spin), so compare only quiet runs")
  parser.add_argument("--matmul_size", type=int, default=2048,
                      help="n of the n x n x n fp32 matmul timed as the CPU FLOP/s ceiling")
  parser.add_argument("--no_floor", action="store_true",
                      help="skip measuring the matmul and read ceilings (no floor column)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--results_dir", default=common.RESULTS_DIR)
  parser.add_argument("--name", default="decode_throughput")
  return parser.parse_args(argv)


def build_hf_folder(size: str, folder: str, seed: int) -> None:
  """Saves a random T5 v1.1-shaped model with its own (untied) LM head."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  config = transformers.T5Config(**MODEL_SIZES[size], feed_forward_proj="gated-gelu",
                                 tie_word_embeddings=False, dropout_rate=0.0,
                                 decoder_start_token_id=0)
  model = transformers.T5ForConditionalGeneration(config)
  # transformers 5.x ties a freshly built head; real v1.1 checkpoints keep their own.
  model.lm_head.weight = torch.nn.Parameter(
      torch.randn(config.vocab_size, config.d_model) * config.d_model ** -0.5)
  model.save_pretrained(folder)


class HfDecoder:
  """`generate` on the HF model; exactly `new_tokens` tokens, EOS disabled."""

  def __init__(self, folder: str, new_tokens: int, threads: int = 0):
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top
    self.torch = torch
    if threads:
      torch.set_num_threads(threads)
    self.model = transformers.T5ForConditionalGeneration.from_pretrained(
        folder, dtype=torch.float32).eval()
    self.new_tokens = new_tokens
    self.generation_config = transformers.GenerationConfig(
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=None, do_sample=False,
        max_new_tokens=new_tokens, use_cache=True)

  def __call__(self, inputs: np.ndarray, num_beams: int) -> np.ndarray:
    torch = self.torch
    ids = torch.from_numpy(inputs).long()
    generation_config = copy.deepcopy(self.generation_config)
    generation_config.num_beams = num_beams
    with torch.inference_mode():
      out = self.model.generate(input_ids=ids, attention_mask=ids > 0,
                                generation_config=generation_config)
    return out.numpy()[:, 1:]  # Drop the decoder start token.


class OurDecoder:
  """`EncoderDecoderModel.predict_batch`, jit-compiled once per shape and method."""

  def __init__(self, folder: str, new_tokens: int):
    import jax  # pylint: disable=g-import-not-at-top
    from models import hf_checkpoints  # pylint: disable=g-import-not-at-top
    from models.models import EncoderDecoderModel  # pylint: disable=g-import-not-at-top
    self.jax = jax
    config, params = hf_checkpoints.load_hf_checkpoint(folder, dtype="float32", dropout_rate=0.0)
    self.config = config
    self.params = jax.device_put(params)
    self.model = EncoderDecoderModel(config, eos_id=-1)  # Never stops early, like HF's side.
    self.new_tokens = new_tokens

  def __call__(self, inputs: np.ndarray, num_beams: int) -> np.ndarray:
    batch = {"encoder_input_tokens": inputs,
             "decoder_input_tokens": np.zeros((inputs.shape[0], self.new_tokens), np.int32)}
    if num_beams > 1:
      tokens = self.model.predict_batch(self.params, batch, method="beam", num_decodes=num_beams)
    else:
      tokens = self.model.predict_batch(self.params, batch, method="greedy")
    return np.asarray(self.jax.block_until_ready(tokens))


def decoder_weight_count(config) -> int:
  """Weights one decoding step multiplies by: decoder layers (cross-attention
  keys/values excluded: projected once) and the LM head."""
  d, inner = config.emb_dim, config.num_heads * config.head_dim
  per_layer = 4 * d * inner + 2 * d * inner + len(config.mlp_activations) * d * config.mlp_dim \
      + config.mlp_dim * d
  return config.num_decoder_layers * per_layer + d * config.vocab_size


def step_floor(config, rows: int, input_length: int, new_tokens: int,
               flops_per_s: float, bytes_per_s: float) -> dict[str, float]:
  """The least time a decoding step of `rows` sequences can take on this machine.

  Its matmul FLOPs at the measured matmul ceiling, or one read of every weight
  it uses at the measured read bandwidth, whichever is larger. Per-op
  overhead, softmaxes and the argmax or top-k are left out, so no
  implementation (ours or HF) can run a step faster than this.
  """
  weights = decoder_weight_count(config)
  inner = config.num_heads * config.head_dim
  mean_keys = (new_tokens + 1) / 2  # self-attention reads the positions so far
  attention = config.num_decoder_layers * 4 * inner * (mean_keys + input_length)
  flops = rows * (2 * weights + attention)
  weight_bytes = 4 * weights  # float32
  compute_s, read_s = flops / flops_per_s, weight_bytes / bytes_per_s
  return {"flops": float(flops), "weight_bytes": float(weight_bytes),
          "compute_s": compute_s, "read_s": read_s, "floor_s": max(compute_s, read_s)}


def measure(decoder, inputs: np.ndarray, num_beams: int, args) -> dict[str, Any]:
  start = time.perf_counter()
  first_tokens = decoder(inputs, num_beams)  # Compiles (ours) or warms up (HF).
  first_call_s = time.perf_counter() - start
  summary = common.time_repeats(lambda: decoder(inputs, num_beams), repeats=args.repeats,
                                busy_threshold=args.busy_threshold,
                                max_extra_runs=args.max_extra_runs)
  generated = inputs.shape[0] * args.new_tokens
  return {
      "first_call_s": first_call_s,
      "compile_s": max(0.0, first_call_s - summary.best_s),
      "tokens_per_s": generated / summary.best_s,
      "sentences_per_s": inputs.shape[0] / summary.best_s,
      "timing": summary.to_json(),
      "tokens": first_tokens,
  }


def run(args: argparse.Namespace) -> dict[str, Any]:
  batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
  methods = [m for m in args.methods.split(",") if m]
  for method in methods:
    if method not in ("greedy", "beam"):
      raise ValueError(f"--methods: unknown method {method!r} (greedy, beam)")
  with tempfile.TemporaryDirectory() as tmp:
    folder = args.hf_folder
    if folder is None:
      folder = os.path.join(tmp, "hf_model")
      build_hf_folder(args.model_size, folder, args.seed)
    ours, theirs = OurDecoder(folder, args.new_tokens), HfDecoder(folder, args.new_tokens, args.torch_threads)
  vocab = ours.config.vocab_size
  ceilings = None
  if not args.no_floor:
    ceilings = {
        "matmul": common.cpu_matmul_ceiling(args.matmul_size, max(args.repeats, 3),
                                            args.busy_threshold),
        "read": common.cpu_read_bandwidth(4 * decoder_weight_count(ours.config),
                                          max(args.repeats, 3), args.busy_threshold)}
  rng = np.random.default_rng(args.seed)
  rows = []
  for method in methods:
    num_beams = args.num_beams if method == "beam" else 1
    for batch_size in batch_sizes:
      inputs = rng.integers(2, vocab, size=(batch_size, args.input_length)).astype(np.int32)
      print(f"[decode_throughput] {method} batch {batch_size} ...", file=sys.stderr, flush=True)
      our_result = measure(ours, inputs, num_beams, args)
      hf_result = measure(theirs, inputs, num_beams, args)
      our_tokens, hf_tokens = our_result.pop("tokens"), hf_result.pop("tokens")
      agreement = None
      if our_tokens.shape == hf_tokens.shape:
        agreement = float(np.mean(our_tokens == hf_tokens))
      floor = None
      if ceilings:
        floor = step_floor(ours.config, batch_size * num_beams, args.input_length,
                           args.new_tokens, ceilings["matmul"]["flops_per_s"],
                           ceilings["read"]["bytes_per_s"])
      rows.append({
          "method": method, "num_beams": num_beams, "batch_size": batch_size,
          "floor": floor,
          "new_tokens": args.new_tokens, "input_length": args.input_length,
          "ours": our_result, "hf": hf_result,
          "ratio_tokens_per_s": our_result["tokens_per_s"] / hf_result["tokens_per_s"],
          "token_agreement": agreement,
          "all_quiet": our_result["timing"]["all_quiet"] and hf_result["timing"]["all_quiet"],
      })
  return {
      "benchmark": args.name,
      "settings": {key: value for key, value in vars(args).items() if key != "results_dir"},
      "model": {"size": args.model_size if args.hf_folder is None else args.hf_folder,
                "config": dataclasses.asdict(ours.config),
                "num_params": int(sum(np.size(x) for x in
                                      ours.jax.tree_util.tree_leaves(ours.params)))},
      "torch_threads": theirs.torch.get_num_threads(),
      "ceilings": ceilings,
      "machine": common.machine_info(),
      "rows": rows,
  }


def _step_ms(side: dict[str, Any], row: dict[str, Any]) -> float:
  """Wall time per generated position (encoder and setup spread over the steps)."""
  return 1e3 * row["batch_size"] / side["tokens_per_s"]


def to_markdown(result: dict[str, Any]) -> str:
  headers = ["method", "batch", "new tokens", "ours tok/s", "HF tok/s", "ours / HF",
             "ours sent/s", "HF sent/s", "ours ms/step", "HF ms/step", "floor ms/step",
             "HF / floor", "ours compile s", "greedy agreement", "quiet"]
  table = []
  for row in result["rows"]:
    agreement = row["token_agreement"]
    floor = row.get("floor")
    floor_ms = 1e3 * floor["floor_s"] if floor else None
    hf_ms = _step_ms(row["hf"], row)
    table.append([
        row["method"] + (f" {row['num_beams']}" if row["num_beams"] > 1 else ""),
        row["batch_size"], row["new_tokens"], row["ours"]["tokens_per_s"],
        row["hf"]["tokens_per_s"], f"{row['ratio_tokens_per_s']:.2f}x",
        row["ours"]["sentences_per_s"], row["hf"]["sentences_per_s"],
        _step_ms(row["ours"], row), hf_ms,
        floor_ms if floor_ms is not None else "-",
        f"{hf_ms / floor_ms:.2f}x" if floor_ms else "-",
        row["ours"]["compile_s"],
        f"{agreement:.0%}" if agreement is not None and row["num_beams"] == 1 else "-",
        "yes" if row["all_quiet"] else "NO (busy machine)"])
  model = result["model"]
  parts = [
      "## Decode throughput: ours (JAX, jit) vs Hugging Face generate",
      f"Model: random T5 v1.1 {model['size']} ({model['num_params'] / 1e6:.1f}M params), "
      f"float32 on CPU, input length {result['settings']['input_length']}, "
      f"exactly {result['settings']['new_tokens']} new tokens per sentence (EOS off), "
      f"min over {result['settings']['repeats']} quiet runs; torch threads "
      f"{result['torch_threads']}.",
      common.markdown_table(headers, table)]
  ceilings = result.get("ceilings")
  if ceilings:
    parts.append(
        f"Floor: the least time a step can take here, the larger of its matmul FLOPs at "
        f"the measured matmul ceiling ({ceilings['matmul']['flops_per_s'] / 1e9:.0f} GFLOP/s, "
        f"{ceilings['matmul']['n']}^3 fp32 `jnp.dot`) and one read of every decoder and "
        f"LM-head weight at the measured read bandwidth "
        f"({ceilings['read']['bytes_per_s'] / 1e9:.0f} GB/s over "
        f"{ceilings['read']['bytes'] / 2**20:.0f} MiB). `HF / floor` is therefore the most any "
        f"decoder could beat HF by on this machine.")
  parts.append(common.machine_markdown(result["machine"]))
  return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  result = run(args)
  markdown = to_markdown(result)
  common.report(result, markdown, args.name, args.results_dir)


if __name__ == "__main__":
  main()
