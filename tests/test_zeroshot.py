"""The zero-shot NER benchmark: protocols, errors, reports, any checkpoint kind.

Both papers evaluate on the same seven test sets but ask differently:
InstructUIE lists every label in one prompt, UniversalNER asks one question
per type (never CrossNER's catch-all "else"). The expectations below come
from the real files: the IE INSTRUCTIONS labels.json and the first test
sentence of UniversalNER's released CrossNER music test data.
"""
from __future__ import annotations

import collections
import json
import os

import flax.linen as nn
import gin
import jax
import numpy as np
import pytest
import seqio

from ie_tasks import datasets as ds_lib
from ie_tasks import metrics
from ie_tasks import zeroshot
from ie_tasks.templates import instructuie
from launch import eval as eval_lib
from models import checkpoints, evaluation, partitioning
from models.config import T5Config
from models.models import EncoderDecoderModel

LENGTHS = {"inputs": 256, "targets": 8}


pytestmark = pytest.mark.usefixtures("clean_gin")


def _labels_json(shared_data, dataset):
  folder = ds_lib.IEI_NER_FOLDERS[dataset]
  with open(os.path.join(shared_data, "ie_instructions", "NER", folder,
                         "labels.json"), encoding="utf-8") as f:
    return json.load(f)


@pytest.mark.parametrize("dataset", zeroshot.ZEROSHOT_NER7)
def test_instructuie_prompt_lists_every_label_of_labels_json(ie_data_dir,
                                                             dataset):
  gin.bind_parameter("ie_tasks.max_instances.evaluation", 20)
  labels = _labels_json(ie_data_dir, dataset)
  examples = zeroshot.make_examples(dataset, "instructuie")
  assert len(examples) == 20  # one prompt per sentence
  option = "Option: " + ", ".join(labels) + " \n"
  for ex in examples:
    assert ex["inputs"].startswith(instructuie.INSTRUCTIONS["NER"][0])
    assert option in ex["inputs"]
    assert {t for t, _ in json.loads(ex["gold"])} <= set(labels)


@pytest.mark.parametrize("dataset", zeroshot.ZEROSHOT_NER7)
def test_conversation_asks_each_type_but_the_catch_all(ie_data_dir, dataset):
  gin.bind_parameter("ie_tasks.max_instances.evaluation", 10)
  labels = _labels_json(ie_data_dir, dataset)
  by_sentence = collections.defaultdict(list)
  for ex in zeroshot.make_examples(dataset, "conversation"):
    by_sentence[ex["id"].rsplit(":", 1)[0]].append(ex)
  assert len(by_sentence) == 10
  for examples in by_sentence.values():
    asked = [json.loads(ex["labels"])[0] for ex in examples]
    assert asked == [t for t in labels if t != "else"]
    for ex in examples:
      assert ex["inputs"].startswith("Text: ")  # no dataset tag
      assert json.loads(ex["targets"]) == json.loads(ex["gold"])


def test_the_catch_all_type_can_be_asked_too(ie_data_dir):
  gin.bind_parameter("ie_tasks.max_instances.evaluation", 3)
  name = zeroshot.task_name("crossner_politics", "conversation")
  source = seqio.get_mixture_or_task(name).source
  assert len(source.examples("test")) == 3 * 8
  gin.bind_parameter("ie_tasks.zeroshot_protocol.universalner_skipped_types",
                     [])
  asked = {json.loads(ex["labels"])[0] for ex in source.examples("test")}
  assert len(asked) == 9 and "else" in asked


def test_conversation_matches_universalners_released_music_test_data(
    ie_data_dir):
  """universal-ner/universal-ner src/eval/test_data/CrossNER_music.json, #0-11."""
  first = zeroshot._records("crossner_music", "original")[0]
  asked = {json.loads(ex["labels"])[0]: json.loads(ex["targets"])
           for ex in zeroshot.conversation_examples(first)}
  assert first.text.startswith("It is based on the classic song The Guns of")
  assert sorted(asked) == sorted([
      "country", "location", "musical artist", "musical instrument",
      "person", "song", "album", "band", "organization", "music genre",
      "event", "award"])
  assert asked["song"] == ["The Guns of Brixton"]
  assert asked["album"] == ["London Calling"]
  assert asked["band"] == ["The Clash"]
  assert asked["music genre"] == ["rock"]
  assert asked["person"] == [] and asked["organization"] == []


def test_ie_instructions_copy_is_read_with_its_leftover_types_repaired(
    ie_data_dir):
  """The copy's music test keeps raw organisation/misc; the map repairs them."""
  original = zeroshot._records("crossner_music", "original")
  copy = zeroshot._records("crossner_music", "iei")
  labels = set(zeroshot.instructuie_labels("crossner_music"))
  assert all(e.type in labels for r in copy for e in r.entities)
  raw = ds_lib.load_records("iei_crossner_music", "test")
  assert sum(e.type == "organisation" for r in raw for e in r.entities) > 100
  assert [r.text for r in original] == [r.text for r in copy]


def test_mixtures_hold_the_seven_test_sets_scored_both_ways():
  for layout in zeroshot.LAYOUTS:
    for fmt in zeroshot.FORMATS:
      mixture = seqio.get_mixture_or_task(zeroshot.mixture_name(fmt, layout))
      names = [t.name for t in mixture.tasks]
      assert names == [zeroshot.task_name(d, fmt, layout)
                       for d in zeroshot.ZEROSHOT_NER7]
      for task in mixture.tasks:
        assert list(task.splits) == ["test"]
        assert set(task.metric_fns) == {metrics.instructuie_metrics,
                                        metrics.universalner_metrics}


# ---------------------------------------------------------------- errors
def test_unregistered_dataset_names_the_known_sets():
  with pytest.raises(KeyError, match="'crossner_fashion' is not registered.*"
                     "crossner_ai"):
    zeroshot.zeroshot_mixture(datasets=["crossner_ai", "crossner_fashion"])


def test_missing_data_folder_names_each_file_and_its_source(tmp_path,
                                                            monkeypatch):
  monkeypatch.setenv("IE_DATA_DIR", str(tmp_path))
  with pytest.raises(FileNotFoundError) as error:
    zeroshot.zeroshot_mixture("conversation")
  message = str(error.value)
  assert str(tmp_path) in message
  assert os.path.join(str(tmp_path), "crossner", "ai", "test.txt") in message
  assert "github.com/zliucr/CrossNER" in message
  assert "groups.csail.mit.edu/sls/downloads/restaurant" in message
  assert message.count("(to get it:") == 7
  with pytest.raises(FileNotFoundError, match="CrossNER_AI/test.json"):
    zeroshot.zeroshot_mixture(layout="iei", datasets=["crossner_ai"])


def test_unregistered_mixture_name_suggests_close_ones():
  ev = evaluation.Evaluator("ie_zeroshot_ner7_instructiue", LENGTHS,
                            split="test", module="ie_tasks.zeroshot")
  with pytest.raises(ValueError, match="not registered.*"
                     "ie_zeroshot_ner7_instructuie"):
    ev.tasks()


def test_checkpoint_errors_say_what_was_looked_for_and_how_to_get_it(tmp_path):
  with pytest.raises(checkpoints.CheckpointError,
                     match="does not exist.*huggingface-cli download"):
    eval_lib.check_checkpoint(str(tmp_path / "nowhere"))
  hf = tmp_path / "flan"
  hf.mkdir()
  (hf / "config.json").write_text("{}")
  with pytest.raises(checkpoints.CheckpointError,
                     match="no weights: looked for.*model.safetensors"):
    eval_lib.check_checkpoint(str(hf))
  (hf / "config.json").unlink()
  (hf / "model.safetensors").write_bytes(b"")
  with pytest.raises(checkpoints.CheckpointError, match="no config.json"):
    eval_lib.check_checkpoint(str(hf))
  t5x = tmp_path / "checkpoint_1000"
  t5x.mkdir()
  (t5x / "target.encoder.layers_0").mkdir()
  with pytest.raises(checkpoints.CheckpointError,
                     match="lacks its 'checkpoint' file.*gsutil"):
    eval_lib.check_checkpoint(str(t5x))
  ours = tmp_path / "run"
  (ours / "checkpoints").mkdir(parents=True)
  with pytest.raises(checkpoints.CheckpointError,
                     match="no finished checkpoint step"):
    eval_lib.check_checkpoint(str(ours))


def test_our_runs_vocabulary_comes_from_its_config_gin(tmp_path):
  run = tmp_path / "run"
  (run / "checkpoints" / "300" / "state").mkdir(parents=True)
  long_path = "/data/" + "x" * 80 + "/spm.model"
  (run / "config.gin").write_text(
      "VOCABULARY = @vocab.get_vocabulary()\n"
      "vocab.get_vocabulary.extra_ids = 0\n"
      "vocab.get_vocabulary.kind = 'sentencepiece'\n"
      f"vocab.get_vocabulary.path = \\\n    '{long_path}'\n")
  assert eval_lib.checkpoint_vocabulary_bindings(str(run)) == {
      "extra_ids": 0, "kind": "sentencepiece", "path": long_path}
  assert eval_lib.bind_checkpoint_vocabulary(str(run))["path"] == long_path
  assert gin.query_parameter("ie_tasks.get_vocabulary.path") == long_path
  # A vocabulary named in gin wins over the checkpoint's.
  assert eval_lib.bind_checkpoint_vocabulary(str(run)) == {}


# ------------------------------------------------- models from checkpoints
@pytest.mark.parametrize("scan", [False, True])
def test_model_shapes_are_read_back_from_the_parameters(scan):
  config = T5Config(vocab_size=96, emb_dim=16, num_heads=2, head_dim=4,
                    mlp_dim=24, num_encoder_layers=2, num_decoder_layers=3,
                    dropout_rate=0.0, scan_layers=scan)
  variables = jax.eval_shape(
      lambda: EncoderDecoderModel(config).get_initial_variables(
          jax.random.key(0), {"encoder_input_tokens": (1, 8),
                              "decoder_input_tokens": (1, 4)}))
  shapes = {"/".join(str(k.key) for k in path): leaf.shape for path, leaf in
            jax.tree_util.tree_flatten_with_path(
                nn.unbox(variables)["params"])[0]}
  fields = eval_lib.config_fields_from_shapes(shapes)
  assert T5Config(**fields, dropout_rate=0.0) == config


def test_a_t5x_checkpoint_evaluates_without_a_model_gin(shared_data):
  path = os.path.join(shared_data, "t5x_checkpoints",
                      "test_t5_tiny.checkpoint_0")
  model = eval_lib.model_for_checkpoint(path)
  c = model.config
  assert (c.vocab_size, c.emb_dim, c.num_heads, c.head_dim, c.mlp_dim) == (
      32128, 8, 4, 3, 16)
  assert (c.num_encoder_layers, c.num_decoder_layers) == (2, 2)
  assert not c.logits_via_embedding
  params, step = eval_lib.load_params(model, partitioning.Partitioner(), path,
                                      {"inputs": 8, "targets": 4})
  assert step == 0  # strict: every parameter found with its shape
  assert params["decoder"]["logits_dense"]["kernel"].shape == (8, 32128)


def test_t5x_directory_shapes_come_from_its_index_alone(shared_data,
                                                        tmp_path,
                                                        monkeypatch):
  """An 11B T5X checkpoint's config costs one small file, not 44 GB."""
  from models import t5x_checkpoints
  from test_t5x_checkpoints import _write_t5x_directory
  legacy = t5x_checkpoints.load_t5x_checkpoint(os.path.join(
      shared_data, "t5x_checkpoints", "test_t5_tiny.checkpoint_0"))
  legacy["token_embedder"]["embedding"] = legacy["token_embedder"][
      "embedding"][:256]
  legacy["decoder"]["logits_dense"]["kernel"] = legacy["decoder"][
      "logits_dense"]["kernel"][:, :256]
  step_dir = tmp_path / "model" / "checkpoint_7"
  _write_t5x_directory(str(step_dir), legacy, {"step": np.asarray(7)})

  def no_tensor_reads(*args, **kwargs):
    raise AssertionError("read a tensor to learn a shape")
  monkeypatch.setattr(t5x_checkpoints, "_read_tensorstore", no_tensor_reads)
  model = eval_lib.model_for_checkpoint(str(step_dir))
  assert (model.config.vocab_size, model.config.emb_dim,
          model.config.head_dim) == (256, 8, 3)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
  """A random tiny model exported as a Hugging Face folder (byte vocabulary)."""
  from models import hf_checkpoints
  config = T5Config(vocab_size=384, emb_dim=32, num_heads=2, head_dim=8,
                    mlp_dim=48, num_encoder_layers=1, num_decoder_layers=1,
                    dropout_rate=0.0, dtype="float32")
  shapes = jax.eval_shape(
      lambda: EncoderDecoderModel(config).get_initial_variables(
          jax.random.key(1), {"encoder_input_tokens": (1, 8),
                              "decoder_input_tokens": (1, 4)}))
  rng = np.random.default_rng(1)
  params = jax.tree.map(
      lambda s: rng.normal(0.0, 0.3, s.shape).astype(np.float32),
      nn.unbox(shapes)["params"])
  folder = str(tmp_path_factory.mktemp("hf") / "tiny-t5")
  hf_checkpoints.save_hf_checkpoint(params, config, folder)
  return folder, config


def test_zero_shot_evaluation_of_a_hugging_face_folder_writes_the_report(
    ie_data_dir, hf_folder, tmp_path):
  folder, config = hf_folder
  gin.bind_parameter("ie_tasks.get_vocabulary.kind", "byt5")
  gin.bind_parameter("ie_tasks.max_instances.evaluation", 2)
  model = eval_lib.model_for_checkpoint(folder)
  assert model.config == config.replace(dtype="auto")  # shapes from config.json
  name = zeroshot.zeroshot_mixture(
      "conversation", datasets=["crossner_ai", "mit_restaurant"])
  evaluator = evaluation.Evaluator(name, LENGTHS, split="test", batch_size=16,
                                   module="ie_tasks.zeroshot")
  flat = eval_lib.evaluate(model=model, evaluator=evaluator,
                           checkpoint_path=folder, output_dir=str(tmp_path))
  assert flat[f"{zeroshot.task_name('crossner_ai', 'conversation')}"
              "/num_examples"] == 2 * 13
  report = json.loads((tmp_path / "eval/report_test_step0.json").read_text())
  for convention in ("instructuie", "universalner"):
    table = report["scores"][convention]["entity"]
    assert sorted(table["datasets"]) == ["crossner_ai", "mit_restaurant"]
    rows = table["datasets"].values()
    assert table["average"]["f1"] == pytest.approx(
        np.mean([r["f1"] for r in rows]))
    assert table["average"]["support"] == sum(r["support"] for r in rows) > 0
  markdown = (tmp_path / "eval/report_test_step0.md").read_text()
  assert "## entity, universalner scoring" in markdown
  assert "| **average (2 sets)** |" in markdown
  png = (tmp_path / "eval/report_test_step0.png").read_bytes()
  assert png.startswith(b"\x89PNG")
  predictions = (tmp_path / "eval/predictions" /
                 "ie_zeroshot_mit_restaurant_conversation_test_step0.jsonl")
  assert len(predictions.read_text().splitlines()) == 2 * 8


def test_hugging_face_folder_brings_its_sentencepiece_vocabulary(hf_folder,
                                                                  tmp_path):
  import shutil
  folder = str(tmp_path / "flan-like")
  shutil.copytree(hf_folder[0], folder)
  assert eval_lib.checkpoint_vocabulary_bindings(folder) == {}
  (tmp_path / "flan-like" / "spiece.model").write_bytes(b"spm")
  assert eval_lib.checkpoint_vocabulary_bindings(folder) == {
      "kind": "sentencepiece", "path": os.path.join(folder, "spiece.model"),
      "extra_ids": 100}  # T5's 100 sentinels, as T5X and HF count them


def test_dataset_report_averages_the_sets_in_each_convention(tmp_path):
  def task_metrics(dataset, f1, prefix=""):
    return {f"{prefix}entity/{dataset}/{k}": v for k, v in {
        "precision": f1, "recall": f1, "f1": f1, "support": 10.0,
        "num_predicted": 5.0, "unparsable": 1.0, "num_examples": 4.0}.items()}
  per_task = {"t_a": {**task_metrics("a", 40.0), **task_metrics("a", 50.0,
                                                                "uniner/")},
              "t_b": {**task_metrics("b", 20.0), **task_metrics("b", 30.0,
                                                                "uniner/")}}
  scores = evaluation.dataset_scores(per_task)
  assert scores["instructuie"]["entity"]["average"]["f1"] == 30.0
  assert scores["universalner"]["entity"]["average"]["f1"] == 40.0
  assert scores["instructuie"]["entity"]["average"]["unparsable"] == 2.0
  assert scores["universalner"]["entity"]["datasets"]["b"]["task"] == "t_b"
  paths = evaluation.write_dataset_report(str(tmp_path), "test", 3, per_task)
  assert all(os.path.getsize(p) > 0 for p in paths)
