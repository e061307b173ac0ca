"""A cleaned distilled dataset becomes seqio tasks and trains through them.

Teacher answers are the real Pile-NER gold (ChatGPT's own answers); the
cleaned directory is registered like a user would, from Python and from gin.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import gin
import numpy as np
import pytest
import seqio

from ie_tasks import tasks as tasks_lib
from ie_tasks.distill import clean, register, write
from ie_tasks.readers import conversation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTHS = {"inputs": 512, "targets": 64}


pytestmark = pytest.mark.usefixtures("byt5_gin")


@pytest.fixture(scope="module")
def distilled_dir(tmp_path_factory):
  """60 real Pile passages, their gold as teacher answers, cleaned."""
  shared = os.path.join(REPO, "..", "shared", "data")
  path = os.path.join(shared, "pile_ner_sample", "slimer_validation.jsonl")
  if not os.path.exists(path):
    pytest.skip(f"real data not found: {path}")
  records = conversation.read_pile_ner_pairs(path, split="train")[:60]
  root = tmp_path_factory.mktemp("distilled")
  annotations = root / "annotations.jsonl"
  with open(annotations, "w", encoding="utf-8") as f:
    for r in records:
      pairs = list(dict.fromkeys((e.text, e.type) for e in r.entities))
      f.write(json.dumps({"id": r.id.split("-", 1)[1], "text": r.text,
                          "response": json.dumps(pairs)}) + "\n")
  out = root / "my_ner"
  clean.clean_annotations(str(annotations), str(out), dataset="my_ner")
  cleaned = {r.id: r for r in write.read_records(str(out))}
  assert len(cleaned) == len(records)
  return str(out), cleaned


def _examples(task_name, split):
  task = seqio.get_mixture_or_task(task_name)
  ds = task.get_dataset(LENGTHS, split=split, shuffle=False)
  return [{k: v.decode() if isinstance(v, bytes) else v
           for k, v in ex.items()} for ex in ds.as_numpy_iterator()]


def test_registered_task_asks_gold_types_and_frequency_negatives(distilled_dir):
  directory, cleaned = distilled_dir
  name = register.register_distilled_dataset("my_ner", directory,
                                             validation_fraction=0.2)
  assert name == "ie_ner_my_ner_conversation"
  type_counts = write.read_type_counts(directory)
  num_negatives = tasks_lib.template_options()["num_negatives"]
  seen_ids = {}
  for split in ("train", "validation"):
    by_passage = {}
    for ex in _examples(name, split):
      record_id, asked = ex["id"].rsplit(":", 1)
      by_passage.setdefault(record_id, []).append(ex)
      assert ex["inputs_pretokenized"].startswith("Text: ")  # no dataset tag
      assert ex["inputs_pretokenized"].endswith(
          f"USER: What describes {asked} in the text?\nASSISTANT:")
    seen_ids[split] = set(by_passage)
    for record_id, examples in by_passage.items():
      record = cleaned[record_id]
      asked = [json.loads(ex["labels"])[0] for ex in examples]
      gold_types = {e.type for e in record.entities}
      negatives = [t for t in asked if t not in gold_types]
      assert gold_types <= set(asked)
      assert len(negatives) == num_negatives
      assert all(t in type_counts for t in negatives)
      for ex, entity_type in zip(examples, asked):
        expected = list(dict.fromkeys(
            e.text for e in sorted(record.entities) if e.type == entity_type))
        assert json.loads(ex["targets_pretokenized"]) == expected
  assert seen_ids["train"] and seen_ids["validation"]
  assert not seen_ids["train"] & seen_ids["validation"]
  assert seen_ids["train"] | seen_ids["validation"] == set(cleaned)


def test_tagged_variant_prefixes_the_dataset_name(distilled_dir):
  directory, _ = distilled_dir
  name = register.register_distilled_dataset("my_ner", directory, tagged=True)
  assert name == "ie_ner_my_ner_tagged_conversation"
  examples = _examples(name, "train")
  assert examples and all(ex["inputs_pretokenized"].startswith(
      "Dataset: my_ner \nText: ") for ex in examples)
  # A mixture's rate resolves the tagged task's name like any other task.
  assert len(tasks_lib.task_examples(name, "train")) == len(examples)


def test_missing_directory_says_what_was_looked_for(tmp_path):
  with pytest.raises(FileNotFoundError, match="records.jsonl"):
    register.register_distilled_dataset("nothing", str(tmp_path))


def test_registered_from_gin_alone(distilled_dir):
  directory, _ = distilled_dir
  gin.parse_config(f"""
import ie_tasks.distill.register
TASK = @ie_tasks.register_distilled_dataset()
ie_tasks.register_distilled_dataset.name = "gin_ner"
ie_tasks.register_distilled_dataset.directory = "{directory}"
""")
  name = gin.query_parameter("%TASK").scoped_configurable_fn()
  assert name == "ie_ner_gin_ner_conversation"
  assert _examples(name, "train")


def test_distilled_task_batches_train_a_tiny_model(distilled_dir):
  """loss_fn + an optax step on feature-converted batches: the loss falls."""
  import flax.linen as nn
  import jax
  import optax
  from models.models import EncoderDecoderModel
  from models.network import T5Config
  directory, _ = distilled_dir
  name = register.register_distilled_dataset("my_ner", directory)
  ds = seqio.get_dataset(
      name, task_feature_lengths={"inputs": 256, "targets": 32},
      dataset_split="train", shuffle=False,
      feature_converter=seqio.EncDecFeatureConverter(pack=False)).batch(8)
  batches = [{k: np.asarray(v) for k, v in b.items()}
             for b in ds.take(2).as_numpy_iterator()]
  config = T5Config(vocab_size=384, emb_dim=32, num_heads=2, head_dim=16,
                    mlp_dim=64, num_encoder_layers=1, num_decoder_layers=1,
                    dropout_rate=0.0, dtype="float32")
  model = EncoderDecoderModel(config)
  params = nn.unbox(model.get_initial_variables(
      jax.random.PRNGKey(0), {k: v.shape for k, v in batches[0].items()}
  )["params"])
  optimizer = optax.adam(3e-3)
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, batch):
    (loss, _), grads = jax.value_and_grad(model.loss_fn, has_aux=True)(
        params, batch, None)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  losses = []
  for i in range(20):
    params, opt_state, loss = step(params, opt_state, batches[i % 2])
    losses.append(float(loss))
  assert np.all(np.isfinite(losses))
  assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:2]), losses


@pytest.mark.slow
def test_distilled_data_trains_through_the_conversation_task(distilled_dir,
                                                              tmp_path):
  """A few real steps of launch/train.py (the embedded tiny model) on it.

  Slow (~30 s on 2 cores): `pytest -m slow tests/test_distill_write.py`.
  """
  directory, _ = distilled_dir
  gin_file = tmp_path / "distilled.gin"
  gin_file.write_text(f"""
include 'local/default.gin'
import ie_tasks.distill.register
MIXTURE_OR_TASK_NAME = @ie_tasks.register_distilled_dataset()
ie_tasks.register_distilled_dataset.name = "my_ner"
ie_tasks.register_distilled_dataset.directory = "{directory}"
TASK_FEATURE_LENGTHS = {{"inputs": 256, "targets": 32}}
TRAIN_STEPS = 6
BATCH_SIZE = 4
EVAL_PERIOD = 1000
CHECKPOINT_PERIOD = 1000
""")
  model_dir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "launch.train", f"--gin_file={gin_file}",
       "--gin_search_paths=gin", f"--gin.MODEL_DIR='{model_dir}'",
       "--gin.train.log_period=1"],
      cwd=REPO, env={**os.environ, "XLA_FLAGS": ""}, capture_output=True,
      text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  losses = [float(m) for m in re.findall(r"^step \d+/6 \| loss ([\d.]+)",
                                         result.stdout, re.M)]
  assert len(losses) >= 3, result.stdout[-2000:]
  assert np.all(np.isfinite(losses))
