r"""Evaluates a checkpoint on a mixture's eval split with the IE metrics (T5X's eval.py).

  python -m launch.eval --gin_file=gin/models/tiny.gin --gin_file=gin/runs/eval.gin \
    --gin.MIXTURE_OR_TASK_NAME="'ie_sample_default'" \
    --gin.CHECKPOINT_PATH="'/tmp/ie_t5x/default'" --gin.EVAL_OUTPUT_DIR="'/tmp/ie_eval'"

CHECKPOINT_PATH: one of our runs (its latest step), a step dir, a T5X
checkpoint or a Hugging Face folder. Writes metrics JSON/markdown, the
per-dataset report (JSON, markdown, PNG bar chart; both scoring conventions)
and predictions JSONL under EVAL_OUTPUT_DIR/eval/ and prints the F1 table.

Without a model gin (gin/runs/zeroshot_ner.gin sets
`MODEL = @eval_script.model_for_checkpoint()`), the model's shapes come from
the checkpoint itself: a Hugging Face folder's config.json, or the parameter
shapes of one of our checkpoints or a T5X one. The vocabulary, unless gin binds
`ie_tasks.get_vocabulary.*`, comes from the checkpoint too: a Hugging Face
folder's spiece.model, or the bindings in our run's config.gin.
"""
from __future__ import annotations

import ast
import os
import re
from typing import Any, Mapping, Sequence

from absl import logging
from etils import epath
import gin
import jax
import numpy as np

from launch import gin_utils
from models import checkpoints
from models import evaluation
from models import partitioning as partitioning_lib
from models import trainer as trainer_lib


# --- what a checkpoint needs, and how to get it -------------------------------------
_HOW_TO_GET = (
    "CHECKPOINT_PATH may be (1) one of our runs (<MODEL_DIR> of launch/train.py, "
    "or its checkpoints/<step> dir with a 'state/' folder); (2) a T5X checkpoint: "
    "a checkpoint_<step> dir holding its 'checkpoint' file, e.g. `gsutil -m cp -r "
    "gs://t5-data/pretrained_models/t5x/flan_t5_xxl/checkpoint_1114000 .`, or "
    "the legacy single msgpack file; (3) a Hugging Face T5 folder with "
    "config.json + model.safetensors (or pytorch_model.bin) and spiece.model, "
    "e.g. `huggingface-cli download google/flan-t5-xxl --local-dir flan-t5-xxl`.")
_HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json",
               "pytorch_model.bin", "pytorch_model.bin.index.json")


def check_checkpoint(path: str) -> str:
  """The checkpoint kind ("ours", "t5x", "hf"), or a CheckpointError that
  says which file was looked for and how to get it."""
  p = epath.Path(path)
  if not p.exists():
    raise checkpoints.CheckpointError(
        f"CHECKPOINT_PATH {path!r} does not exist. {_HOW_TO_GET}")
  if p.is_dir():
    names = {c.name for c in p.iterdir()}
    weights = [n for n in _HF_WEIGHTS if n in names]
    if "config.json" in names and not weights:
      raise checkpoints.CheckpointError(
          f"Hugging Face folder {path!r} has config.json but no weights: looked "
          f"for {list(_HF_WEIGHTS)}. Download them too, e.g. `huggingface-cli "
          f"download <hub id> --local-dir {path}`.")
    if "config.json" not in names and any(n.endswith((".safetensors", ".bin"))
                                          for n in names):
      raise checkpoints.CheckpointError(
          f"Hugging Face folder {path!r} has weights but no config.json (the "
          "model's shapes). Download it from the same Hub repository.")
    if re.fullmatch(r"checkpoint_\d+", p.name) and "checkpoint" not in names:
      raise checkpoints.CheckpointError(
          f"T5X checkpoint dir {path!r} lacks its 'checkpoint' file (the "
          f"parameter index); found {sorted(names)[:8]}. Copy the whole "
          "directory, e.g. `gsutil -m cp -r gs://.../checkpoint_<step> .`.")
  kind = checkpoints.checkpoint_kind(path)
  if kind == "ours":
    step_dir = checkpoints.our_step_dir(path)  # raises if no finished step
    if not (epath.Path(step_dir) / checkpoints.STATE_ITEM).exists():
      raise checkpoints.CheckpointError(
          f"{step_dir!r}: no '{checkpoints.STATE_ITEM}/' folder; {_HOW_TO_GET}")
  return kind


def param_shapes(path: str) -> dict[str, tuple[int, ...]]:
  """{"encoder/layers_0/mlp/wi_0/kernel": shape, ...} of ours or a T5X checkpoint."""
  kind = check_checkpoint(path)
  if kind == "ours":
    import orbax.checkpoint as ocp
    step_dir = checkpoints.our_step_dir(path)
    meta = ocp.PyTreeCheckpointer().metadata(
        os.path.join(step_dir, checkpoints.STATE_ITEM))
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)["params"]
  elif kind == "t5x":
    shapes = _t5x_index_shapes(path)
    if shapes is not None:
      return shapes
    from models import t5x_checkpoints
    tree = t5x_checkpoints.load_t5x_checkpoint(path)
  else:
    raise ValueError(f"{path!r} is a Hugging Face folder: read its config.json")
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(str(getattr(k, "key", k)) for k in keys): tuple(leaf.shape)
          for keys, leaf in flat}


def _t5x_index_shapes(path: str) -> dict[str, tuple[int, ...]] | None:
  """Shapes from a T5X checkpoint directory's index alone (no tensor read).

  T5X's tensorstore specs carry each array's zarr metadata, so an 11B
  checkpoint's shapes cost one small file. None for the legacy single-file
  format, or when a spec lacks its shape (then the checkpoint is loaded).
  """
  from flax import serialization
  from models import t5x_checkpoints as t5x
  # pylint: disable=protected-access
  if not t5x._isdir(path):
    return None
  step_dir = t5x._latest_step_dir(path)
  index = f"{step_dir.rstrip('/')}/{t5x.CHECKPOINT_FILE}"
  target = t5x._unflatten_index(t5x._target(
      serialization.msgpack_restore(t5x._read_bytes(index)), index))
  shapes: dict[str, tuple[int, ...]] = {}

  def walk(tree: Any, prefix: str) -> bool:
    if t5x._is_tensorstore_spec(tree):
      shape = (tree.get("metadata") or {}).get("shape")
      if shape is None:
        return False
      shapes[prefix] = tuple(int(d) for d in shape)
      return True
    if isinstance(tree, Mapping):
      return all(walk(v, f"{prefix}/{k}" if prefix else str(k))
                 for k, v in tree.items())
    shapes[prefix] = tuple(np.shape(tree))
    return True

  return shapes if walk(target, "") else None


def config_fields_from_shapes(shapes: Mapping[str, tuple[int, ...]]
                              ) -> dict[str, Any]:
  """T5Config shapes from a T5X-named parameter tree (layers stacked or not).

  Gated MLPs (wi_0, wi_1) are read as T5 v1.1/Flan's ("gelu", "linear"),
  a single wi as T5 v1.0's ("relu",): the only layouts T5X checkpoints use.
  """
  try:
    vocab_size, emb_dim = shapes["token_embedder/embedding"]
    num_heads, buckets = shapes["encoder/relpos_bias/rel_embedding"]
  except KeyError as e:
    raise checkpoints.CheckpointError(
        f"cannot infer the model config: parameter {e} not in the checkpoint; "
        "pass a model gin (e.g. --gin_file=gin/models/flan_t5/base.gin after "
        "the run gin)") from e
  scanned = "encoder/layers/attention/query/kernel" in shapes
  fields: dict[str, Any] = {"vocab_size": vocab_size, "emb_dim": emb_dim,
                            "num_heads": num_heads,
                            "relative_attention_num_buckets": buckets,
                            "scan_layers": scanned}
  for stack in ("encoder", "decoder"):
    if scanned:
      count = shapes[f"{stack}/layers/pre_mlp_layer_norm/scale"][0]
    else:
      count = len({m.group(1) for k in shapes
                   if (m := re.match(rf"{stack}/layers_(\d+)/", k))})
    fields[f"num_{stack}_layers"] = count
  layer = "encoder/layers" if scanned else "encoder/layers_0"
  fields["head_dim"] = shapes[f"{layer}/attention/query/kernel"][-1] // num_heads
  if f"{layer}/mlp/wi_0/kernel" in shapes:
    fields["mlp_dim"] = shapes[f"{layer}/mlp/wi_0/kernel"][-1]
    fields["mlp_activations"] = ("gelu", "linear")
  else:
    fields["mlp_dim"] = shapes[f"{layer}/mlp/wi/kernel"][-1]
    fields["mlp_activations"] = ("relu",)
  fields["logits_via_embedding"] = "decoder/logits_dense/kernel" not in shapes
  return fields


def model_for_checkpoint(checkpoint_path: str, *, vocabulary: Any = None,
                         dropout_rate: float = 0.0, **model_kwargs: Any) -> Any:
  """An EncoderDecoderModel shaped like the checkpoint (no model gin needed).

  Shapes come from a Hugging Face config.json or from the parameter shapes;
  other T5Config fields (dtype, scan_layers, ...) keep their gin bindings,
  e.g. --gin.config.T5Config.dtype="'bfloat16'".
  """
  from models import config as config_lib
  from models import models as models_lib
  kind = check_checkpoint(checkpoint_path)
  if kind == "hf":
    from models import hf_checkpoints
    hf_config = hf_checkpoints.read_hf_config(checkpoint_path)
    fields = hf_checkpoints.config_kwargs_from_hf(
        hf_config, logits_via_embedding=hf_checkpoints.config_from_hf(
            hf_config).logits_via_embedding)
  else:
    fields = config_fields_from_shapes(param_shapes(checkpoint_path))
  fields["dropout_rate"] = dropout_rate
  config = config_lib.T5Config(**fields)
  logging.info("Model config from the %s checkpoint %s: %s", kind,
               checkpoint_path, config)
  return models_lib.EncoderDecoderModel(
      config, input_vocabulary=vocabulary, output_vocabulary=vocabulary,
      **model_kwargs)


def checkpoint_vocabulary_bindings(checkpoint_path: str) -> dict[str, Any]:
  """`ie_tasks.get_vocabulary` arguments the checkpoint itself implies.

  A Hugging Face folder: its spiece.model with T5's 100 sentinel ids. One
  of our runs: the `get_vocabulary` bindings of its config.gin. T5X: none
  (T5's default SentencePiece model).
  """
  kind = check_checkpoint(checkpoint_path)
  if kind == "hf":
    spm = os.path.join(checkpoint_path, "spiece.model")
    return ({"kind": "sentencepiece", "path": spm, "extra_ids": 100}
            if os.path.exists(spm) else {})
  if kind != "ours":
    return {}
  step_dir = epath.Path(checkpoints.our_step_dir(checkpoint_path))
  for folder in (step_dir.parent.parent, step_dir.parent, step_dir):
    config_gin = folder / "config.gin"
    if config_gin.exists():
      # gin wraps a long value onto the next line after a trailing backslash.
      text = re.sub(r"\\\n\s*", " ", config_gin.read_text())
      bindings = {}
      for m in re.finditer(r"^(?:ie_tasks\.)?(?:vocab\.)?get_vocabulary\.(\w+)"
                           r"\s*=\s*(.+)$", text, re.M):
        bindings[m.group(1)] = ast.literal_eval(m.group(2).strip())
      return bindings
  return {}


def bind_checkpoint_vocabulary(checkpoint_path: str) -> dict[str, Any]:
  """Binds the checkpoint's vocabulary unless gin already names one."""
  from ie_tasks import vocab as vocab_lib
  if gin.get_bindings(vocab_lib.get_vocabulary):
    return {}
  bindings = checkpoint_vocabulary_bindings(checkpoint_path)
  for name, value in bindings.items():
    gin.bind_parameter(f"ie_tasks.get_vocabulary.{name}", value)
  if bindings:
    logging.warning("Vocabulary from the checkpoint: %s", bindings)
  return bindings


def load_params(model: Any, partitioner: partitioning_lib.Partitioner,
                checkpoint_path: str, lengths: dict[str, int]) -> tuple[Any, int]:
  """Sharded params from any checkpoint kind, and its step (0 if unknown)."""
  shapes = {"encoder_input_tokens": (1, lengths["inputs"]),
            "decoder_input_tokens": (1, lengths["targets"])}
  abstract, shardings = trainer_lib.abstract_params_and_shardings(model, partitioner, shapes)
  params = checkpoints.load_initial_params(checkpoint_path, abstract, shardings)
  step = 0
  if checkpoints.checkpoint_kind(checkpoint_path) == "ours":
    step = int(os.path.basename(checkpoints.our_step_dir(checkpoint_path)))
  elif m := re.search(r"checkpoint_(\d+)", checkpoint_path):
    step = int(m.group(1))
  return params, step


def evaluate(*, model: Any, evaluator: evaluation.Evaluator, checkpoint_path: str,
             output_dir: str, partitioner: partitioning_lib.Partitioner | None = None,
             score: bool = True) -> dict[str, float]:
  partitioner = partitioner or partitioning_lib.Partitioner()
  check_checkpoint(checkpoint_path)  # before any data is read or compiled
  gin_utils.write_gin_config(output_dir, "eval_config.gin")
  params, step = load_params(model, partitioner, checkpoint_path,
                             evaluator.task_feature_lengths)
  results = evaluator.evaluate(model, params, partitioner, step,
                               output_dir=output_dir, score=score)
  if jax.process_index() == 0:
    print(evaluation.format_console_summary(step, results) if score else
          f"predictions written under {os.path.join(output_dir, 'eval', 'predictions')}",
          flush=True)
    report = os.path.join(output_dir, "eval",
                          f"report_{evaluator.split}_step{step}.md")
    if score and epath.Path(report).exists():
      print(epath.Path(report).read_text(), flush=True)
      print(f"report: {report[:-3]}.{{json,md,png}}", flush=True)
  return results


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {argv[1:]}")
  evaluate_using_gin = gin.configurable(evaluate)
  gin_utils.setup_from_flags()
  try:
    checkpoint_path = gin.query_parameter("%CHECKPOINT_PATH")
  except ValueError:
    checkpoint_path = None
  if isinstance(checkpoint_path, str):
    bind_checkpoint_vocabulary(checkpoint_path)
  evaluate_using_gin()


if __name__ == "__main__":
  gin_utils.run(main)
