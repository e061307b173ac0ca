"""SeqIO tasks, mixtures, readers, templates and metrics for instruction-tuned IE.

Importing this package registers every task and mixture (so upstream T5X can
use them with `--gin.MIXTURE_OR_TASK_MODULE=ie_tasks`).
"""
