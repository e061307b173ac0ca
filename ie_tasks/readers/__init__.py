"""Readers: every raw dataset layout -> a list of validated `Record`s.

- `bio.read_bio`: BIO / IOB1 / BIOES column files (CoNLL-2003, CrossNER, MIT)
- `spert.read_spert_json`: SpERT JSON with BILOU tags (CoNLL04)
- `casie.read_casie`: CASIE documents -> sentence-level event records
- `ie_instructions.read_ie_instructions` / `find_datasets`: InstructUIE layout
- `conversation.read_universalner_conversations` / `read_pile_ner_pairs`
- `label_maps`: raw type names -> the names the papers' copies use
- `stats.ReadStats`: what was read, skipped, repaired

Every reader takes `skip_invalid` and `stats`; bad data raises
`ie_tasks.records.DataError` naming file, line/record, field and value.
"""
from ie_tasks.readers import bio
from ie_tasks.readers import casie
from ie_tasks.readers import conversation
from ie_tasks.readers import ie_instructions
from ie_tasks.readers import label_maps
from ie_tasks.readers import spert
from ie_tasks.readers.stats import ReadStats
