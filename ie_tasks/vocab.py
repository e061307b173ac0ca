"""Vocabularies: the standard T5 SentencePiece model, ByT5 bytes, or our own.

`get_vocabulary()` (gin `ie_tasks.get_vocabulary.*`) is what every task uses:
  kind="sentencepiece": the model at `path` (default: T5's cc_all.32000 on GCS)
                        with `extra_ids` sentinels (100, as T5X);
  kind="byt5":          seqio.ByteVocabulary;
  kind="sample":        a small SentencePiece model trained on the embedded
                        default, built at first use and cached on disk
                        (deterministic; never committed).
Tasks hold a `DeferredVocabulary`, which resolves `get_vocabulary()` on first
use, so gin bindings parsed after `import ie_tasks` still take effect.

Offline training of a vocabulary on prepared data:
  python -m ie_tasks.vocab train --output=/tmp/ie_spm --datasets=conll2003,conll04 \
      --vocab_size=8000
writes /tmp/ie_spm.model (+ .vocab); use it with
  --gin.ie_tasks.get_vocabulary.path="'/tmp/ie_spm.model'"
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
from typing import Iterable, Sequence

import gin
import seqio

DEFAULT_SPM_PATH = "gs://t5-data/vocabs/cc_all.32000/sentencepiece.model"
DEFAULT_EXTRA_IDS = 100
SAMPLE_VOCAB_SIZE = 256

def _configurable(fn):
  # `python -m ie_tasks.<module>` runs this file a second time as __main__;
  # only the package's copy registers with gin (once), and main() uses it.
  return fn if __name__ == "__main__" else gin.configurable(fn,
                                                            module="ie_tasks")



def train_sentencepiece(texts: Iterable[str], output_prefix: str, *,
                        vocab_size: int, model_type: str = "unigram",
                        character_coverage: float = 1.0,
                        hard_vocab_limit: bool = True) -> str:
  """Trains a SentencePiece model with T5's ids (pad=0, eos=1, unk=2, no bos).

  Single-threaded on the texts in the order given, so the same texts give the
  same model bytes. Writes `<output_prefix>.model` atomically; returns its path.
  """
  import sentencepiece as spm
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter([t for t in texts if t.strip()]),
      model_writer=model, vocab_size=vocab_size, model_type=model_type,
      character_coverage=character_coverage, pad_id=0, eos_id=1, unk_id=2,
      bos_id=-1, num_threads=1, input_sentence_size=0,
      shuffle_input_sentence=False, hard_vocab_limit=hard_vocab_limit,
      split_digits=True, byte_fallback=False, minloglevel=2)
  path = output_prefix + ".model"
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)))
  with os.fdopen(fd, "wb") as f:
    f.write(model.getvalue())
  os.replace(tmp, path)
  return path


def texts_for_datasets(datasets: Sequence[str], *, split: str = "train",
                       formats: Sequence[str] = ("instructuie",),
                       max_examples_per_task: int | None = None) -> list[str]:
  """Inputs and targets of every registered task of these datasets (one split)."""
  from ie_tasks import tasks as tasks_lib
  texts: list[str] = []
  for name in tasks_lib.task_names(datasets=datasets, formats=formats):
    examples = tasks_lib.task_examples(name, split)
    for ex in examples[:max_examples_per_task]:
      texts.extend((ex["inputs"], ex["targets"]))
  return texts


def sample_vocabulary_path() -> str:
  """Builds (once) and returns the embedded default's SentencePiece model.

  The file name carries a hash of the training text, so a change to the sample
  or the templates builds a new model instead of reusing a stale one.
  """
  from ie_tasks import sample
  texts = texts_for_datasets(["sample"], formats=("instructuie",
                                                  "conversation"))
  digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
  prefix = os.path.join(sample.cache_dir(), "vocab",
                        f"sample_spm{SAMPLE_VOCAB_SIZE}_{digest}")
  if not os.path.exists(prefix + ".model"):
    train_sentencepiece(texts, prefix, vocab_size=SAMPLE_VOCAB_SIZE)
  return prefix + ".model"


@_configurable
def get_vocabulary(kind: str = "sentencepiece", path: str = DEFAULT_SPM_PATH,
                   extra_ids: int = DEFAULT_EXTRA_IDS) -> seqio.Vocabulary:
  """The vocabulary every task uses (see the module docstring)."""
  if kind == "sentencepiece":
    return seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)
  if kind == "byt5":
    return seqio.ByteVocabulary(extra_ids=extra_ids)
  if kind == "sample":
    return seqio.SentencePieceVocabulary(sample_vocabulary_path(),
                                         extra_ids=0)
  raise ValueError(f"get_vocabulary: unknown kind {kind!r}; expected "
                   "'sentencepiece', 'byt5' or 'sample'")


class DeferredVocabulary(seqio.Vocabulary):
  """Resolves a vocabulary factory on first use (after gin is parsed)."""

  def __init__(self, factory=None, **kwargs):
    self._factory = factory or get_vocabulary
    self._kwargs = kwargs
    self._resolved: dict[str, seqio.Vocabulary] = {}
    super().__init__(extra_ids=0)

  def _gin_key(self) -> str:
    try:
      return repr(sorted(gin.get_bindings(self._factory).items()))
    except (ValueError, TypeError):  # not a gin configurable
      return ""

  @property
  def resolved(self) -> seqio.Vocabulary:
    """The vocabulary for the current gin bindings (one object per binding)."""
    key = self._gin_key()
    if key not in self._resolved:
      self._resolved[key] = self._factory(**self._kwargs)
    return self._resolved[key]

  def reset(self) -> None:
    """Forget resolved vocabularies (e.g. after the sample was rebuilt)."""
    self._resolved.clear()

  # Delegate the public API, so extra ids are handled by the real vocabulary.
  @property
  def eos_id(self):
    return self.resolved.eos_id

  @property
  def pad_id(self):
    return self.resolved.pad_id

  @property
  def unk_id(self):
    return self.resolved.unk_id

  @property
  def vocab_size(self):
    return self.resolved.vocab_size

  @property
  def _base_vocab_size(self):
    return self.resolved.vocab_size

  def encode(self, s):
    return self.resolved.encode(s)

  def decode(self, ids):
    return self.resolved.decode(ids)

  def encode_tf(self, s):
    return self.resolved.encode_tf(s)

  def decode_tf(self, ids):
    return self.resolved.decode_tf(ids)

  def _encode(self, s):
    return self.resolved.encode(s)

  def _decode(self, ids):
    return self.resolved.decode(ids)

  def _encode_tf(self, s):
    return self.resolved.encode_tf(s)

  def _decode_tf(self, ids):
    return self.resolved.decode_tf(ids)

  def __eq__(self, other):
    if isinstance(other, DeferredVocabulary):
      other = other.resolved
    return self.resolved == other

  def __hash__(self):
    return id(self)

  def __repr__(self):
    return f"DeferredVocabulary({self._factory.__name__})"


def main(argv: Sequence[str] | None = None) -> None:
  import argparse
  parser = argparse.ArgumentParser(prog="python -m ie_tasks.vocab")
  sub = parser.add_subparsers(dest="command", required=True)
  train = sub.add_parser("train", help="train a SentencePiece vocabulary")
  train.add_argument("--output", required=True,
                     help="output prefix; writes <output>.model")
  group = train.add_mutually_exclusive_group()
  group.add_argument("--datasets", default="sample",
                     help="comma-separated dataset names (ie_tasks.datasets)")
  group.add_argument("--mixture", default=None,
                     help="a registered mixture; uses the datasets of its tasks")
  train.add_argument("--formats", default="instructuie,conversation")
  train.add_argument("--vocab_size", type=int, default=8000)
  train.add_argument("--max_examples_per_task", type=int, default=None)
  train.add_argument("--model_type", default="unigram")
  train.add_argument("--hard_vocab_limit", type=int, default=0,
                     help="1: fail if the text cannot fill vocab_size pieces")
  args = parser.parse_args(argv)
  from ie_tasks import tasks as tasks_lib
  if args.mixture:
    datasets = sorted({tasks_lib.parse_task_name(t.name)[1]
                       for t in seqio.get_mixture_or_task(args.mixture).tasks})
  else:
    datasets = [d for d in args.datasets.split(",") if d]
  texts = texts_for_datasets(datasets, formats=args.formats.split(","),
                             max_examples_per_task=args.max_examples_per_task)
  path = train_sentencepiece(texts, args.output, vocab_size=args.vocab_size,
                             model_type=args.model_type,
                             hard_vocab_limit=bool(args.hard_vocab_limit))
  vocab = seqio.SentencePieceVocabulary(path)
  print(f"wrote {path}: {vocab.vocab_size} pieces from {len(texts)} texts of "
        f"{', '.join(datasets)}")


if __name__ == "__main__":
  from ie_tasks import vocab as _package_copy  # the gin-registered module
  _package_copy.main()
