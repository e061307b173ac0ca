"""seqio preprocessors of the IE tasks (each a function dataset -> dataset).

The tasks run `seqio.preprocessors.tokenize` (keeps the string fields beside
the token ids, and `inputs_pretokenized`/`targets_pretokenized`), a cache
placeholder, then `append_eos_after_trim` below.
"""
from __future__ import annotations

import seqio
import tensorflow as tf


def append_eos_after_trim(dataset: tf.data.Dataset,
                          output_features: seqio.preprocessors.OutputFeaturesType,
                          sequence_length=None) -> tf.data.Dataset:
  """Trims to `sequence_length` minus one, then appends EOS (seqio's own).

  Kept as a named step so a task can swap its trimming policy in one place.
  """
  return seqio.preprocessors.append_eos_after_trim(
      dataset, output_features=output_features, sequence_length=sequence_length)
