"""Shared fixtures: the real data beside the checkout, fake devices off by default."""
import os

# Every test sees 8 fake CPU devices, so sharding tests need no subprocess.
# Must be set before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

SHARED_DATA = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture(scope="session")
def shared_data() -> str:
  if not os.path.isdir(SHARED_DATA):
    pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data)")
  return SHARED_DATA


@pytest.fixture
def ie_data_dir(shared_data, monkeypatch) -> str:
  """Points IE_DATA_DIR at ../shared/data for the duration of a test."""
  monkeypatch.setenv("IE_DATA_DIR", shared_data)
  return shared_data


@pytest.fixture
def clean_gin(tmp_path_factory, monkeypatch):
  """Empty gin bindings before and after the test, and a private cache dir."""
  import gin
  monkeypatch.setenv("IE_CACHE_DIR",
                     str(tmp_path_factory.getbasetemp() / "ie_cache"))
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture
def byt5_gin(clean_gin):
  """clean_gin, with the byte vocabulary (no SentencePiece file to build)."""
  import gin
  gin.bind_parameter("ie_tasks.get_vocabulary.kind", "byt5")
