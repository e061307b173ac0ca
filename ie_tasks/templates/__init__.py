"""Instruction templates: records -> {"inputs", "targets", ...} example dicts.

- `instructuie`: InstructUIE's layout (instruction, `Option:`, `Text:`,
  `Answer:`), main tasks NER/RE/EE and the auxiliary tasks.
- `conversation`: UniversalNER's one-question-per-(passage, type) format with
  JSON-list answers, flattened into one encoder input.
"""
