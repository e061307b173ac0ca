"""The one place data roots come from: gin `data_dir.path`, else `$IE_DATA_DIR`."""
from __future__ import annotations

import os

import gin

ENV_VAR = "IE_DATA_DIR"
DEFAULT_DATA_DIR = os.path.join("~", "ie_data")


@gin.configurable(module="ie_tasks")
def data_dir(path: str | None = None) -> str:
  """Returns the data root: gin `ie_tasks.data_dir.path`, `$IE_DATA_DIR`, or ~/ie_data."""
  root = path or os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR
  return os.path.expanduser(root)


def dataset_path(*parts: str, how_to_prepare: str = "") -> str:
  """Joins parts under the data root; a missing path raises a clear error."""
  path = os.path.join(data_dir(), *parts)
  if not os.path.exists(path):
    hint = f" To prepare it: {how_to_prepare}" if how_to_prepare else ""
    raise FileNotFoundError(
        f"dataset path not found: {path!r} (data root {data_dir()!r} from "
        f"gin ie_tasks.data_dir.path or ${ENV_VAR}).{hint}")
  return path
