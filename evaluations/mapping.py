"""How a file's columns become examples: which column holds the text (or a prompt and its response, or a
conversation's turns), which the label (or several 0/1 category columns), and how its values map to the
policy's labels. `suggest_mapping` guesses one from the column names and values; `apply_mapping` reads
every row with it, refusing the file at the first row it cannot read (naming row and column), and
`import_table` stores the result through the sets service, all or nothing.

Rows whose label cell is empty are skipped and counted, not refused: a labelled set may hold rows that
nobody labelled yet (one of the public teen-safety files has one)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from evaluations.files import Table
from evaluations.models import LabeledSet
from evaluations.sets import (
    MAX_EXAMPLE_CHARS,
    Added,
    NewExample,
    SetError,
    add_examples,
    allowed_labels,
    find_or_create_set,
    meaning,
    scheme_version,
)
from policies_app.models import ContentKind, LabelScheme, Policy, PolicyVersion
from safeguard.labels import is_safe_label

# Label values read without a value map, whatever the policy's scheme.
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "violation", "violating", "invalid", "spam", "unsafe", "flagged",
                        "harmful", "positive", "x"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "safe", "valid", "ok", "not spam", "not_spam", "ham", "none",
                         "benign", "clean", "negative"})
_CODE = re.compile(r"[A-Za-z]{1,8}\d{1,3}(?:\.[A-Za-z0-9]{1,3})?")
SKIP = ""  # a value mapped to this is "not labelled": its rows are skipped

# Words in column names, for suggest_mapping.
LABEL_WORDS = {"label", "labels", "classification", "class", "category", "verdict", "target", "gold", "golden",
               "violation", "violating", "annotation", "decision", "rating", "truth", "y"}
TEXT_WORDS = {"text", "content", "message", "body", "comment", "post", "sentence", "example", "document", "item",
              "utterance", "tweet", "input", "sample"}
PROMPT_WORDS = {"prompt", "question", "query", "instruction", "user", "request", "example", "input"}
RESPONSE_WORDS = {"response", "responses", "generation", "completion", "answer", "output", "assistant", "reply"}
TURNS_WORDS = {"turns", "messages", "conversation", "dialogue", "dialog", "chat", "transcript"}
MODEL_WORDS = {"model", "predicted", "prediction", "gpt", "score"}  # a model's answer, not the truth


@dataclass
class Mapping:
    """Which columns hold what. Content: `text`, and/or `prompt` + `response` (one completion example:
    the user's prompt and the assistant's response), and/or `turns` (a JSON list of {role, content}); when
    several are given, a row uses its turns if it has any, else its prompt and response, else its text.
    Label: `label` (its values read through `values`, then as the policy's own labels, then as common
    forms such as true/false), or `category_columns` (0/1 columns, any 1 a violation; for a category
    policy `category_codes` maps each column to a category code, the first listed column with a 1 wins).
    `prompt_label`: with a prompt and a response, the prompt alone is also an example (a message),
    labelled by this column."""

    text: str = ""
    prompt: str = ""
    response: str = ""
    turns: str = ""
    label: str = ""
    values: dict[str, str] = field(default_factory=dict)
    category_columns: list[str] = field(default_factory=list)
    category_codes: dict[str, str] = field(default_factory=dict)
    prompt_label: str = ""

    def columns(self) -> list[tuple[str, str]]:
        """(role, column) for every column the mapping reads."""
        named = [("text", self.text), ("prompt", self.prompt), ("response", self.response), ("turns", self.turns),
                 ("label", self.label), ("prompt label", self.prompt_label)]
        return [(role, column) for role, column in named if column] + [
            ("category", column) for column in self.category_columns]

    def describe(self) -> str:
        parts = []
        if self.turns:
            parts.append(f"turns from {self.turns!r}")
        if self.prompt:
            parts.append(f"prompt {self.prompt!r} + response {self.response!r} as a completion")
        if self.text:
            parts.append(f"text from {self.text!r}")
        if self.label:
            parts.append(f"label from {self.label!r}")
        if self.category_columns:
            parts.append(f"violation when any of {', '.join(map(repr, self.category_columns))} is 1")
        if self.prompt_label:
            parts.append(f"the prompt alone labelled by {self.prompt_label!r}")
        return "; ".join(parts)


class MappedExamples(list[NewExample]):
    """The examples read from a table, and the (row, column) of each example skipped for an empty label."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: list[tuple[int, str]] = []


@dataclass
class Imported:
    """What an import did: the set, examples added, already there, and skipped (an empty label)."""

    labeled_set: LabeledSet
    added: int
    duplicates: int
    skipped: int
    skipped_rows: list[int]
    relabel_conflicts: list[int]
    mapping: Mapping


# --- reading one value -------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A cell as text: JSON numbers and booleans as a person would write them (1, true)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _norm(value: str) -> str:
    return " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())


_TRUE = frozenset(_norm(word) for word in TRUE_WORDS)
_FALSE = frozenset(_norm(word) for word in FALSE_WORDS)


def _truth(value: str) -> bool | None:
    lowered = _norm(value)
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def guess_label(value: str, version: PolicyVersion) -> str | None:
    """`value` as one of the version's labels without a value map, or None: the label itself (any case;
    DC2.a reads as DC2), a common form (1/0, true/false, yes/no, VALID/INVALID, spam/ham) where the scheme
    makes its meaning plain, or for a 0/1 or VALID/INVALID policy a rule code its text defines (SP0 is
    no violation, SP2 one)."""
    value = value.strip()
    if not value:
        return None
    try:
        return meaning(version, value)[0]
    except SetError:
        pass
    violation = _truth(value)
    if violation is None and version.label_scheme != LabelScheme.CATEGORIES and _CODE.fullmatch(value):
        code = value.upper()
        if any(rule.upper() == code or rule.upper().startswith(code + ".") for rule in version.rule_ids):
            violation = not is_safe_label(value)
    if violation is None:
        return None
    if version.label_scheme == LabelScheme.BINARY:
        return "1" if violation else "0"
    if version.label_scheme == LabelScheme.VALID_INVALID:
        return "INVALID" if violation else "VALID"
    matching = [label for label in allowed_labels(version) if is_safe_label(label) != violation]
    return matching[0] if len(matching) == 1 else None  # "1" under DC1..DC3 could be any of them


def _lookup(values: dict[str, str], raw: str) -> str | None:
    if raw in values:
        return values[raw]
    folded = {key.strip().lower(): target for key, target in values.items()}
    return folded.get(raw.strip().lower())


def read_label(value: Any, mapping: Mapping, version: PolicyVersion, *, row: int, column: str) -> str | None:
    """The label in the version's scheme for one label cell; None for an empty cell (or a value mapped to
    skip). A value it cannot read refuses, naming row, column and value."""
    raw = cell_text(value).strip()
    if not raw:
        return None
    mapped = _lookup(mapping.values, raw)
    if mapped is not None:
        if mapped == SKIP:
            return None
        return meaning(version, mapped, row=row, column=column)[0]
    guessed = guess_label(raw, version)
    if guessed is None:
        labels = allowed_labels(version)
        raise SetError(f"{raw!r} is not a label of {version} ({', '.join(labels)}); map it to one of them",
                       row=row, column=column)
    return guessed


def _category_label(row: dict[str, Any], mapping: Mapping, version: PolicyVersion, number: int) -> str | None:
    hits: list[str] = []
    filled = False
    for column in mapping.category_columns:
        raw = cell_text(row.get(column)).strip()
        if not raw:
            continue
        filled = True
        truth = _truth(raw)
        if truth is None:
            raise SetError(f"{raw!r} is not 0 or 1 (nor true/false, yes/no)", row=number, column=column)
        if truth:
            hits.append(column)
    if not filled:
        return None  # nobody labelled this row
    if version.label_scheme == LabelScheme.BINARY:
        return "1" if hits else "0"
    if version.label_scheme == LabelScheme.VALID_INVALID:
        return "INVALID" if hits else "VALID"
    if hits:
        return meaning(version, _code_of_column(hits[0], mapping, version), row=number, column=hits[0])[0]
    safe = [label for label in allowed_labels(version) if is_safe_label(label)]
    if len(safe) != 1:
        raise SetError(f"no category column is 1, and {version} has {len(safe)} labels meaning no violation, "
                       "so the row's label is unclear", row=number, column=mapping.category_columns[0])
    return safe[0]


def _code_of_column(column: str, mapping: Mapping, version: PolicyVersion) -> str:
    code = _lookup(mapping.category_codes, column)
    if code:
        return code
    if guess_label(column, version) is not None:
        return column
    raise SetError(f"the column names no category of {version} ({', '.join(allowed_labels(version))}): map it "
                   "to one", column=column)


def _turns(value: Any, number: int, column: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise SetError("the turns are not JSON (a list of {\"role\": ..., \"content\": ...})",
                           row=number, column=column) from None
    if not isinstance(value, list) or not value:
        raise SetError("the turns should be a non-empty list of {\"role\": ..., \"content\": ...}",
                       row=number, column=column)
    turns = []
    for i, turn in enumerate(value, start=1):
        if (not isinstance(turn, dict) or not isinstance(turn.get("role"), str) or not turn["role"].strip()
                or not isinstance(turn.get("content"), str)):
            raise SetError(f"turn {i} is not an object with a role and a text content", row=number, column=column)
        turns.append({"role": turn["role"].strip(), "content": turn["content"]})
    return turns


def _filled(row: dict[str, Any], column: str) -> bool:
    return bool(column) and bool(cell_text(row.get(column)).strip())


def _text(row: dict[str, Any], column: str, number: int, what: str) -> str:
    value = row.get(column)
    if isinstance(value, list | dict):
        raise SetError(f"the {what} is {type(value).__name__}, not text", row=number, column=column)
    text = cell_text(value).strip()
    if not text:
        raise SetError(f"the {what} is empty", row=number, column=column)
    return text


# --- reading a table ---------------------------------------------------------------------------------


def check_mapping(table: Table, mapping: Mapping, version: PolicyVersion) -> None:
    """Refuse a mapping that cannot be applied to this table, before any row is read."""
    known = {c.lower(): c for c in table.columns}
    for role, column in mapping.columns():
        if column.lower() not in known:
            raise SetError(f"the file has no column {column!r} (for the {role}); its columns are "
                           f"{', '.join(map(repr, table.columns))}", column=column)
    if not (mapping.text or mapping.prompt or mapping.response or mapping.turns):
        raise SetError("choose the column holding the text (or a prompt and a response, or the turns)")
    if bool(mapping.prompt) != bool(mapping.response):
        raise SetError("a completion needs both a prompt column and a response column")
    if bool(mapping.label) == bool(mapping.category_columns):
        raise SetError("choose one label column, or the 0/1 category columns")
    if mapping.prompt_label and not mapping.prompt:
        raise SetError("a prompt label needs a prompt column")
    if mapping.category_columns and version.label_scheme == LabelScheme.CATEGORIES:
        for column in mapping.category_columns:
            _code_of_column(column, mapping, version)


def _canonical(table: Table, mapping: Mapping) -> Mapping:
    """The mapping with its column names spelt as the table spells them (options are matched in any case)."""
    known = {c.lower(): c for c in table.columns}

    def name(column: str) -> str:
        return known.get(column.lower(), column) if column else ""

    return Mapping(text=name(mapping.text), prompt=name(mapping.prompt), response=name(mapping.response),
                   turns=name(mapping.turns), label=name(mapping.label), values=dict(mapping.values),
                   category_columns=[name(c) for c in mapping.category_columns],
                   category_codes={name(k): v for k, v in mapping.category_codes.items()},
                   prompt_label=name(mapping.prompt_label))


def read_row(row: dict[str, Any], number: int, mapping: Mapping,
             version: PolicyVersion) -> tuple[list[NewExample], list[str]]:
    """One row's examples, and the label columns skipped in it for being empty."""
    skipped: list[str] = []
    if mapping.category_columns:
        label = _category_label(row, mapping, version, number)
        label_column = mapping.category_columns[0]
    else:
        label = read_label(row.get(mapping.label), mapping, version, row=number, column=mapping.label)
        label_column = mapping.label
    examples: list[NewExample] = []
    if mapping.turns and _filled(row, mapping.turns):
        if label is None:
            return [], [label_column]
        turns = _turns(row.get(mapping.turns), number, mapping.turns)
        examples.append(NewExample(label=label, turns=turns, kind=ContentKind.CONVERSATION, row=number))
    elif mapping.prompt and (_filled(row, mapping.prompt) or _filled(row, mapping.response) or not mapping.text):
        prompt = _text(row, mapping.prompt, number, "prompt")
        if mapping.prompt_label:
            prompt_label = read_label(row.get(mapping.prompt_label), mapping, version, row=number,
                                      column=mapping.prompt_label)
            if prompt_label is None:
                skipped.append(mapping.prompt_label)
            else:
                examples.append(NewExample(label=prompt_label, content=prompt, kind=ContentKind.MESSAGE, row=number))
        if label is None:
            skipped.append(label_column)
        else:
            response = _text(row, mapping.response, number, "response")
            if len(prompt) + len(response) > MAX_EXAMPLE_CHARS:
                raise SetError(f"the prompt and response hold {len(prompt) + len(response):,} characters, more "
                               f"than the {MAX_EXAMPLE_CHARS:,} an example may have", row=number,
                               column=mapping.response)
            examples.append(NewExample(label=label, kind=ContentKind.COMPLETION, row=number,
                                       turns=[{"role": "user", "content": prompt},
                                              {"role": "assistant", "content": response}]))
    elif mapping.text:
        if label is None:
            return [], [label_column]
        examples.append(NewExample(label=label, content=_text(row, mapping.text, number, "text"),
                                   kind=ContentKind.MESSAGE, row=number))
    else:
        if label is None:
            return [], [label_column]
        raise SetError("the row has no turns", row=number, column=mapping.turns)
    return examples, skipped


def apply_mapping(table: Table, mapping: Mapping, version: PolicyVersion) -> MappedExamples:
    """Every example of the table under `mapping`, labels in `version`'s scheme. The first row that cannot
    be read refuses the whole table (SetError naming row and column); rows with an empty label are
    skipped and listed in the result's `skipped`."""
    check_mapping(table, mapping, version)
    mapping = _canonical(table, mapping)
    result = MappedExamples()
    for number, row in table.records():
        examples, skipped = read_row(row, number, mapping, version)
        result.extend(examples)
        result.skipped.extend((number, column) for column in skipped)
    return result


def import_table(*, actor: Any, policy: Policy, table: Table, mapping: Mapping, set_name: str = "",
                 labeled_set: LabeledSet | None = None, actor_name: str = "", source: str = "") -> Imported:
    """Read `table` with `mapping` and add its examples to `labeled_set` (or to the policy's set named
    `set_name`, made if missing): all of them or, on any refusal, nothing (not even a new empty set)."""
    version = scheme_version(policy)
    examples = apply_mapping(table, mapping, version)
    if not examples:
        raise SetError(f"the file holds no labelled examples ({len(examples.skipped)} rows have an empty label)"
                       if examples.skipped else "the file holds no labelled examples")
    with transaction.atomic():
        target = labeled_set or find_or_create_set(actor=actor, policy=policy, name=set_name or table.name or "Import",
                                                   actor_name=actor_name, source=source or table.name)
        added: Added = add_examples(actor=actor, labeled_set=target, examples=examples, actor_name=actor_name,
                                    source=source or table.name)
    return Imported(labeled_set=target, added=added.added, duplicates=added.duplicates,
                    skipped=len(examples.skipped), skipped_rows=sorted({row for row, _ in examples.skipped}),
                    relabel_conflicts=added.relabel_conflicts, mapping=mapping)


# --- guessing ----------------------------------------------------------------------------------------


def _words(column: str) -> set[str]:
    return set(re.sub(r"[^a-z0-9]+", " ", column.lower()).split())


def _values(table: Table, column: str, limit: int = 200) -> list[Any]:
    return [row.get(column) for row in table.rows[:limit]]


def _is_binary_column(table: Table, column: str) -> bool:
    values = {cell_text(v).strip() for v in _values(table, column, 1000)} - {""}
    return bool(values) and all(_truth(v) is not None and _norm(v) in {"0", "1", "true", "false", "yes", "no"}
                                for v in values)


def _looks_like_turns(table: Table, column: str) -> bool:
    for value in _values(table, column, 20):
        if isinstance(value, str) and value.lstrip().startswith("[{"):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                return False
        if value in (None, ""):
            continue
        return isinstance(value, list) and bool(value) and all(isinstance(t, dict) and "role" in t for t in value)
    return False


def _average_length(table: Table, column: str) -> float:
    values = [len(cell_text(v)) for v in _values(table, column) if not isinstance(v, list | dict)]
    return sum(values) / len(values) if values else 0.0


def suggest_mapping(table: Table, version: PolicyVersion) -> Mapping:
    """A mapping guessed from the column names (text, prompt, response, label, classification, ...) and
    values: a prompt and a response column make completion examples, and when each has its own label
    column (the teen-safety files: "Example, Classification, Responses, Response Label") the prompt alone
    is an example too, labelled by the prompt's label. Without a label column, several 0/1 columns are
    category columns. The guess may leave the label empty when nothing looks like one."""
    columns = list(table.columns)
    words = {c: _words(c) for c in columns}
    model_columns = {c for c in columns if words[c] & MODEL_WORDS or _norm(c) == "model answer"}
    label_columns = [c for c in columns if words[c] & LABEL_WORDS and c not in model_columns]
    label_columns.sort(key=lambda c: (0 if _norm(c) == "label" else 1 if "label" in words[c] else 2))
    rest = [c for c in columns if c not in label_columns and c not in model_columns]
    mapping = Mapping()

    turns = next((c for c in rest if words[c] & TURNS_WORDS), None) or next(
        (c for c in rest if _looks_like_turns(table, c)), None)
    if turns:
        mapping.turns = turns
        rest.remove(turns)
    response = next((c for c in rest if words[c] & RESPONSE_WORDS), None)
    if response:
        prompt = next((c for c in rest if c != response and words[c] & PROMPT_WORDS), None)
        if prompt:
            mapping.prompt, mapping.response = prompt, response
            rest = [c for c in rest if c not in (prompt, response)]
    text = next((c for c in rest if words[c] & TEXT_WORDS), None)
    if text is None and not (mapping.turns or mapping.prompt):
        free = [c for c in rest if not _is_binary_column(table, c)]
        text = max(free, key=lambda c: _average_length(table, c), default=None)
    if text:
        mapping.text = text
        rest.remove(text)

    if mapping.prompt and len(label_columns) >= 2:
        response_words = words[mapping.response] - LABEL_WORDS
        response_label = next((c for c in label_columns if words[c] & (RESPONSE_WORDS | response_words)), None)
        if response_label:
            prompt_words = words[mapping.prompt] - LABEL_WORDS
            others = [c for c in label_columns if c != response_label]
            mapping.label = response_label
            mapping.prompt_label = next((c for c in others if words[c] & (PROMPT_WORDS | prompt_words)), others[0])
            return mapping
    if label_columns:
        mapping.label = label_columns[0]
        return mapping
    binary = [c for c in rest if _is_binary_column(table, c)]
    if len(binary) == 1:
        mapping.label = binary[0]
    elif binary:
        mapping.category_columns = binary
        if version.label_scheme == LabelScheme.CATEGORIES:
            mapping.category_codes = {c: guess_label(c, version) or "" for c in binary}
            mapping.category_codes = {c: code for c, code in mapping.category_codes.items() if code}
    return mapping


def label_values(table: Table, mapping: Mapping, limit: int = 40) -> list[tuple[str, int]]:
    """The distinct values of the label column(s), most frequent first (with their counts), for a value map."""
    counts: Counter[str] = Counter()
    for column in [mapping.label, mapping.prompt_label]:
        if column and column in table.columns:
            counts.update(cell_text(row.get(column)).strip() for row in table.rows)
    counts.pop("", None)
    return counts.most_common(limit)


def parse_pairs(text: str, *, what: str = "--map") -> dict[str, str]:
    """`spam=1,ham=0` as {"spam": "1", "ham": "0"} (a value may map to nothing: `unsure=` skips its rows)."""
    pairs: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        if "=" not in part:
            raise SetError(f"{what}: {part.strip()!r} should be value=label")
        key, _, value = part.partition("=")
        if not key.strip():
            raise SetError(f"{what}: {part.strip()!r} names no value")
        pairs[key.strip()] = value.strip()
    return pairs
