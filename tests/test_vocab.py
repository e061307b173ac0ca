"""Vocabularies: T5 id conventions, deterministic training, the train command."""
import os

import gin
import pytest
import seqio

from ie_tasks import sample, tasks, vocab

TEXTS = [r.text for r in sample.generate_records("train", num=400)]


def test_trained_vocabulary_uses_t5_ids_and_is_deterministic(tmp_path):
  a = vocab.train_sentencepiece(TEXTS, str(tmp_path / "a"), vocab_size=120)
  b = vocab.train_sentencepiece(TEXTS, str(tmp_path / "b"), vocab_size=120)
  assert open(a, "rb").read() == open(b, "rb").read()
  v = seqio.SentencePieceVocabulary(a)
  assert (v.pad_id, v.eos_id, v.unk_id, v.vocab_size) == (0, 1, 2, 120)
  ids = v.encode(TEXTS[0])
  assert 1 not in ids and v.decode(ids) == TEXTS[0]


def test_train_command_on_a_dataset(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("IE_CACHE_DIR", str(tmp_path / "cache"))
  vocab.main(["train", f"--output={tmp_path}/spm", "--datasets=sample",
              "--formats=instructuie", "--vocab_size=200",
              "--max_examples_per_task=300"])
  assert "200 pieces" in capsys.readouterr().out
  v = seqio.SentencePieceVocabulary(f"{tmp_path}/spm.model")
  assert v.vocab_size == 200


def test_get_vocabulary_follows_gin(tmp_path_factory, monkeypatch):
  cache = tmp_path_factory.getbasetemp() / "ie_cache"  # shared with other tests
  monkeypatch.setenv("IE_CACHE_DIR", str(cache))
  try:
    gin.bind_parameter("ie_tasks.get_vocabulary.kind", "byt5")
    assert isinstance(tasks.VOCABULARY.resolved, seqio.ByteVocabulary)
    gin.bind_parameter("ie_tasks.get_vocabulary.kind", "sample")
    v = tasks.VOCABULARY
    assert v.vocab_size == vocab.SAMPLE_VOCAB_SIZE
    assert os.path.dirname(vocab.sample_vocabulary_path()).startswith(
        str(cache))
    gin.bind_parameter("ie_tasks.get_vocabulary.kind", "nonsense")
    with pytest.raises(ValueError, match="unknown kind"):
      vocab.get_vocabulary()
  finally:
    gin.clear_config()
  default = vocab.get_vocabulary()
  assert default.sentencepiece_model_file == vocab.DEFAULT_SPM_PATH
  assert default.extra_ids == 100


def test_module_command_runs(tmp_path_factory, tmp_path):
  # `python -m ie_tasks.vocab` executes the file twice (package + __main__);
  # gin must not see two configurables.
  import subprocess
  import sys
  env = dict(os.environ, IE_CACHE_DIR=str(tmp_path_factory.getbasetemp() /
                                          "ie_cache"))
  done = subprocess.run(
      [sys.executable, "-m", "ie_tasks.vocab", "train",
       f"--output={tmp_path}/cli", "--datasets=sample",
       "--formats=conversation", "--vocab_size=150",
       "--max_examples_per_task=200"],
      capture_output=True, text=True, env=env, timeout=120,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert done.returncode == 0, done.stderr[-2000:]
  assert "150 pieces" in done.stdout
