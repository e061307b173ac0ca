"""Import and export Hugging Face T5 checkpoints (config.json + safetensors).

A Hugging Face T5 folder maps onto our parameter tree, which is T5X's name for
name. The conversion is a pure rename plus transpose: both T5X and HF T5 fold
the 1/sqrt(head_dim) attention scaling into the query weights, so nothing is
rescaled, and HF `Linear` weights are [out, in] where T5X kernels are [in, out].

One numeric detail needs care, the language-model head:
- T5X `logits_via_embedding=True` (tied, T5 v1.0) computes
  `embedding.attend(y) / sqrt(emb_dim)`.
- HF computes `lm_head(y * d_model**-0.5)` when `config.scale_decoder_outputs`
  (transformers 5.x derives it from `tie_word_embeddings is not False`, and
  saves it in config.json), and `lm_head(y)` otherwise. Transformers 5.x always
  ties `lm_head` to `shared` in a freshly built model, but keeps them apart when
  a checkpoint holds a different `lm_head.weight`.
So on import: tied + scaled -> `logits_via_embedding`; a separate head (or a
tied but unscaled one) -> `decoder/logits_dense/kernel`, with the scale folded
into the kernel when HF would scale an untied head.

Usage:
  config, params = load_hf_checkpoint("/path/to/flan-t5-small")
  save_hf_checkpoint(params, config, "/tmp/exported")  # loadable by
  # transformers.T5ForConditionalGeneration.from_pretrained("/tmp/exported")
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import numpy as np

HF_CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"
PYTORCH_INDEX_FILE = "pytorch_model.bin.index.json"

# HF feed_forward_proj -> our mlp_activations. HF's "gated-gelu" means the tanh
# approximation ("gelu_new"), which is what T5X's "gelu" (flax nn.gelu) computes;
# HF's plain "gelu" is the exact erf form, our "gelu_exact".
_FEED_FORWARD_TO_ACTIVATIONS = {
    "relu": ("relu",),
    "gelu": ("gelu_exact",),
    "gelu_new": ("gelu",),
    "silu": ("silu",),
    "gated-gelu": ("gelu", "linear"),
    "gated-gelu_new": ("gelu", "linear"),
    "gated-relu": ("relu", "linear"),
    "gated-silu": ("silu", "linear"),
}
_ACTIVATIONS_TO_FEED_FORWARD = {
    ("relu",): "relu",
    ("gelu_exact",): "gelu",
    ("gelu",): "gelu_new",
    ("silu",): "silu",
    ("gelu", "linear"): "gated-gelu",
    ("relu", "linear"): "gated-relu",
    ("silu", "linear"): "gated-silu",
}
# Our name for an attention block and its layer norm, per HF sub-layer index.
_ENCODER_SUBLAYERS = (("attention", "pre_attention_layer_norm"),
                      ("mlp", "pre_mlp_layer_norm"))
_DECODER_SUBLAYERS = (("self_attention", "pre_self_attention_layer_norm"),
                      ("encoder_decoder_attention", "pre_cross_attention_layer_norm"),
                      ("mlp", "pre_mlp_layer_norm"))
_HF_ATTENTION_NAMES = {"attention": "SelfAttention",
                       "self_attention": "SelfAttention",
                       "encoder_decoder_attention": "EncDecAttention"}
_HF_PROJECTIONS = (("query", "q"), ("key", "k"), ("value", "v"), ("out", "o"))
_MAX_LISTED_MISMATCHES = 10


class CheckpointMismatchError(ValueError):
  """A checkpoint's parameters do not fit the model: missing, extra or misshapen."""


# --------------------------------------------------------------------------
# Config


def _t5_config_class():
  from models.config import T5Config  # pylint: disable=g-import-not-at-top
  return T5Config


def _hf_scales_decoder_output(hf_config: Mapping[str, Any]) -> bool:
  if "scale_decoder_outputs" in hf_config:
    return bool(hf_config["scale_decoder_outputs"])
  return hf_config.get("tie_word_embeddings", True) is not False


def config_kwargs_from_hf(hf_config: Mapping[str, Any], *,
                          logits_via_embedding: bool) -> dict[str, Any]:
  """T5Config keyword arguments for an HF T5 config.json (as a dict)."""
  model_type = hf_config.get("model_type", "t5")
  if model_type not in ("t5", "mt5"):
    # e.g. umT5 has per-layer relative position biases, which the T5X tree lacks.
    raise ValueError(f"config.json: model_type={model_type!r} is not supported "
                     "(expected 't5' or 'mt5')")
  feed_forward_proj = hf_config.get("feed_forward_proj", "relu")
  if feed_forward_proj not in _FEED_FORWARD_TO_ACTIVATIONS:
    raise ValueError(f"config.json: feed_forward_proj={feed_forward_proj!r} is not "
                     f"supported (one of {sorted(_FEED_FORWARD_TO_ACTIVATIONS)})")
  num_layers = hf_config.get("num_layers", 6)
  return dict(
      vocab_size=hf_config.get("vocab_size", 32128),
      emb_dim=hf_config.get("d_model", 512),
      num_heads=hf_config.get("num_heads", 8),
      num_encoder_layers=num_layers,
      num_decoder_layers=hf_config.get("num_decoder_layers") or num_layers,
      head_dim=hf_config.get("d_kv", 64),
      mlp_dim=hf_config.get("d_ff", 2048),
      mlp_activations=_FEED_FORWARD_TO_ACTIVATIONS[feed_forward_proj],
      dropout_rate=hf_config.get("dropout_rate", 0.1),
      logits_via_embedding=logits_via_embedding,
      relative_attention_num_buckets=hf_config.get("relative_attention_num_buckets", 32),
      relative_attention_max_distance=hf_config.get("relative_attention_max_distance", 128),
      layer_norm_epsilon=hf_config.get("layer_norm_epsilon", 1e-6),
  )


def config_from_hf(hf_config: Mapping[str, Any], *, logits_via_embedding: bool | None = None,
                   **overrides: Any):
  """Our T5Config for an HF config.json dict; `overrides` set e.g. dtype or dropout_rate.

  `logits_via_embedding` defaults to what the config says (tied and scaled);
  `load_hf_checkpoint` decides it from the weights actually present.
  """
  if logits_via_embedding is None:
    logits_via_embedding = (hf_config.get("tie_word_embeddings", True) is not False
                            and _hf_scales_decoder_output(hf_config))
  kwargs = config_kwargs_from_hf(hf_config, logits_via_embedding=logits_via_embedding)
  kwargs.update(overrides)
  config_class = _t5_config_class()
  known = {f.name for f in dataclasses.fields(config_class)}
  unknown = sorted(set(kwargs) - known)
  if unknown:
    raise TypeError(f"T5Config has no fields {unknown}")
  return config_class(**kwargs)


def hf_config_from_t5(config: Any) -> dict[str, Any]:
  """The config.json dict for our T5Config, for `T5ForConditionalGeneration`."""
  activations = tuple(config.mlp_activations)
  if activations not in _ACTIVATIONS_TO_FEED_FORWARD:
    raise ValueError(f"T5Config.mlp_activations={activations} has no Hugging Face "
                     f"equivalent (one of {sorted(_ACTIVATIONS_TO_FEED_FORWARD)})")
  tied = bool(config.logits_via_embedding)
  return {
      "architectures": ["T5ForConditionalGeneration"],
      "model_type": "t5",
      "vocab_size": config.vocab_size,
      "d_model": config.emb_dim,
      "d_kv": config.head_dim,
      "d_ff": config.mlp_dim,
      "num_layers": config.num_encoder_layers,
      "num_decoder_layers": config.num_decoder_layers,
      "num_heads": config.num_heads,
      "relative_attention_num_buckets": config.relative_attention_num_buckets,
      "relative_attention_max_distance": config.relative_attention_max_distance,
      "dropout_rate": config.dropout_rate,
      "layer_norm_epsilon": getattr(config, "layer_norm_epsilon", 1e-6),
      "initializer_factor": 1.0,
      "feed_forward_proj": _ACTIVATIONS_TO_FEED_FORWARD[activations],
      # T5X divides tied logits by sqrt(emb_dim); HF does the same exactly when
      # the head is tied, so both flags follow logits_via_embedding.
      "tie_word_embeddings": tied,
      "scale_decoder_outputs": tied,
      "is_encoder_decoder": True,
      "use_cache": True,
      "pad_token_id": 0,
      "eos_token_id": 1,
      "decoder_start_token_id": 0,
  }


# --------------------------------------------------------------------------
# Parameter name mapping


def _layer_mapping(stack: str, layer: int, mlp_activations: tuple[str, ...]
                   ) -> list[tuple[str, str, bool]]:
  """(our path, HF name, transpose?) for one encoder or decoder block."""
  sublayers = _ENCODER_SUBLAYERS if stack == "encoder" else _DECODER_SUBLAYERS
  ours = f"{stack}/layers_{layer}"
  theirs = f"{stack}.block.{layer}.layer"
  rows = []
  for index, (block, norm) in enumerate(sublayers):
    rows.append((f"{ours}/{norm}/scale", f"{theirs}.{index}.layer_norm.weight", False))
    if block == "mlp":
      gated = len(mlp_activations) > 1
      wi_names = [f"wi_{i}" for i in range(len(mlp_activations))] if gated else ["wi"]
      for name in wi_names + ["wo"]:
        rows.append((f"{ours}/mlp/{name}/kernel",
                     f"{theirs}.{index}.DenseReluDense.{name}.weight", True))
    else:
      hf_block = _HF_ATTENTION_NAMES[block]
      for our_proj, hf_proj in _HF_PROJECTIONS:
        rows.append((f"{ours}/{block}/{our_proj}/kernel",
                     f"{theirs}.{index}.{hf_block}.{hf_proj}.weight", True))
  return rows


def param_name_mapping(config: Any) -> list[tuple[str, str, bool]]:
  """Every (our '/'-joined path, HF state-dict name, transpose?) for `config`.

  The tied head (`logits_via_embedding`) has no row: HF keeps it in `shared`.
  """
  activations = tuple(config.mlp_activations)
  rows = [("token_embedder/embedding", "shared.weight", False)]
  for stack, num_layers in (("encoder", config.num_encoder_layers),
                            ("decoder", config.num_decoder_layers)):
    for layer in range(num_layers):
      rows.extend(_layer_mapping(stack, layer, activations))
    # HF keeps the shared per-stack bias in the first block's self-attention.
    rows.append((f"{stack}/relpos_bias/rel_embedding",
                 f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                 True))
  rows.append(("encoder/encoder_norm/scale", "encoder.final_layer_norm.weight", False))
  rows.append(("decoder/decoder_norm/scale", "decoder.final_layer_norm.weight", False))
  if not config.logits_via_embedding:
    rows.append(("decoder/logits_dense/kernel", "lm_head.weight", True))
  return rows


def expected_param_shapes(config: Any) -> dict[str, tuple[int, ...]]:
  """Shape of every parameter of the (unscanned) T5X tree for `config`."""
  embed, vocab = config.emb_dim, config.vocab_size
  joined_kv = config.num_heads * config.head_dim
  shapes = {}
  for path, _, _ in param_name_mapping(config):
    leaf = path.split("/")
    if path == "token_embedder/embedding":
      shape = (vocab, embed)
    elif leaf[-1] == "scale":
      shape = (embed,)
    elif leaf[-1] == "rel_embedding":
      shape = (config.num_heads, config.relative_attention_num_buckets)
    elif leaf[-2] in ("query", "key", "value"):
      shape = (embed, joined_kv)
    elif leaf[-2] == "out":
      shape = (joined_kv, embed)
    elif leaf[-2].startswith("wi"):
      shape = (embed, config.mlp_dim)
    elif leaf[-2] == "wo":
      shape = (config.mlp_dim, embed)
    elif leaf[-2] == "logits_dense":
      shape = (embed, vocab)
    else:
      raise AssertionError(f"no shape rule for {path}")
    shapes[path] = shape
  return shapes


# --------------------------------------------------------------------------
# Tree helpers


def flatten_params(params: Mapping[str, Any]) -> dict[str, Any]:
  """{'a/b/c': leaf} for a nested dict (FrozenDict, flax boxed leaves unboxed)."""
  flat = {}

  def visit(prefix: str, node: Any) -> None:
    if hasattr(node, "unbox") and not isinstance(node, Mapping):
      node = node.unbox()
    if isinstance(node, Mapping):
      for key, value in node.items():
        visit(f"{prefix}/{key}" if prefix else str(key), value)
    else:
      flat[prefix] = node

  visit("", params)
  return flat


def flatten_params_to_nested(params: Mapping[str, Any]) -> dict[str, Any]:
  """A plain nested dict (flax boxes and FrozenDicts removed)."""
  return unflatten_params(flatten_params(params))


def unflatten_params(flat: Mapping[str, Any]) -> dict[str, Any]:
  nested: dict[str, Any] = {}
  for path, value in flat.items():
    node = nested
    *parents, leaf = path.split("/")
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = value
  return nested


def _strip_variables(params: Mapping[str, Any]) -> Mapping[str, Any]:
  """Accept {'params': tree} (flax variables) as well as the bare tree."""
  if "params" in params and "token_embedder" not in params:
    return params["params"]
  return params


def check_param_shapes(found: Mapping[str, tuple[int, ...]],
                       expected: Mapping[str, tuple[int, ...]], *, source: str,
                       hf_names: Mapping[str, str] | None = None) -> None:
  """Raises CheckpointMismatchError listing missing, unexpected and misshapen paths."""
  hf_names = hf_names or {}
  problems = []
  for path in expected:
    name = f"{path} (HF {hf_names[path]})" if path in hf_names else path
    if path not in found:
      problems.append(f"  {name}: expected {tuple(expected[path])}, found nothing (missing)")
    elif tuple(found[path]) != tuple(expected[path]):
      problems.append(f"  {name}: expected {tuple(expected[path])}, found {tuple(found[path])}")
  for path in found:
    if path not in expected:
      problems.append(f"  {path}: expected nothing, found {tuple(found[path])} (unexpected)")
  if problems:
    shown = problems[:_MAX_LISTED_MISMATCHES]
    more = len(problems) - len(shown)
    raise CheckpointMismatchError(
        f"{source}: {len(problems)} parameter(s) do not match the model config:\n"
        + "\n".join(shown) + (f"\n  ... and {more} more" if more else ""))


# --------------------------------------------------------------------------
# Reading and writing HF folders


def resolve_model_folder(name_or_path: str, *, revision: str | None = None) -> str:
  """A local folder for a path or a Hub id (downloaded with huggingface_hub)."""
  if os.path.isdir(name_or_path):
    return name_or_path
  if os.path.exists(name_or_path) or name_or_path.startswith((".", "/")):
    raise FileNotFoundError(f"{name_or_path}: not a model folder (expected a directory "
                            f"with {HF_CONFIG_FILE} and {SAFETENSORS_FILE})")
  try:
    import huggingface_hub  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise FileNotFoundError(
        f"{name_or_path}: no such folder, and huggingface_hub is not installed to "
        "download it as a Hub id (pip install huggingface_hub)") from e
  try:
    return huggingface_hub.snapshot_download(
        name_or_path, revision=revision,
        allow_patterns=["config.json", "*.safetensors", "*.safetensors.index.json",
                        "generation_config.json"])
  except Exception as e:  # Offline, unknown repo, gated repo, ...
    raise FileNotFoundError(
        f"{name_or_path}: no such local folder, and downloading it from the Hugging "
        f"Face Hub failed ({type(e).__name__}: {e}). Download it where there is "
        "network access and pass the local folder.") from e


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  return load_file(path)


def _read_pytorch_bin(path: str) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"{path}: reading pytorch_model.bin needs torch "
                      "(pip install torch==2.13.0), or convert it to safetensors") from e
  state = torch.load(path, map_location="cpu", weights_only=True)
  return {name: tensor.float().numpy() if tensor.dtype == torch.bfloat16
          else tensor.numpy() for name, tensor in state.items()}


def _read_sharded(folder: str, index_file: str, reader) -> dict[str, np.ndarray]:
  with open(os.path.join(folder, index_file), encoding="utf-8") as f:
    weight_map = json.load(f)["weight_map"]
  state = {}
  for shard in sorted(set(weight_map.values())):
    state.update(reader(os.path.join(folder, shard)))
  return state


def read_hf_state_dict(folder: str) -> dict[str, np.ndarray]:
  """All tensors of an HF folder (safetensors preferred, pytorch_model.bin else)."""
  if os.path.exists(os.path.join(folder, SAFETENSORS_FILE)):
    return _read_safetensors(os.path.join(folder, SAFETENSORS_FILE))
  if os.path.exists(os.path.join(folder, SAFETENSORS_INDEX_FILE)):
    return _read_sharded(folder, SAFETENSORS_INDEX_FILE, _read_safetensors)
  if os.path.exists(os.path.join(folder, PYTORCH_FILE)):
    return _read_pytorch_bin(os.path.join(folder, PYTORCH_FILE))
  if os.path.exists(os.path.join(folder, PYTORCH_INDEX_FILE)):
    return _read_sharded(folder, PYTORCH_INDEX_FILE, _read_pytorch_bin)
  raise FileNotFoundError(f"{folder}: no weights found (looked for {SAFETENSORS_FILE}, "
                          f"{SAFETENSORS_INDEX_FILE}, {PYTORCH_FILE}, {PYTORCH_INDEX_FILE})")


def read_hf_config(folder: str) -> dict[str, Any]:
  path = os.path.join(folder, HF_CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing; a Hugging Face model folder needs its config.json")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


# --------------------------------------------------------------------------
# Conversion


def hf_state_dict_to_params(state_dict: Mapping[str, np.ndarray], hf_config: Mapping[str, Any],
                            *, source: str = "state dict", param_dtype: Any = None,
                            **config_overrides: Any) -> tuple[Any, dict[str, Any]]:
  """(T5Config, nested params) from HF tensors; see the module docstring for the head."""
  # A state dict saved by torch.save repeats a tied head as lm_head.weight.
  separate_head = "lm_head.weight" in state_dict and not (
      "shared.weight" in state_dict
      and np.array_equal(state_dict["lm_head.weight"], state_dict["shared.weight"]))
  scaled = _hf_scales_decoder_output(hf_config)
  config = config_from_hf(hf_config, logits_via_embedding=scaled and not separate_head,
                          **config_overrides)
  flat = {}
  found_shapes = {}
  hf_names = {}
  used = set()
  for path, hf_name, transpose in param_name_mapping(config):
    if path == "decoder/logits_dense/kernel" and not separate_head:
      hf_name = "shared.weight"  # Tied in HF but unscaled: our head is a copy.
    hf_names[path] = hf_name
    if hf_name not in state_dict:
      continue  # Reported as missing below.
    value = np.asarray(state_dict[hf_name])
    used.add(hf_name)
    if transpose:
      value = value.T
    if path == "decoder/logits_dense/kernel" and scaled:
      # HF scales the decoder output before an untied head; T5X never does.
      value = value * np.asarray(config.emb_dim ** -0.5, value.dtype)
    if param_dtype is not None:
      value = value.astype(param_dtype)
    flat[path] = value
    found_shapes[path] = value.shape
  expected = expected_param_shapes(config)
  # HF duplicates the embedding into both stacks, and older checkpoints carry an
  # unused cross-attention bias; neither is a parameter of ours.
  ignorable = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
               "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"}
  if not separate_head:
    ignorable.add("lm_head.weight")
  unexpected = sorted(set(state_dict) - used - ignorable)
  for name in unexpected:
    found_shapes[f"(hf) {name}"] = np.shape(state_dict[name])
  check_param_shapes(found_shapes, expected, source=source, hf_names=hf_names)
  params = unflatten_params(flat)
  if getattr(config, "scan_layers", False):
    from models.network import stack_layers  # pylint: disable=g-import-not-at-top
    params = stack_layers(params, config)
  return config, params


def load_hf_checkpoint(name_or_path: str, *, revision: str | None = None,
                       param_dtype: Any = None, **config_overrides: Any
                       ) -> tuple[Any, dict[str, Any]]:
  """Reads an HF T5 model folder (or Hub id) -> (T5Config, params).

  params is the nested T5X-named tree of numpy arrays (cast to `param_dtype`
  when given); `config_overrides` go to T5Config (e.g. dtype="bfloat16" for
  activations, dropout_rate=0.0, scan_layers=True for the stacked layout). Raises CheckpointMismatchError when tensors
  are missing, unexpected, or misshapen for the config.json.
  """
  folder = resolve_model_folder(name_or_path, revision=revision)
  hf_config = read_hf_config(folder)
  state_dict = read_hf_state_dict(folder)
  return hf_state_dict_to_params(state_dict, hf_config, source=folder,
                                 param_dtype=param_dtype, **config_overrides)


def params_to_hf_state_dict(params: Mapping[str, Any], config: Any, *,
                            dtype: Any = np.float32) -> dict[str, np.ndarray]:
  """HF T5ForConditionalGeneration tensors (numpy, [out, in]) from our params."""
  params = _strip_variables(params)
  if getattr(config, "scan_layers", False):
    from models.network import unstack_layers  # pylint: disable=g-import-not-at-top
    params = unstack_layers(flatten_params_to_nested(params), config)
  flat = {path: np.asarray(value) for path, value in flatten_params(params).items()}
  check_param_shapes({path: value.shape for path, value in flat.items()},
                     expected_param_shapes(config), source="params to export")
  state_dict = {}
  for path, hf_name, transpose in param_name_mapping(config):
    value = flat[path].T if transpose else flat[path]
    state_dict[hf_name] = np.ascontiguousarray(value.astype(dtype))
  return state_dict


def _parse_size(size: int | str) -> int:
  if isinstance(size, int):
    return size
  units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
  text = size.strip().upper()
  for unit, factor in sorted(units.items(), key=lambda item: -len(item[0])):
    if text.endswith(unit):
      return int(float(text[:-len(unit)]) * factor)
  return int(text)


def save_hf_checkpoint(params: Mapping[str, Any], config: Any, folder: str, *,
                       dtype: Any = np.float32, max_shard_size: int | str = "5GB") -> str:
  """Writes config.json + safetensors that `T5ForConditionalGeneration` loads.

  Larger models are split into shards of at most `max_shard_size` bytes with
  the standard `model.safetensors.index.json`. Returns the folder.
  """
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  state_dict = params_to_hf_state_dict(params, config, dtype=dtype)
  hf_config = hf_config_from_t5(config)
  hf_config["dtype"] = np.dtype(dtype).name
  os.makedirs(folder, exist_ok=True)
  shards: list[dict[str, np.ndarray]] = [{}]
  shard_bytes = 0
  limit = _parse_size(max_shard_size)
  for name in sorted(state_dict):
    size = state_dict[name].nbytes
    if shards[-1] and shard_bytes + size > limit:
      shards.append({})
      shard_bytes = 0
    shards[-1][name] = state_dict[name]
    shard_bytes += size
  metadata = {"format": "pt"}  # transformers refuses safetensors without it.
  if len(shards) == 1:
    save_file(shards[0], os.path.join(folder, SAFETENSORS_FILE), metadata=metadata)
  else:
    weight_map = {}
    for i, shard in enumerate(shards):
      file_name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
      save_file(shard, os.path.join(folder, file_name), metadata=metadata)
      weight_map.update({name: file_name for name in shard})
    total = sum(value.nbytes for value in state_dict.values())
    with open(os.path.join(folder, SAFETENSORS_INDEX_FILE), "w", encoding="utf-8") as f:
      json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
  with open(os.path.join(folder, HF_CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(hf_config, f, indent=2, sort_keys=True)
  with open(os.path.join(folder, "generation_config.json"), "w", encoding="utf-8") as f:
    json.dump({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}, f, indent=2)
  return folder
