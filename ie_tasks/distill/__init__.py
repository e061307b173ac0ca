"""UniversalNER-style targeted distillation: passages -> teacher -> cleaned data.

- `passages`: sample passages of at most N tokens from text corpora.
- `prompts`: the UniversalNER annotation prompt (`build_messages`).
- `teacher` + `annotation_store`: an OpenAI-compatible chat client with
  retries, cost accounting and a crash-safe on-disk cache.
- `fake_teacher`: a local chat-completions server answering from gold data
  (tests and benchmarks).
- `parse_answers`, `clean`, `write`, `register`: turn answers into records.
"""
