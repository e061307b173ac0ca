"""First-fit packing (models/packing.py) against seqio's packer, on real CoNLL-2003 examples."""
from __future__ import annotations

import gin
import numpy as np
import pytest
import seqio
import tensorflow as tf

from models import packing
from models import utils

TASK = "ie_ner_conll2003_instructuie"
# ByT5 bytes: a CoNLL-2003 example is ~124 input and ~41 target bytes, so a
# row holds about three, as the 8k-piece CPU run packs at 192/64.
LENGTHS = {"inputs": 512, "targets": 128}


@pytest.fixture()
def conll_examples(ie_data_dir):
  """600 tokenized (ByT5 bytes) CoNLL-2003 training examples, instruction dropped."""
  import ie_tasks  # pylint: disable=g-import-not-at-top
  del ie_tasks
  gin.parse_config(["ie_tasks.get_vocabulary.kind = 'byt5'",
                    "ie_tasks.template_options.instructions = {'NER': ''}"])
  task = seqio.get_mixture_or_task(TASK)
  ds = task.get_dataset({"inputs": 1024, "targets": 1024}, split="train", shuffle=False)
  return ds.map(lambda x: {"inputs": x["inputs"], "targets": x["targets"]}).take(600)


def _segments(rows, key):
  """Every packed example's tokens, recovered from segment ids, plus layout checks."""
  out = []
  for row in rows:
    tokens, segments, positions = (row[key], row[f"{key}_segment_ids"], row[f"{key}_positions"])
    assert len(tokens) == LENGTHS[key]
    for segment in range(1, int(segments.max()) + 1):
      where = np.flatnonzero(segments == segment)
      assert np.array_equal(where, np.arange(where[0], where[0] + len(where)))  # contiguous
      assert np.array_equal(positions[where], np.arange(len(where)))
      out.append(tuple(tokens[where]))
    assert not tokens[segments == 0].any()  # padding is zeros
  return out


def test_every_example_lands_in_exactly_one_row_intact(conll_examples):
  examples = list(conll_examples.as_numpy_iterator())
  rows = list(packing.first_fit_rows(iter(examples), LENGTHS))
  for key in LENGTHS:
    expected = sorted(tuple(ex[key][:LENGTHS[key]]) for ex in examples)
    assert sorted(_segments(rows, key)) == expected
  # Inputs and targets of one example share its segment id in its row.
  pairs = {(tuple(ex["inputs"][:512]), tuple(ex["targets"][:128])) for ex in examples}
  for row in rows:
    for segment in range(1, int(row["inputs_segment_ids"].max()) + 1):
      pair = (tuple(row["inputs"][row["inputs_segment_ids"] == segment]),
              tuple(row["targets"][row["targets_segment_ids"] == segment]))
      assert pair in pairs


def test_one_open_row_is_seqios_next_fit_packing(conll_examples):
  ours = list(packing.first_fit_pack_dataset(conll_examples, LENGTHS, open_rows=1)
              .as_numpy_iterator())
  theirs = list(seqio.utils.trim_and_pack_dataset(conll_examples, LENGTHS).as_numpy_iterator())
  assert len(ours) == len(theirs)
  for a, b in zip(ours, theirs):
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_first_fit_needs_fewer_rows_than_next_fit(conll_examples):
  first_fit = sum(1 for _ in packing.first_fit_pack_dataset(conll_examples, LENGTHS))
  next_fit = sum(1 for _ in seqio.utils.trim_and_pack_dataset(conll_examples, LENGTHS))
  # Measured on these 600 examples: 209 rows against 265.
  assert first_fit < 0.85 * next_fit


def test_converter_gives_the_model_features_of_seqios_converter(conll_examples):
  # seqio.get_dataset trims to the task lengths before converting; so do we.
  conll_examples = conll_examples.map(
      lambda x: {k: x[k][:LENGTHS[k]] for k in LENGTHS})
  ours = packing.FirstFitEncDecFeatureConverter(pack=True)(conll_examples, LENGTHS)
  theirs = seqio.EncDecFeatureConverter(pack=True)(conll_examples, LENGTHS)
  assert ours.element_spec == theirs.element_spec
  row = next(ours.as_numpy_iterator())
  # Decoder inputs are the targets shifted right within each segment (BOS 0).
  targets, inputs, segments = (row["decoder_target_tokens"], row["decoder_input_tokens"],
                               row["decoder_segment_ids"])
  for segment in range(1, int(segments.max()) + 1):
    where = np.flatnonzero(segments == segment)
    assert inputs[where[0]] == 0
    np.testing.assert_array_equal(inputs[where[1:]], targets[where[:-1]])


def test_same_rows_every_pass_so_a_resumed_run_skips_to_the_same_batch(conll_examples):
  ds = packing.first_fit_pack_dataset(conll_examples, LENGTHS)
  first = [r["inputs"] for r in ds.as_numpy_iterator()]
  resumed = [r["inputs"] for r in ds.skip(7).as_numpy_iterator()]
  assert len(resumed) == len(first) - 7
  for a, b in zip(first[7:], resumed):
    np.testing.assert_array_equal(a, b)


def test_dataset_config_picks_the_packer():
  assert isinstance(utils.feature_converter(True), packing.FirstFitEncDecFeatureConverter)
  seqio_packer = utils.feature_converter(True, "seqio")
  assert type(seqio_packer) is seqio.EncDecFeatureConverter and seqio_packer.pack
  assert not utils.feature_converter(False).pack
  with pytest.raises(ValueError, match="packing must be one of"):
    utils.feature_converter(True, "best_fit")
  with pytest.raises(ValueError, match="open_rows"):
    next(packing.first_fit_rows(iter([{"inputs": np.ones(3), "targets": np.ones(2)}]),
                                LENGTHS, open_rows=0))


def test_overlong_examples_are_cut_to_the_row():
  example = {"inputs": np.arange(1, 600), "targets": np.arange(1, 10)}
  (row,) = packing.first_fit_rows(iter([example]), LENGTHS)
  np.testing.assert_array_equal(row["inputs"], np.arange(1, 513))
  assert row["inputs_segment_ids"].min() == 1
  ds = tf.data.Dataset.from_tensors({"inputs": tf.range(1, 600), "targets": tf.range(1, 10)})
  (packed,) = list(packing.first_fit_pack_dataset(ds, LENGTHS).as_numpy_iterator())
  np.testing.assert_array_equal(packed["inputs"], row["inputs"])
