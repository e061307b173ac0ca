"""Hugging Face T5 folders <-> our T5X-named params, checked against transformers itself."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from models import hf_checkpoints  # pylint: disable=g-import-not-at-top

VOCAB = 96
D_MODEL = 16


def _tiny_hf_model(feed_forward_proj: str, tied: bool, seed: int = 0):
  """A random HF T5 with 2 encoder and 3 decoder layers (so the stacks differ)."""
  torch.manual_seed(seed)
  config = transformers.T5Config(
      vocab_size=VOCAB, d_model=D_MODEL, d_kv=4, d_ff=24, num_layers=2, num_decoder_layers=3,
      num_heads=3, relative_attention_num_buckets=8, relative_attention_max_distance=20,
      feed_forward_proj=feed_forward_proj, tie_word_embeddings=tied,
      decoder_start_token_id=0, dropout_rate=0.0)
  model = transformers.T5ForConditionalGeneration(config)
  if not tied:
    # transformers 5.x ties a freshly built head; a real v1.1 checkpoint has its own.
    model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, D_MODEL))
  return model.eval()


def _hf_logits(model, seed: int = 1) -> np.ndarray:
  generator = torch.Generator().manual_seed(seed)
  inputs = torch.randint(2, VOCAB, (2, 9), generator=generator)
  targets = torch.randint(2, VOCAB, (2, 6), generator=generator)
  with torch.no_grad():
    return model(input_ids=inputs, decoder_input_ids=targets).logits.numpy()


@pytest.fixture(scope="module", params=[("relu", True), ("gated-gelu", False)],
                ids=["v1_0_relu_tied", "v1_1_gated_gelu_untied"])
def hf_folder(request, tmp_path_factory):
  feed_forward_proj, tied = request.param
  model = _tiny_hf_model(feed_forward_proj, tied)
  folder = str(tmp_path_factory.mktemp("hf"))
  model.save_pretrained(folder)
  return model, folder


def test_import_yields_the_t5x_tree_and_config(hf_folder):
  model, folder = hf_folder
  config, params = hf_checkpoints.load_hf_checkpoint(folder)
  hf_config = model.config
  assert config.emb_dim == hf_config.d_model and config.head_dim == hf_config.d_kv
  assert (config.num_encoder_layers, config.num_decoder_layers) == (2, 3)
  assert config.relative_attention_num_buckets == 8
  assert config.relative_attention_max_distance == 20
  tied = hf_config.feed_forward_proj == "relu"
  assert config.mlp_activations == (("relu",) if tied else ("gelu", "linear"))
  assert config.logits_via_embedding == tied
  flat = hf_checkpoints.flatten_params(params)
  assert {path: value.shape for path, value in flat.items()} == (
      hf_checkpoints.expected_param_shapes(config))
  assert ("decoder/logits_dense/kernel" in flat) == (not tied)
  mlp_in = "mlp/wi/kernel" if tied else "mlp/wi_1/kernel"
  assert f"decoder/layers_2/{mlp_in}" in flat


def test_import_transposes_linear_weights_and_position_biases(hf_folder):
  model, folder = hf_folder
  _, params = hf_checkpoints.load_hf_checkpoint(folder)
  state = {name: value.numpy() for name, value in model.state_dict().items()}
  query = params["encoder"]["layers_1"]["attention"]["query"]["kernel"]
  np.testing.assert_array_equal(query, state["encoder.block.1.layer.0.SelfAttention.q.weight"].T)
  cross_out = params["decoder"]["layers_2"]["encoder_decoder_attention"]["out"]["kernel"]
  np.testing.assert_array_equal(cross_out, state["decoder.block.2.layer.1.EncDecAttention.o.weight"].T)
  bias = params["decoder"]["relpos_bias"]["rel_embedding"]
  assert bias.shape == (3, 8)  # [heads, buckets], HF keeps [buckets, heads].
  np.testing.assert_array_equal(
      bias, state["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T)
  np.testing.assert_array_equal(params["token_embedder"]["embedding"], state["shared.weight"])


def test_export_round_trip_gives_hf_the_same_model(hf_folder, tmp_path):
  model, folder = hf_folder
  config, params = hf_checkpoints.load_hf_checkpoint(folder)
  exported = hf_checkpoints.save_hf_checkpoint(params, config, str(tmp_path / "export"))
  with open(os.path.join(exported, "config.json"), encoding="utf-8") as f:
    hf_config = json.load(f)
  assert hf_config["architectures"] == ["T5ForConditionalGeneration"]
  assert hf_config["feed_forward_proj"] == model.config.feed_forward_proj
  assert hf_config["tie_word_embeddings"] == config.logits_via_embedding
  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(exported).eval()
  original_state, reloaded_state = model.state_dict(), reloaded.state_dict()
  assert set(original_state) == set(reloaded_state)
  for name, value in original_state.items():
    assert torch.equal(value, reloaded_state[name]), name
  np.testing.assert_array_equal(_hf_logits(reloaded), _hf_logits(model))


def test_sharded_export_is_read_back_through_its_index(hf_folder, tmp_path):
  _, folder = hf_folder
  config, params = hf_checkpoints.load_hf_checkpoint(folder)
  exported = hf_checkpoints.save_hf_checkpoint(params, config, str(tmp_path / "sharded"),
                                               max_shard_size=4000)
  shards = [name for name in os.listdir(exported) if name.endswith(".safetensors")]
  assert len(shards) > 1 and "model.safetensors.index.json" in os.listdir(exported)
  _, params_again = hf_checkpoints.load_hf_checkpoint(exported)
  flat, flat_again = map(hf_checkpoints.flatten_params, (params, params_again))
  assert flat.keys() == flat_again.keys()
  for path in flat:
    np.testing.assert_array_equal(flat[path], flat_again[path])
  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(exported).eval()
  assert reloaded.config.d_model == D_MODEL


def test_pytorch_bin_folders_load_like_safetensors(hf_folder, tmp_path):
  model, folder = hf_folder
  bin_folder = tmp_path / "bin"
  bin_folder.mkdir()
  torch.save(model.state_dict(), bin_folder / "pytorch_model.bin")
  (bin_folder / "config.json").write_text(open(os.path.join(folder, "config.json")).read())
  _, from_safetensors = hf_checkpoints.load_hf_checkpoint(folder)
  _, from_bin = hf_checkpoints.load_hf_checkpoint(str(bin_folder))
  flat, flat_bin = map(hf_checkpoints.flatten_params, (from_safetensors, from_bin))
  assert flat.keys() == flat_bin.keys()
  for path in flat:
    np.testing.assert_array_equal(flat[path], flat_bin[path])


def test_untied_head_that_hf_scales_gets_the_scale_folded_in(tmp_path):
  # An untied head with scale_decoder_outputs: HF multiplies the decoder output
  # by d_model**-0.5 first; T5X's logits_dense never scales, so import folds it in.
  model = _tiny_hf_model("gated-gelu", tied=False)
  model.config.scale_decoder_outputs = True
  folder = str(tmp_path / "scaled")
  model.save_pretrained(folder)
  config, params = hf_checkpoints.load_hf_checkpoint(folder)
  assert not config.logits_via_embedding
  np.testing.assert_allclose(params["decoder"]["logits_dense"]["kernel"],
                             model.lm_head.weight.detach().numpy().T * D_MODEL ** -0.5,
                             rtol=1e-6)
  exported = hf_checkpoints.save_hf_checkpoint(params, config, str(tmp_path / "export"))
  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(exported).eval()
  assert reloaded.config.scale_decoder_outputs is False
  np.testing.assert_allclose(_hf_logits(reloaded), _hf_logits(model), atol=1e-5)


def test_tied_but_unscaled_head_becomes_a_separate_logits_dense(tmp_path):
  # transformers 5.x saves a freshly built v1.1 model tied (no lm_head tensor)
  # yet unscaled; T5X's tied head always scales, so we keep an explicit copy.
  torch.manual_seed(3)
  config = transformers.T5Config(vocab_size=VOCAB, d_model=D_MODEL, d_kv=4, d_ff=24,
                                 num_layers=1, num_heads=2, feed_forward_proj="gated-gelu",
                                 tie_word_embeddings=False, decoder_start_token_id=0)
  model = transformers.T5ForConditionalGeneration(config).eval()
  folder = str(tmp_path / "tied_unscaled")
  model.save_pretrained(folder)
  ours, params = hf_checkpoints.load_hf_checkpoint(folder)
  assert not ours.logits_via_embedding
  np.testing.assert_array_equal(params["decoder"]["logits_dense"]["kernel"],
                                model.shared.weight.detach().numpy().T)
  exported = hf_checkpoints.save_hf_checkpoint(params, ours, str(tmp_path / "export"))
  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(exported).eval()
  np.testing.assert_allclose(_hf_logits(reloaded), _hf_logits(model), atol=1e-6)


def test_misshapen_and_missing_tensors_are_listed_with_shapes(hf_folder, tmp_path):
  _, folder = hf_folder
  hf_config = hf_checkpoints.read_hf_config(folder)
  state = hf_checkpoints.read_hf_state_dict(folder)
  state["encoder.block.0.layer.0.SelfAttention.k.weight"] = np.zeros((5, D_MODEL), np.float32)
  del state["decoder.final_layer_norm.weight"]
  with pytest.raises(hf_checkpoints.CheckpointMismatchError) as error:
    hf_checkpoints.hf_state_dict_to_params(state, hf_config, source=folder)
  message = str(error.value)
  assert folder in message and "2 parameter(s)" in message
  assert ("encoder/layers_0/attention/key/kernel (HF encoder.block.0.layer.0.SelfAttention"
          ".k.weight): expected (16, 12), found (16, 5)") in message
  assert "decoder/decoder_norm/scale (HF decoder.final_layer_norm.weight): expected (16,), " \
         "found nothing (missing)" in message


def test_config_that_disagrees_with_the_weights_is_reported(hf_folder, tmp_path):
  model, folder = hf_folder
  wrong = tmp_path / "wrong_config"
  wrong.mkdir()
  model.save_pretrained(str(wrong))
  hf_config = json.loads((wrong / "config.json").read_text())
  hf_config["d_ff"] = 40
  (wrong / "config.json").write_text(json.dumps(hf_config))
  with pytest.raises(hf_checkpoints.CheckpointMismatchError, match=r"expected \(16, 40\), "
                     r"found \(16, 24\)"):
    hf_checkpoints.load_hf_checkpoint(str(wrong))


def test_unsupported_feed_forward_is_named():
  with pytest.raises(ValueError, match="feed_forward_proj='gated-quick_gelu'"):
    hf_checkpoints.config_kwargs_from_hf({"feed_forward_proj": "gated-quick_gelu"},
                                         logits_via_embedding=False)


def test_hub_id_that_cannot_be_downloaded_says_so(monkeypatch):
  huggingface_hub = pytest.importorskip("huggingface_hub")
  requested = []

  def offline_snapshot_download(repo_id, **kwargs):
    requested.append(repo_id)
    raise OSError("offline")

  monkeypatch.setattr(huggingface_hub, "snapshot_download", offline_snapshot_download)
  with pytest.raises(FileNotFoundError, match="google/flan-t5-small.*downloading it from the "
                     "Hugging Face Hub failed"):
    hf_checkpoints.load_hf_checkpoint("google/flan-t5-small")
  assert requested == ["google/flan-t5-small"]


def test_missing_local_folder_is_not_sent_to_the_hub(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a model folder"):
    hf_checkpoints.load_hf_checkpoint(str(tmp_path / "nowhere"))


def test_bfloat16_export_loads_in_transformers(hf_folder, tmp_path):
  import ml_dtypes  # pylint: disable=g-import-not-at-top
  model, folder = hf_folder
  config, params = hf_checkpoints.load_hf_checkpoint(folder)
  exported = hf_checkpoints.save_hf_checkpoint(params, config, str(tmp_path / "bf16"),
                                               dtype=ml_dtypes.bfloat16)
  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(exported)
  assert reloaded.shared.weight.dtype == torch.bfloat16
  np.testing.assert_allclose(reloaded.shared.weight.detach().float().numpy(),
                             model.shared.weight.detach().numpy(), rtol=1e-2, atol=1e-2)
