"""The command line: T5X-style gin flags, train.sh's local and TPU commands, a real run."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from launch import gin_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SH = os.path.join(REPO, "launch", "train.sh")


def test_gin_dot_flags_become_gin_bindings_like_t5x():
  args = ["prog", "--gin_file=gin/runs/finetune.gin", "--gin.TRAIN_STEPS=100",
          "--gin.MODEL_DIR='/tmp/a=b'", "--gin.TASK_FEATURE_LENGTHS={'inputs': 8}"]
  assert gin_utils.rewrite_gin_args(args) == [
      "prog", "--gin_file=gin/runs/finetune.gin", "--gin_bindings=TRAIN_STEPS = 100",
      "--gin_bindings=MODEL_DIR = '/tmp/a=b'",
      "--gin_bindings=TASK_FEATURE_LENGTHS = {'inputs': 8}"]


def test_a_gin_flag_without_value_is_an_error():
  with pytest.raises(ValueError, match="--gin.TRAIN_STEPS"):
    gin_utils.rewrite_gin_args(["--gin.TRAIN_STEPS"])


def test_single_process_runs_do_not_initialize_jax_distributed(monkeypatch):
  for var in ("JAX_COORDINATOR_ADDRESS", "TPU_WORKER_HOSTNAMES", "SLURM_NTASKS"):
    monkeypatch.delenv(var, raising=False)
  assert gin_utils.initialize_distributed("auto") is False
  assert gin_utils.initialize_distributed("off", "127.0.0.1:1", 2, 0) is False


def _sh(*args, check=True):
  return subprocess.run(["bash", TRAIN_SH, "--dry_run", *args], capture_output=True,
                        text=True, check=check)


def test_train_sh_runs_the_python_launcher_locally():
  out = _sh("--gin_file=gin/local/default.gin", "--gin.MODEL_DIR='/tmp/my run'").stdout
  words = shlex.split(out.replace("&&", ""))
  assert words[:2] == ["cd", REPO]
  assert words[3:] == ["-m", "launch.train", "--gin_file=gin/local/default.gin",
                       "--gin.MODEL_DIR='/tmp/my run'"]


def test_train_sh_runs_the_same_command_on_every_tpu_worker():
  out = _sh("--tpu=pod", "--zone=us-central2-b", "--project=proj",
            "--gin_file=gin/runs/finetune.gin",
            "--gin.MIXTURE_OR_TASK_NAME='ie_sample_default'",
            "--gin.MODEL_DIR='gs://bucket/run'").stdout
  words = shlex.split(out)
  assert words[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pod"]
  assert "--zone=us-central2-b" in words and "--project=proj" in words
  assert "--worker=all" in words
  remote = [w for w in words if w.startswith("--command=")][0][len("--command="):]
  # What each worker's shell runs: cd to the checkout, then the same flags.
  remote_words = shlex.split(remote)
  assert remote_words[:4] == ["cd", "~/ie-t5x", "&&", "python3"]
  assert remote_words[4:] == ["-m", "launch.train", "--gin_file=gin/runs/finetune.gin",
                              "--gin.MIXTURE_OR_TASK_NAME='ie_sample_default'",
                              "--gin.MODEL_DIR='gs://bucket/run'"]


def test_train_sh_refuses_a_local_model_dir_on_a_tpu_pod():
  result = _sh("--tpu=pod", "--zone=z", "--gin.MODEL_DIR='/tmp/run'", check=False)
  assert result.returncode == 2 and "gs://" in result.stderr
  result = _sh("--tpu=pod", check=False)
  assert result.returncode == 2 and "--zone" in result.stderr


PARSE_ONLY = """
import sys, gin, __main__
from launch import gin_utils, train, eval as eval_lib, infer
for name, fn in [("train", train.train), ("evaluate", eval_lib.evaluate), ("infer", infer.infer)]:
  setattr(__main__, name, fn)
  gin.configurable(fn)
for gin_file in sys.argv[1:]:
  gin_utils.parse_gin_flags([], [gin_file], ["DROPOUT_RATE = 0.25"])
  print(gin.query_parameter("%MIXTURE_OR_TASK_NAME"), gin.query_parameter("%TASK_FEATURE_LENGTHS"),
        gin.query_parameter("config.T5Config.emb_dim"), gin.query_parameter("config.T5Config.vocab_size"),
        gin.query_parameter("%DROPOUT_RATE"), gin.query_parameter("config.T5Config.dropout_rate"))
  gin.clear_config()
"""


def test_local_gin_files_compose_model_run_and_mixture():
  files = ["gin/local/default.gin", "gin/local/eval.gin", "gin/local/infer.gin"]
  out = subprocess.run([sys.executable, "-c", PARSE_ONLY, *files], cwd=REPO, check=True,
                       capture_output=True, text=True).stdout.splitlines()
  # Mixture and lengths from gin/mixtures, the small model of gin/local/model.gin
  # on the 256-id vocabulary, and DROPOUT_RATE reaching the network config.
  # The default trains on packed 384-token input rows; evaluation and
  # inference read one example per row at the sample's lengths.
  expected = "ie_sample_default {'inputs': %d, 'targets': 96} 128 256 0.25 %%DROPOUT_RATE"
  assert out == [expected % 384, expected % 192, expected % 192]


@pytest.mark.slow
def test_train_then_eval_from_the_command_line(tmp_path):
  """The embedded default, shrunk to 2 steps: config, checkpoint, eval reports."""
  model_dir = tmp_path / "run"
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  common = ["--gin.EVAL_EXAMPLES_PER_TASK=2", "--gin.EVAL_BATCH_SIZE=2"]
  subprocess.run(
      [sys.executable, "-m", "launch.train", "--gin_file=gin/local/default.gin",
       "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=2", "--gin.EVAL_PERIOD=100",
       "--gin.TASK_FEATURE_LENGTHS={'inputs': 192, 'targets': 8}",
       "--gin.EVAL_TASK_FEATURE_LENGTHS={'inputs': 192, 'targets': 8}",
       f"--gin.MODEL_DIR='{model_dir}'", *common],
      cwd=REPO, env=env, check=True, capture_output=True, text=True)
  config = (model_dir / "config.gin").read_text()
  assert "TRAIN_STEPS = 2" in config and "ie_sample_default" in config
  assert (model_dir / "checkpoints" / "2" / "state").is_dir()
  final = json.loads((model_dir / "eval" / "metrics_validation_step2.json").read_text())
  assert "f1" in final["average"] and len(final["tasks"]) >= 3

  eval_dir = tmp_path / "eval"
  out = subprocess.run(
      [sys.executable, "-m", "launch.eval", "--gin_file=gin/local/eval.gin",
       f"--gin.CHECKPOINT_PATH='{model_dir}'", f"--gin.EVAL_OUTPUT_DIR='{eval_dir}'",
       "--gin.TASK_FEATURE_LENGTHS={'inputs': 192, 'targets': 8}",
       "--gin.EVAL_EXAMPLES_PER_TASK=2", "--gin.BATCH_SIZE=2"],
      cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout
  assert "eval step 2 | average F1" in out
  again = json.loads((eval_dir / "eval" / "metrics_validation_step2.json").read_text())
  assert again["tasks"] == final["tasks"]  # same params, same decodes
  predictions = list((eval_dir / "eval" / "predictions").glob("*.jsonl"))
  record = json.loads(predictions[0].read_text().splitlines()[0])
  assert {"input", "target", "prediction", "parsed_prediction"} <= set(record)
