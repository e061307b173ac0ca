"""SeqIO tasks, mixtures, readers, templates and metrics for instruction-tuned IE.

Importing this package registers every task and mixture (so upstream T5X can
use them with `--gin.MIXTURE_OR_TASK_MODULE=ie_tasks`). Registration reads no
data: records are read when a task's dataset is first requested. Importing
twice (or calling the register functions again) replaces, never fails.
"""
from ie_tasks import datasets
from ie_tasks import mixtures
# Imported eagerly so their gin configurables exist before a launcher locks
# gin (finalize_config), and so `@ie_tasks.register_distilled_dataset()`
# resolves from a gin file without an extra import line.
from ie_tasks import sample
from ie_tasks import tasks
from ie_tasks import vocab
from ie_tasks.paths import data_dir
from ie_tasks.augment import mention_replacement_options
from ie_tasks.tasks import max_instances, template_options
from ie_tasks.vocab import get_vocabulary
from ie_tasks.mixtures import define_mixture, mixing_rate

tasks.register_all()
mixtures.register_mixtures()

from ie_tasks.distill import register as _distill_register  # pylint: disable=g-import-not-at-top
# The seven-set zero-shot NER tasks and mixtures (both papers' protocols).
from ie_tasks import zeroshot  # pylint: disable=g-import-not-at-top
