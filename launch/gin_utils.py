"""Gin flags exactly as T5X users type them, and the multi-host start-up.

`--gin_file` (repeatable), `--gin.NAME=value` (rewritten into a gin binding
`NAME = value`, like t5x.gin_utils), `--gin_bindings`, `--gin_search_paths`.
Gin files are looked up in the search paths, then in the repository root and
its `gin/` folder, so `--gin_file=gin/runs/finetune.gin` and
`--gin_file=runs/finetune.gin` both work from anywhere.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging
import gin
import jax

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SEARCH_PATHS = (os.path.join(REPO_ROOT, "gin"), REPO_ROOT)


def define_flags() -> None:
  """The flags every launcher shares (idempotent)."""
  if "gin_file" in flags.FLAGS:
    return
  flags.DEFINE_multi_string("gin_file", [], "Gin config files, in order.")
  flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, e.g. 'X = 1'.")
  flags.DEFINE_list("gin_search_paths", [], "Where gin files and includes are looked "
                    "up (before the repository's gin/ folder and root).")
  flags.DEFINE_string("coordinator_address", None,
                      "host:port of process 0 for multi-host jobs "
                      "(or $JAX_COORDINATOR_ADDRESS).")
  flags.DEFINE_integer("num_processes", None, "Processes in the job (or $JAX_NUM_PROCESSES).")
  flags.DEFINE_integer("process_id", None, "This process's index (or $JAX_PROCESS_ID).")
  flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"],
                    "jax.distributed.initialize: 'auto' when a coordinator is "
                    "given or a TPU pod / SLURM job is detected.")


def rewrite_gin_args(args: Sequence[str]) -> list[str]:
  """`--gin.NAME=value` -> `--gin_bindings=NAME = value` (T5X's convention)."""
  out = []
  for arg in args:
    if arg.startswith("--gin."):
      name, sep, value = arg[len("--gin."):].partition("=")
      if not sep:
        raise ValueError(f"gin flag {arg!r} needs a value: --gin.NAME=VALUE")
      out.append(f"--gin_bindings={name} = {value}")
    else:
      out.append(arg)
  return out


def parse_gin_flags(gin_search_paths: Sequence[str], gin_files: Sequence[str],
                    gin_bindings: Sequence[str], finalize: bool = False) -> None:
  """Adds search paths, parses files then bindings (later ones win).

  With `finalize` the config is locked afterwards, as T5X does: a typo'd
  binding or a late `gin.configurable` fails loudly instead of being
  ignored. `import ie_tasks` registers all of the data side's configurables
  up front, so training can lock; a launcher that binds more after parsing
  (e.g. eval's checkpoint vocabulary) leaves it unlocked.
  """
  for path in list(gin_search_paths) + list(DEFAULT_SEARCH_PATHS):
    gin.add_config_file_search_path(os.path.abspath(path))
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings),
                                      finalize_config=finalize)
  logging.info("Gin config:\n%s", gin.config_str())


def write_gin_config(model_dir: str, filename: str = "config.gin") -> str | None:
  """Writes the full gin config (every binding, T5X's config.gin); process 0 only."""
  if jax.process_index() != 0:
    return None
  import tensorflow as tf  # gfile: local paths and gs:// alike
  tf.io.gfile.makedirs(model_dir)
  path = os.path.join(model_dir, filename)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(gin.config_str())
  return path


def write_operative_config(model_dir: str) -> str | None:
  """The bindings actually used so far (gin's operative config)."""
  if jax.process_index() != 0:
    return None
  import tensorflow as tf
  path = os.path.join(model_dir, "operative_config.gin")
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(gin.operative_config_str())
  return path


def _cluster_detected() -> bool:
  env = os.environ
  hosts = env.get("TPU_WORKER_HOSTNAMES", "")
  return (len([h for h in hosts.split(",") if h]) > 1
          or int(env.get("SLURM_NTASKS", "1")) > 1
          or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1)


def initialize_distributed(mode: str = "auto", coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
  """Calls jax.distributed.initialize when this is a multi-process job.

  Explicit flags (or $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES,
  $JAX_PROCESS_ID) win; otherwise JAX detects TPU pods and SLURM itself. On
  CPU the processes talk through gloo collectives.
  """
  env = os.environ
  coordinator_address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
  if num_processes is None and env.get("JAX_NUM_PROCESSES"):
    num_processes = int(env["JAX_NUM_PROCESSES"])
  if process_id is None and env.get("JAX_PROCESS_ID"):
    process_id = int(env["JAX_PROCESS_ID"])
  if mode == "off" or (mode == "auto" and not coordinator_address
                       and not _cluster_detected()):
    return False
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if coordinator_address:
    jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                               process_id=process_id)
  else:
    jax.distributed.initialize()
  logging.info("jax.distributed: process %d of %d, %d global devices",
               jax.process_index(), jax.process_count(), jax.device_count())
  return True


def run(main: Callable[[Sequence[str]], None]) -> None:
  """absl's app.run with `--gin.X=Y` flags rewritten first."""
  define_flags()
  app.run(main, flags_parser=lambda argv: flags.FLAGS(rewrite_gin_args(argv)))


def setup_from_flags(finalize: bool = False) -> None:
  """Multi-host init + gin parsing from the shared flags (call inside main)."""
  f = flags.FLAGS
  if not f["verbosity"].present:  # orbax/seqio INFO lines drown the progress lines
    logging.set_verbosity(logging.WARNING)
  initialize_distributed(f.distributed, f.coordinator_address, f.num_processes,
                         f.process_id)
  parse_gin_flags(f.gin_search_paths, f.gin_file, f.gin_bindings, finalize=finalize)
