"""benchmarks/quality.py: its scoring agrees with our metrics, its log parser reads
the trainer's lines, and (slow) the whole CPU-budget path runs end to end."""
from __future__ import annotations

import json
import os
import time

import pytest

from benchmarks import quality
from ie_tasks import metrics
from ie_tasks import postprocessors
from ie_tasks import tasks
from models import network
from models import trainer as trainer_lib


def _conll_test_examples(n: int) -> list[dict[str, str]]:
  return tasks.task_examples(quality.CONLL_TASK, "test")[:n]


def _perturbed_prediction(i: int, target: str) -> str:
  """A plausible model answer: some sentences drop, retype or recase an entity."""
  pieces = [p for p in target.strip().split("; ") if p and p != "None"]
  if i % 3 == 0 and pieces:
    pieces = pieces[1:]  # a miss
  if i % 5 == 0 and pieces:
    pieces[0] = "person: " + pieces[0].split(": ", 1)[-1]  # maybe a wrong type
  if i % 7 == 0:
    pieces = [p.upper() for p in pieces]  # case alone must not matter
  if i % 11 == 0:
    pieces.append("animal: Blackburn")  # a type that is not an option
  return " " + "; ".join(pieces) if pieces else " None"


def test_per_type_scores_add_up_to_the_entity_metric(ie_data_dir, tmp_path):
  examples = _conll_test_examples(300)
  path = tmp_path / "predictions.jsonl"
  golds, preds = [], []
  with open(path, "w", encoding="utf-8") as f:
    for i, ex in enumerate(examples):
      gold = postprocessors.postprocess(ex["targets"], example=ex, is_target=True)
      pred = postprocessors.postprocess(_perturbed_prediction(i, ex["targets"]),
                                        example=ex)
      golds.append(gold)
      preds.append(pred)
      f.write(json.dumps({"id": ex["id"], "parsed_target": gold,
                          "parsed_prediction": pred}) + "\n")
  expected = metrics.instructuie_metrics(golds, preds)
  per_type = quality.per_type_scores(str(path))

  assert {"person", "organization", "location", "else"} <= set(per_type)
  assert per_type["(other types)"]["support"] == 0
  assert per_type["(other types)"]["num_predicted"] > 0
  tp = sum(s["true_positives"] for s in per_type.values())
  predicted = sum(s["num_predicted"] for s in per_type.values())
  support = sum(s["support"] for s in per_type.values())
  assert tp == expected["entity/conll2003/true_positives"]
  assert predicted == expected["entity/conll2003/num_predicted"]
  assert support == expected["entity/conll2003/support"]
  micro = quality._prf(tp, predicted, support)["f1"]
  assert micro == pytest.approx(expected["entity/conll2003/f1"])
  assert 30 < micro < 100  # the perturbations cost something, not everything


def test_parse_train_log_reads_the_trainers_console_lines(capsys):
  config = network.T5Config(vocab_size=64, emb_dim=8, num_heads=2, head_dim=4,
                            mlp_dim=16, num_encoder_layers=1, num_decoder_layers=1)
  logger = trainer_lib.MetricsLogger(None, model_config=config, global_batch_size=2,
                                     input_length=8, target_length=4, total_steps=20)
  print("step 1: first step (compile + run) took 12.5s")
  logger.start(0)
  for step, loss in ((10, 2.5), (20, 1.25)):
    time.sleep(0.05)  # at least a few ms per step, as the console rounds to ms
    logger.log(step, {"train/loss": loss, "train/accuracy": 0.5,
                      "train/learning_rate": 1e-3})
  logger.close()
  parsed = quality.parse_train_log(capsys.readouterr().out)

  assert parsed["first_step_s"] == 12.5
  assert parsed["train_steps"] == 20
  assert [(p["step"], p["loss"]) for p in parsed["curve"]] == [(10, 2.5), (20, 1.25)]
  assert parsed["curve"][0]["learning_rate"] == pytest.approx(1e-3)
  assert parsed["curve"][1]["tokens_per_second"] > 0
  assert quality.throughput(parsed)["steps_per_second"] > 0


@pytest.mark.parametrize("tied", [False, True])
def test_parameter_count_of_the_run_config(tied):
  cfg = {"T5Config.emb_dim": "256", "T5Config.num_heads": "4",
         "T5Config.head_dim": "64", "T5Config.mlp_dim": "768",
         "T5Config.vocab_size": "8064", "T5Config.num_encoder_layers": "3",
         "T5Config.num_decoder_layers": "2",
         "T5Config.mlp_activations": "('gelu', 'linear')",
         "T5Config.logits_via_embedding": str(tied)}
  config = network.T5Config(vocab_size=8064, emb_dim=256, num_heads=4, head_dim=64,
                            mlp_dim=768, num_encoder_layers=3, num_decoder_layers=2,
                            mlp_activations=("gelu", "linear"),
                            logits_via_embedding=tied)
  from models import models as models_lib
  import jax
  model = models_lib.EncoderDecoderModel(config)
  shapes = {"encoder_input_tokens": (1, 8), "decoder_input_tokens": (1, 4)}
  variables = jax.eval_shape(lambda: model.get_initial_variables(
      jax.random.key(0), shapes))
  actual = sum(int(x.size) for x in jax.tree.leaves(variables["params"]))
  assert quality.count_parameters(cfg) == actual


@pytest.mark.slow
def test_smoke_run_trains_evaluates_and_reports(ie_data_dir, tmp_path):
  result = quality.main(["--smoke", f"--work_dir={tmp_path}",
                         f"--results_dir={tmp_path / 'results'}",
                         f"--data_dir={ie_data_dir}"])

  assert result["training"]["steps"] == 4
  assert [p["step"] for p in result["learning_curve"]["dev"]] == [2, 4]
  assert result["conll2003_test"]["datasets"]["conll2003"]["num_examples"] == 16
  assert set(result["crossner_zeroshot"]["datasets"]) == {
      f"crossner_{d}" for d in ("ai", "literature", "music", "politics", "science")}
  # Epochs count what the trainer saw: the sentences and the augmented copies
  # that conll2003_cpu.gin asks for (two per sentence, new names swapped in).
  from ie_tasks import augment, datasets
  sentences = datasets.load_records("conll2003", "train")
  assert len(sentences) == 14041
  augmented = augment.augment_records(sentences, copies=2, rate=0.5, seed=0, novel_rate=1.0)
  assert result["training"]["packing"]["train_examples"] == len(augmented) > len(sentences)
  report = (tmp_path / "results" / "quality_smoke.md").read_text()
  assert "CoNLL-2003 test" in report and "crossner_science" in report
  assert os.path.exists(tmp_path / "results" / "quality_smoke.json")


def test_data_bindings_come_from_the_runs_config(tmp_path):
  assert quality.data_bindings(quality.operative_config(str(tmp_path))) == []
  (tmp_path / "config.gin").write_text(
      "# Parameters for augment.mention_replacement_options:\n"
      "augment.mention_replacement_options.copies = 2\n"
      "augment.mention_replacement_options.novel_rate = 1.0\n"
      "tasks.template_options.instructions = {'NER': ''}\n"
      "DROPOUT_RATE = 0.1\n")
  assert quality.data_bindings(quality.operative_config(str(tmp_path))) == [
      "ie_tasks.mention_replacement_options.copies = 2",
      "ie_tasks.mention_replacement_options.novel_rate = 1.0",
      "ie_tasks.template_options.instructions = {'NER': ''}"]
  # The packer the statistics replay: the run's, seqio's for runs from before the choice.
  assert quality.operative_config(str(tmp_path))["DatasetConfig.packing"] == "seqio"
  (tmp_path / "config.gin").write_text("train/utils.DatasetConfig.packing = 'first_fit'\n")
  assert quality.operative_config(str(tmp_path))["DatasetConfig.packing"] == "first_fit"
