"""The seqio task and mixture registry on the real data and the sample."""
import json
import os

import gin
import numpy as np
import pytest
import seqio

import ie_tasks
from ie_tasks import datasets, mixtures, tasks
from ie_tasks.templates import instructuie


pytestmark = pytest.mark.usefixtures("clean_gin")


def test_import_registers_every_dataset_task_and_format():
  names = set(seqio.TaskRegistry.names())
  for expected in ("ie_ner_crossner_ai_instructuie", "ie_re_conll04_instructuie",
                   "ie_ee_casie_instructuie", "ie_es_conll2003_instructuie",
                   "ie_et_conll2003_instructuie", "ie_ep_conll04_instructuie",
                   "ie_epr_conll04_instructuie", "ie_eet_casie_instructuie",
                   "ie_eea_casie_instructuie", "ie_ner_pile_ner_conversation",
                   "ie_ner_mit_movie_conversation",
                   "ie_ner_iei_crossner_ai_instructuie",
                   "ie_ner_sample_instructuie", "ie_re_sample_instructuie",
                   "ie_ee_sample_instructuie", "ie_ner_sample_conversation"):
    assert expected in names
  # Task families follow the annotations: no RE task for a NER-only corpus.
  assert "ie_re_crossner_ai_instructuie" not in names
  for mixture in ("ie_instructuie_supervised", "ie_instructuie_zeroshot_train",
                  "ie_crossner_zeroshot_eval", "ie_universalner_pile_ner",
                  "ie_sample_default"):
    assert mixture in seqio.MixtureRegistry.names()


def test_registering_again_replaces_instead_of_failing():
  before = set(seqio.TaskRegistry.names())
  tasks.register_all.__wrapped__()
  mixtures.register_mixtures()
  assert set(seqio.TaskRegistry.names()) == before


def test_register_all_leaves_datasets_registered_elsewhere_alone():
  # A distilled set registers its own conversation task; re-registering the
  # built-in tasks must neither replace it nor invent InstructUIE tasks for it.
  spec = datasets.DatasetSpec(
      name="elsewhere_ner", reader="sample", files={"train": "train.jsonl"},
      formats=("conversation",), dataset_tag=False)
  datasets.register(spec)
  try:
    tasks.register_all.__wrapped__()
    assert not [n for n in seqio.TaskRegistry.names() if "elsewhere_ner" in n]
    assert tasks.task_names(datasets=["elsewhere_ner"]) == [
        "ie_ner_elsewhere_ner_conversation"]
  finally:
    datasets._REGISTRY.pop("elsewhere_ner")


def test_open_type_pile_ner_has_only_the_untagged_conversation_task():
  assert tasks.task_names(datasets=["pile_ner"]) == [
      "ie_ner_pile_ner_conversation"]
  assert not datasets.get("pile_ner").dataset_tag


def test_task_name_round_trip():
  assert tasks.parse_task_name("ie_ner_crossner_ai_instructuie") == (
      "NER", "crossner_ai", "instructuie")
  assert tasks.parse_task_name("ie_epr_conll04_instructuie") == (
      "EPR", "conll04", "instructuie")
  with pytest.raises(ValueError):
    tasks.parse_task_name("crossner_ai")


def test_crossner_ai_validation_decodes_to_the_template_examples(ie_data_dir):
  # Bytes (ByT5) round-trip exactly, so decoded ids must equal the templates.
  gin.bind_parameter("ie_tasks.get_vocabulary.kind", "byt5")
  task = seqio.get_mixture_or_task("ie_ner_crossner_ai_instructuie")
  ds = task.get_dataset(None, split="validation", shuffle=False)
  got = list(ds.take(5).as_numpy_iterator())
  records = datasets.load_records("crossner_ai", "validation")
  for ex, record in zip(got, records):
    expected = instructuie.make_examples(record, "NER")[0]
    decoded = tasks.decode_example(ex)
    assert decoded == {"inputs": expected["inputs"],
                       "targets": expected["targets"]}
    assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1  # EOS
    # Type names are the IE INSTRUCTIONS ones, never the raw CrossNER tags.
    labels = json.loads(ex["labels"])
    assert "program language" in labels and "programlang" not in labels
  assert task.num_input_examples("validation") == len(records)


def test_relation_and_event_tasks_on_real_data(ie_data_dir):
  re_examples = tasks.task_examples("ie_re_conll04_instructuie", "validation")
  assert len(re_examples) == len(datasets.load_records("conll04", "validation"))
  labels = json.loads(re_examples[0]["labels"])
  assert set(labels) == {"work for", "kill", "organization in", "live in",
                         "located in"}  # mapped from Work_For, OrgBased_In...
  with_relations = [ex for ex in re_examples if ex["targets"] != " None"]
  assert with_relations and all(
      ex["targets"].split(":")[0].strip() in labels for ex in with_relations)
  ee = tasks.task_examples("ie_ee_casie_instructuie", "validation")
  events = [ex for ex in ee if json.loads(ex["gold"])]
  assert events and all(ex["targets"].startswith(" (") for ex in events)
  assert {r.split for r in datasets.load_records("casie", "validation")} == {
      "validation"}


def test_missing_dataset_names_the_path_and_how_to_prepare(tmp_path,
                                                          monkeypatch):
  monkeypatch.setenv("IE_DATA_DIR", str(tmp_path))
  with pytest.raises(FileNotFoundError) as info:
    tasks.task_examples("ie_ner_mit_movie_instructuie", "test")
  message = str(info.value)
  assert str(tmp_path / "mit" / "movie" / "test.txt") in message
  assert "To prepare it" in message and "IE_DATA_DIR" in message


def test_instruction_override_from_gin_changes_the_task_examples(ie_data_dir):
  name = "ie_ner_conll2003_instructuie"
  default = tasks.task_examples(name, "validation")[:3]
  gin.parse_config("ie_tasks.template_options.instructions = {'NER': ''}")
  bare = tasks.task_examples(name, "validation")[:3]
  for before, after in zip(default, bare):
    assert after["inputs"].startswith("Option: ") and before["inputs"].endswith(after["inputs"])
    assert after["targets"] == before["targets"] and after["gold"] == before["gold"]
  gin.parse_config("ie_tasks.template_options.instructions = {'NERD': ''}")
  with pytest.raises(ValueError, match="unknown task.*NERD"):
    tasks.task_examples(name, "validation")


def test_caps_and_rates_from_gin_change_the_mixture():
  mixture = seqio.get_mixture_or_task("ie_sample_default")
  ner = seqio.get_mixture_or_task("ie_ner_sample_instructuie")
  conv = seqio.get_mixture_or_task("ie_ner_sample_conversation")
  full = len(tasks.task_examples(ner.name, "train"))
  assert mixture.get_rate(ner) == full
  assert mixture.get_rate(conv) > mixture.get_rate(ner)

  gin.parse_config("ie_tasks.max_instances.per_dataset = {'sample': 100}")
  assert len(tasks.task_examples(ner.name, "train")) == 100
  assert mixture.get_rate(ner) == 100

  gin.parse_config("ie_tasks.mixing_rate.temperature = 2.0")
  assert mixture.get_rate(ner) == pytest.approx(10.0)
  gin.parse_config("ie_tasks.mixing_rate.scheme = 'equal'")
  assert mixture.get_rate(ner) == mixture.get_rate(conv) == 1.0
  gin.parse_config(
      "ie_tasks.mixing_rate.overrides = {'ie_ner_sample_conversation': 7.0}")
  assert mixture.get_rate(conv) == 7.0


def test_a_mixture_defined_in_gin():
  gin.parse_config("""
      NAME = @ie_tasks.define_mixture()
      ie_tasks.define_mixture.name = "test_ner_re_sample"
      ie_tasks.define_mixture.datasets = ["sample"]
      ie_tasks.define_mixture.tasks = ["NER", "RE"]
      ie_tasks.define_mixture.formats = ["instructuie"]
  """)
  name = gin.query_parameter("%NAME")
  name = name.scoped_configurable_fn() if hasattr(
      name, "scoped_configurable_fn") else name
  assert name == "test_ner_re_sample"
  assert [t.name for t in seqio.get_mixture_or_task(name).tasks] == [
      "ie_ner_sample_instructuie", "ie_re_sample_instructuie"]


def test_hosts_read_disjoint_shards_that_cover_the_split():
  source = seqio.get_mixture_or_task("ie_re_sample_instructuie").source
  ids = []
  for index in range(3):
    ds = source.get_dataset("validation", shuffle=True, seed=5,
                            shard_info=seqio.ShardInfo(index, 3))
    ids.append([x["id"] for x in ds.as_numpy_iterator()])
  flat = sum(ids, [])
  assert len(flat) == len(set(flat)) == source.num_input_examples("validation")
  again = source.get_dataset("validation", shuffle=True, seed=5,
                             shard_info=seqio.ShardInfo(1, 3))
  assert [x["id"] for x in again.as_numpy_iterator()] == ids[1]
  unshuffled = source.get_dataset("validation", shuffle=False,
                                  shard_info=seqio.ShardInfo(1, 3))
  assert [x["id"] for x in unshuffled.as_numpy_iterator()] != ids[1]


def test_postprocess_and_metrics_score_gold_as_perfect():
  task = seqio.get_mixture_or_task("ie_re_sample_instructuie")
  examples = tasks.task_examples(task.name, "validation")[:20]
  targets = [task.postprocess_fn(ex["targets"], example=ex, is_target=True)
             for ex in examples]
  predictions = [task.postprocess_fn(ex["targets"], example=ex)
                 for ex in examples]
  scores = {}
  for fn in task.metric_fns:
    scores.update(fn(targets, predictions))
  f1 = [v for k, v in scores.items() if k.endswith("f1") and "relation" in k]
  assert f1 and all(v == pytest.approx(100.0) for v in f1)
  # An empty prediction is a miss, not a crash.
  empty = [task.postprocess_fn("", example=ex) for ex in examples]
  scores = {}
  for fn in task.metric_fns:
    scores.update(fn(targets, empty))
  f1 = [v for k, v in scores.items() if k.endswith("f1") and "relation" in k]
  assert all(v < 100.0 for v in f1)


@pytest.mark.parametrize("gin_file", sorted(
    os.listdir(os.path.join(os.path.dirname(__file__), "..", "gin",
                            "mixtures"))))
def test_mixture_gin_files_parse_and_name_a_registered_mixture(gin_file):
  root = os.path.join(os.path.dirname(__file__), "..", "gin")
  gin.add_config_file_search_path(root)
  gin.parse_config_file(os.path.join(root, "mixtures", gin_file))
  name = gin.query_parameter("%MIXTURE_OR_TASK_NAME")
  if hasattr(name, "scoped_configurable_fn"):  # @ie_tasks.define_mixture()
    name = name.scoped_configurable_fn()
  assert name in seqio.MixtureRegistry.names()


def test_records_from_a_prepared_tfds_copy_equal_the_files(ie_data_dir,
                                                           tmp_path):
  from ie_tasks.tfds_builders import prepare
  prepare.prepare("ie_crossner/ai", data_dir=str(tmp_path),
                  manual_dir=ie_data_dir)
  from_files = datasets.load_records("crossner_ai", "validation")
  gin.bind_parameter("ie_tasks.tfds_data_dir.path", str(tmp_path))
  from_tfds = datasets.load_records("crossner_ai", "validation")
  assert from_tfds == from_files
  gin.bind_parameter("ie_tasks.tfds_data_dir.path", str(tmp_path / "none"))
  with pytest.raises(FileNotFoundError, match="tfds_builders.prepare"):
    datasets.load_records("crossner_ai", "test")


def test_pile_ner_passages_split_into_disjoint_train_and_validation(
    ie_data_dir):
  train = datasets.load_records("pile_ner", "train")
  validation = datasets.load_records("pile_ner", "validation")
  assert train and validation and len(validation) < len(train) / 4
  assert not {r.id for r in train} & {r.id for r in validation}
  examples = tasks.task_examples("ie_ner_pile_ner_conversation", "validation")
  assert "What describes" in examples[0]["inputs"]
  assert not examples[0]["inputs"].startswith("Dataset:")  # open-type: no tag
  assert any(ex["targets"] == "[]" for ex in examples)  # negatives asked
