"""InstructUIE-style examples: instruction, options, text, answer.

The layout follows the InstructUIE code (BeyonderXX/InstructUIE,
`uie_dataset.py`):

  inputs:  "<instruction> \\nOption: <l1>, <l2> \\nText: <sentence> \\nAnswer:"
  targets: " person: Peter Blackburn; location: BRUSSELS"      (NER)
           " work for: John, IBM; live in: Mary, Paris"         (RE, EPR)
           " ( attack: hacked, attacker: they, victim: NHS) , ( ... ) "  (EE)
           " None"                                              (nothing to extract)

Auxiliary tasks (InstructUIE's "ES", "ET", "EP", "EPR", "EET", "EEA"):
  ES   spans without types             " Peter Blackburn, BRUSSELS"
  ET   given the spans, their types    " person: Peter Blackburn; location: BRUSSELS"
  EP   entity pairs of some relation   " John, IBM; Mary, Paris"
  EPR  given the pairs, the relations  " work for: John, IBM"
  EET  event type and trigger          " attack: hacked"
  EEA  given type + trigger, arguments " attacker: they; victim: NHS"

Where we differ from the published code (and why):
  * EE/EEA arguments are written "role: argument" (type-first, like every other
    task) where some InstructUIE versions write "argument: role".
  * EEA names the trigger as well as the event type, since our records may
    hold several events of one type in a sentence.
  * The EE option lists event types and, when `roles` is given, argument roles
    ("Event type: a, b, Arguments type: x, y."), comma separated.

Every example dict has string fields: "inputs", "targets", "task", "dataset",
"id", "labels" (JSON list of the option labels), "gold" (JSON list of the gold
items, original case, see `gold_items`) and "text" (the sentence, used by the
parser to resolve commas inside spans).
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

from ie_tasks.records import Entity, Event, Record
from ie_tasks.templates import selection

TASKS = ("NER", "RE", "EE", "ES", "ET", "EP", "EPR", "EET", "EEA")
NONE_TARGET = " None"

# The first paraphrase of each task is InstructUIE's own wording
# (configs/instruction_config.json); the others are ours.
INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "NER": (
        'Please list all entity words in the text that fit the category.'
        'Output format is "type1: word1; type2: word2". \n',
        'Please find all the entity words associated with the category in the '
        'given text.Output format is "type1: word1; type2: word2". \n',
        'Please tell me all the entity words in the text that belong to a '
        'given category.Output format is "type1: word1; type2: word2". \n',
        'Extract every named entity of the listed types from the text. '
        'Output format is "type1: word1; type2: word2". \n',
    ),
    "RE": (
        'Given a phrase that describes the relationship between two words, '
        'extract the words and the lexical relationship between them. The '
        'output format should be "relation1: word1, word2; relation2: word3, '
        'word4". \n',
        'Find the phrases in the following sentences that have a given '
        'relationship. The output format is "relation1: word1, word2; '
        'relation2: word3, word4". \n',
        'Given a sentence, please extract the subject and object containing a '
        'certain relation in the sentence according to the following relation '
        'types, in the format of "relation1: word1, word2; relation2: word3, '
        'word4". \n',
        'List every pair of entities in the text that stand in one of the '
        'given relations. Output format is "relation1: head1, tail1; '
        'relation2: head2, tail2". \n',
    ),
    "EE": (
        'Extract the event information in the text and return them in the '
        'event list. \n',
        'Locate the role in the text that participated in the event based on '
        'the event type and return it in the event list. \n',
        'Find the events of the given types in the text, with their trigger '
        'words and arguments. Output format is "( type: trigger, role: '
        'argument )". \n',
        'List each event in the text as "( event type: trigger word, role1: '
        'argument1, role2: argument2 )". \n',
    ),
    "ES": (
        'Please list all entity words in the text that fit the category. '
        'Output format is "word1, word2". \n',
        'Find all entity mentions of the listed categories in the text, '
        'without their types. Output format is "word1, word2". \n',
        'Which words in the text are entities of the given categories? '
        'Output format is "word1, word2". \n',
        'Extract the entity spans from the text. Output format is "word1, '
        'word2". \n',
    ),
    "ET": (
        'Given options, please tell me the categories of all the listed '
        'entity words.Output format is "type1: word1; type2: word2". \n',
        'Assign one of the given types to each listed entity. Output format '
        'is "type1: word1; type2: word2". \n',
        'What is the category of each entity listed below? Output format is '
        '"type1: word1; type2: word2". \n',
        'Classify the listed entity words into the given categories. Output '
        'format is "type1: word1; type2: word2". \n',
    ),
    "EP": (
        'Please list all entity pairs containing a certain relationship in '
        'the given options.Output format is "word1, word2; word3, word4". \n',
        'Find the pairs of entities in the text that are linked by one of the '
        'given relations. Output format is "word1, word2; word3, word4". \n',
        'Which entity pairs in the text stand in one of the listed relations? '
        'Output format is "head1, tail1; head2, tail2". \n',
        'Extract the related entity pairs from the text. Output format is '
        '"word1, word2; word3, word4". \n',
    ),
    "EPR": (
        'Given options, please tell me the relationships of all the listed '
        'entity pairs.Output format is "relation1: word1, word2; relation2: '
        'word3, word4". \n',
        'What relation holds between each listed pair of entities? Output '
        'format is "relation1: word1, word2; relation2: word3, word4". \n',
        'Choose from the options the relation of every listed entity pair. '
        'Output format is "relation1: head1, tail1; relation2: head2, '
        'tail2". \n',
        'Classify the relationship of each entity pair below. Output format '
        'is "relation1: word1, word2; relation2: word3, word4". \n',
    ),
    "EET": (
        'Please tell me event type and its trigger word from given type '
        'options. Output format is "type: trigger". \n',
        'Find the event trigger words in the text and their event types. '
        'Output format is "type1: trigger1; type2: trigger2". \n',
        'Which words in the text trigger an event of the given types? Output '
        'format is "type1: trigger1; type2: trigger2". \n',
        'Detect the events in the text: give each trigger word with its type. '
        'Output format is "type: trigger". \n',
    ),
    "EEA": (
        'Given event type and trigger, please tell me the arguments of all '
        'the listed option. Output format is "role1: name1; role2: name2". \n',
        'For the given event, find its arguments in the text and their roles. '
        'Output format is "role1: argument1; role2: argument2". \n',
        'Which words in the text fill the roles of the given event? Output '
        'format is "role1: argument1; role2: argument2". \n',
        'Extract the arguments of the event below with their roles. Output '
        'format is "role1: argument1; role2: argument2". \n',
    ),
}


def choose_instruction(task: str, seed: int, dataset: str, example_id: str,
                       overrides: Mapping[str, str] | None = None) -> str:
  """The paraphrase for one example: fixed by (seed, task, dataset, id).

  `overrides` maps a task to the one instruction all its examples get instead
  (an instruction ablation; "" keeps only the option, text and answer lines).
  """
  if overrides and task in overrides:
    instruction = overrides[task]
    return instruction if not instruction or instruction.endswith("\n") else instruction + " \n"
  options = INSTRUCTIONS[task]
  return options[selection.choose_index(len(options), seed, task, dataset,
                                        example_id)]


def _prompt(instruction: str, option: str | None, text: str,
            extra: str = "") -> str:
  option_line = f"Option: {option} \n" if option is not None else ""
  return f"{instruction}{option_line}Text: {text} \n{extra}Answer:"


def _join_or_none(pieces: Sequence[str], sep: str) -> str:
  return " " + sep.join(pieces) if pieces else NONE_TARGET


def _dedup(items: Sequence[Any]) -> list[Any]:
  return list(dict.fromkeys(items))


def _sorted_entities(record: Record) -> list[Entity]:
  return sorted(record.entities, key=lambda e: (e.start, e.end, e.type))


def _sorted_events(record: Record) -> list[Event]:
  return sorted(record.events, key=lambda ev: (ev.trigger.start, ev.type))


def _entity_labels(record: Record, labels: Sequence[str] | None) -> list[str]:
  if labels is not None:
    return list(labels)
  if record.entity_types:
    return list(record.entity_types)
  return sorted({e.type for e in record.entities})


def _relation_labels(record: Record, labels: Sequence[str] | None) -> list[str]:
  if labels is not None:
    return list(labels)
  if record.relation_types:
    return list(record.relation_types)
  return sorted({r.type for r in record.relations})


def _event_labels(record: Record, labels: Sequence[str] | None) -> list[str]:
  if labels is not None:
    return list(labels)
  if record.event_types:
    return list(record.event_types)
  return sorted({ev.type for ev in record.events})


def _roles_for(event_type: str,
               roles: Mapping[str, Sequence[str]] | Sequence[str] | None
               ) -> list[str] | None:
  if roles is None:
    return None
  if isinstance(roles, Mapping):
    return list(roles.get(event_type, ()))
  return list(roles)


def _all_roles(roles: Mapping[str, Sequence[str]] | Sequence[str] | None
               ) -> list[str] | None:
  if roles is None:
    return None
  if isinstance(roles, Mapping):
    return _dedup([r for rs in roles.values() for r in rs])
  return list(roles)


def _example(record: Record, task: str, example_id: str, inputs: str,
             targets: str, labels: Sequence[str], gold: Sequence[Sequence[Any]]
             ) -> dict[str, str]:
  return {
      "inputs": inputs,
      "targets": targets,
      "task": task,
      "dataset": record.dataset,
      "id": example_id,
      "labels": json.dumps(list(labels), ensure_ascii=False),
      "gold": json.dumps([list(g) for g in gold], ensure_ascii=False),
      "text": record.text,
  }


# --- one builder per task -------------------------------------------------

def _ner(record, instruction, labels, roles):
  options = _entity_labels(record, labels)
  entities = _sorted_entities(record)
  pairs = [(e.type, e.text) for e in entities]
  inputs = _prompt(instruction("NER", record.id),
                   ", ".join(options), record.text)
  targets = _join_or_none([f"{t}: {s}" for t, s in pairs], "; ")
  return [_example(record, "NER", record.id, inputs, targets, options,
                   _dedup(pairs))]


def _es(record, instruction, labels, roles):
  options = _entity_labels(record, labels)
  spans = [e.text for e in _sorted_entities(record)]
  inputs = _prompt(instruction("ES", record.id),
                   ", ".join(options), record.text)
  targets = _join_or_none(spans, ", ")
  return [_example(record, "ES", record.id, inputs, targets, options,
                   [(s,) for s in _dedup(spans)])]


def _et(record, instruction, labels, roles):
  entities = _sorted_entities(record)
  if not entities:
    return []  # nothing to type
  options = _entity_labels(record, labels)
  pairs = [(e.type, e.text) for e in entities]
  listed = ", ".join(_dedup([e.text for e in entities]))
  inputs = _prompt(instruction("ET", record.id),
                   ", ".join(options), record.text,
                   extra=f" Entities: {listed} \n")
  targets = _join_or_none([f"{t}: {s}" for t, s in pairs], "; ")
  return [_example(record, "ET", record.id, inputs, targets, options,
                   _dedup(pairs))]


def _relation_triples(record: Record) -> list[tuple[str, str, str]]:
  relations = sorted(record.relations,
                     key=lambda r: (r.head.start, r.tail.start, r.type))
  return [(r.type, r.head.text, r.tail.text) for r in relations]


def _re(record, instruction, labels, roles):
  options = _relation_labels(record, labels)
  triples = _relation_triples(record)
  inputs = _prompt(instruction("RE", record.id),
                   ", ".join(options), record.text)
  targets = _join_or_none([f"{r}: {h}, {t}" for r, h, t in triples], "; ")
  return [_example(record, "RE", record.id, inputs, targets, options,
                   _dedup(triples))]


def _ep(record, instruction, labels, roles):
  options = _relation_labels(record, labels)
  pairs = [(h, t) for _, h, t in _relation_triples(record)]
  inputs = _prompt(instruction("EP", record.id),
                   ", ".join(options), record.text)
  targets = _join_or_none([f"{h}, {t}" for h, t in pairs], "; ")
  return [_example(record, "EP", record.id, inputs, targets, options,
                   _dedup(pairs))]


def _epr(record, instruction, labels, roles):
  triples = _relation_triples(record)
  if not triples:
    return []  # no pairs to classify
  options = _relation_labels(record, labels)
  listed = "; ".join(_dedup([f"{h}, {t}" for _, h, t in triples]))
  inputs = _prompt(instruction("EPR", record.id),
                   ", ".join(options), record.text,
                   extra=f" Entity Pairs: {listed} \n")
  targets = _join_or_none([f"{r}: {h}, {t}" for r, h, t in triples], "; ")
  return [_example(record, "EPR", record.id, inputs, targets, options,
                   _dedup(triples))]


def _event_item(event: Event) -> tuple[str, str, list[list[str]]]:
  arguments = sorted(event.arguments, key=lambda a: (a.start, a.role))
  args = _dedup([(a.role, a.text) for a in arguments])
  return (event.type, event.trigger.text, [list(a) for a in args])


def _format_event(item: tuple[str, str, list[list[str]]]) -> str:
  event_type, trigger, args = item
  arg_text = ", ".join(f"{role}: {text}" for role, text in args) or "None"
  return f" ( {event_type}: {trigger}, {arg_text}) "


def _ee(record, instruction, labels, roles):
  event_types = _event_labels(record, labels)
  role_list = _all_roles(roles)
  option = ", ".join(event_types)
  if role_list is not None:
    option = f"Event type: {option}, Arguments type: {', '.join(role_list)}."
  items = [_event_item(ev) for ev in _sorted_events(record)]
  gold = []
  for item in items:  # dedup events by their full content
    if item not in gold:
      gold.append(item)
  inputs = _prompt(instruction("EE", record.id),
                   option, record.text)
  targets = ",".join(_format_event(i) for i in items) if items else NONE_TARGET
  return [_example(record, "EE", record.id, inputs, targets, event_types,
                   gold)]


def _eet(record, instruction, labels, roles):
  options = _event_labels(record, labels)
  pairs = [(ev.type, ev.trigger.text) for ev in _sorted_events(record)]
  inputs = _prompt(instruction("EET", record.id),
                   ", ".join(options), record.text)
  targets = _join_or_none([f"{t}: {s}" for t, s in pairs], "; ")
  return [_example(record, "EET", record.id, inputs, targets, options,
                   _dedup(pairs))]


def _eea(record, instruction, labels, roles):
  examples = []
  for index, event in enumerate(_sorted_events(record)):
    example_id = f"{record.id}:event{index}"
    role_options = _roles_for(event.type, roles)
    _, _, args = _event_item(event)
    option = ", ".join(role_options) if role_options is not None else None
    extra_header = (f"Event type: {event.type} \nTrigger: {event.trigger.text}"
                    " \n")
    inputs = _prompt(instruction("EEA", example_id) + extra_header, option, record.text)
    targets = _join_or_none([f"{r}: {a}" for r, a in args], "; ")
    examples.append(_example(record, "EEA", example_id, inputs, targets,
                             role_options or [], args))
  return examples


_BUILDERS: dict[str, Callable[..., list[dict[str, str]]]] = {
    "NER": _ner, "ES": _es, "ET": _et,
    "RE": _re, "EP": _ep, "EPR": _epr,
    "EE": _ee, "EET": _eet, "EEA": _eea,
}


def make_examples(record: Record, task: str, *, seed: int = 0,
                  labels: Sequence[str] | None = None,
                  roles: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
                  instructions: Mapping[str, str] | None = None
                  ) -> list[dict[str, str]]:
  """Examples of `task` for one record (usually one; EEA one per event).

  Args:
    record: the annotated sentence.
    task: one of TASKS.
    seed: picks the instruction paraphrase together with the example id.
    labels: the option labels (entity, relation or event types); defaults to
      the record's label universe, else the types present in it.
    roles: argument roles for EE/EEA, either one list or {event type: roles}.
    instructions: {task: instruction} replacing the paraphrases of those tasks
      (see `choose_instruction`).
  Returns: a list of example dicts (string fields, see the module doc); tasks
    that need something to classify (ET, EPR, EEA) give none when the record
    has nothing of that kind.
  """
  if task not in _BUILDERS:
    raise ValueError(f"unknown InstructUIE task {task!r}; expected one of "
                     f"{TASKS}")
  def instruction(task_type: str, example_id: str) -> str:
    return choose_instruction(task_type, seed, record.dataset, example_id, instructions)
  return _BUILDERS[task](record, instruction, labels, roles)


def gold_items(example: Mapping[str, Any]) -> list[tuple]:
  """The example's gold items as tuples (EE arguments as nested tuples).

  Item layouts: NER/ET (type, span); ES (span,); RE/EPR (relation, head,
  tail); EP (head, tail); EET (type, trigger); EEA (role, argument);
  EE (type, trigger, ((role, argument), ...)).
  """
  gold = example["gold"]
  if isinstance(gold, bytes):
    gold = gold.decode("utf-8")
  return [_to_tuple(item) for item in json.loads(gold)]


def _to_tuple(value: Any) -> Any:
  if isinstance(value, list):
    return tuple(_to_tuple(v) for v in value)
  return value
