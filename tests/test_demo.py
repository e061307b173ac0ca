"""`make demo` on the embedded default: examples and mixture statistics."""
import gin

from launch import demo


def test_demo_prints_examples_and_statistics(tmp_path_factory, monkeypatch,
                                            capsys):
  monkeypatch.setenv("IE_CACHE_DIR",
                     str(tmp_path_factory.getbasetemp() / "ie_cache"))
  monkeypatch.delenv("IE_DATA_DIR", raising=False)
  try:
    assert demo.main(["--split=test"]) == 0
  finally:
    gin.clear_config()
  out = capsys.readouterr().out
  for task in ("ie_ner_sample_instructuie", "ie_re_sample_instructuie",
               "ie_ee_sample_instructuie", "ie_ner_sample_conversation"):
    assert task in out
  assert "Option:" in out and "What describes" in out
  assert "mixture ie_sample_default" in out
