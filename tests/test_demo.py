"""`make demo` on the embedded default: examples, statistics, then training."""
import os

import gin
import pytest

from launch import demo


@pytest.fixture
def sample_cache(tmp_path_factory, monkeypatch):
  monkeypatch.setenv("IE_CACHE_DIR",
                     str(tmp_path_factory.getbasetemp() / "ie_cache"))
  monkeypatch.delenv("IE_DATA_DIR", raising=False)
  yield
  gin.clear_config()


def test_demo_prints_examples_and_statistics(sample_cache, capsys):
  assert demo.main(["--split=test", "--no_train"]) == 0
  out = capsys.readouterr().out
  for task in ("ie_ner_sample_instructuie", "ie_re_sample_instructuie",
               "ie_ee_sample_instructuie", "ie_ner_sample_conversation"):
    assert task in out
  assert "Option:" in out and "What describes" in out
  assert "mixture ie_sample_default" in out
  assert "Training" not in out


@pytest.mark.slow
def test_demo_trains_and_prints_f1_at_the_start_and_the_end(
    sample_cache, tmp_path, capsys):
  model_dir = str(tmp_path / "demo")
  assert demo.main(["--model_dir", model_dir, "--gin.TRAIN_STEPS=2",
                    "--gin.EVAL_EXAMPLES_PER_TASK=4"]) == 0
  out = capsys.readouterr().out
  assert "step 0 -> step 2" in out and "average over tasks" in out
  assert os.path.exists(os.path.join(model_dir, "config.gin"))
