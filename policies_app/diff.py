"""Side-by-side diffs of two policy texts, and of the settings around them.

Plain difflib: line opcodes first, then a character-level pass over each pair of replaced lines so a
one-word edit in a long rule shows as that word, not as the whole line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Unchanged stretches longer than this are folded, keeping CONTEXT lines on each side of a change.
CONTEXT = 3


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row of the side-by-side table. `kind` is equal, chg, add, del or fold (a folded stretch)."""

    kind: str
    left_number: int | None = None
    left_html: SafeString = mark_safe("")
    right_number: int | None = None
    right_html: SafeString = mark_safe("")
    folded: int = 0  # lines hidden in a fold row

    @property
    def left_class(self) -> str:
        return {"chg": "chg", "del": "del", "add": "empty"}.get(self.kind, "")

    @property
    def right_class(self) -> str:
        return {"chg": "chg", "add": "add", "del": "empty"}.get(self.kind, "")


@dataclass(frozen=True, slots=True)
class TextDiff:
    rows: list[DiffRow]
    added: int
    removed: int
    changed: int

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _inline(old: str, new: str) -> tuple[SafeString, SafeString]:
    """Both lines, escaped, with the characters that differ wrapped in <del> (left) and <ins> (right)."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    left: list[str] = []
    right: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            left.append(escape(old[i1:i2]))
            right.append(escape(new[j1:j2]))
            continue
        if i2 > i1:
            left.append(f"<del>{escape(old[i1:i2])}</del>")
        if j2 > j1:
            right.append(f"<ins>{escape(new[j1:j2])}</ins>")
    return mark_safe("".join(left)), mark_safe("".join(right))  # every piece above is escaped


def _fold(rows: list[DiffRow]) -> list[DiffRow]:
    """Replace long runs of equal rows by one fold row, keeping CONTEXT rows around each change."""
    folded: list[DiffRow] = []
    run: list[DiffRow] = []

    def flush(at_start: bool, at_end: bool) -> None:
        keep_head = 0 if at_start else CONTEXT
        keep_tail = 0 if at_end else CONTEXT
        if len(run) <= keep_head + keep_tail + 1:
            folded.extend(run)
        else:
            folded.extend(run[:keep_head])
            folded.append(DiffRow(kind="fold", folded=len(run) - keep_head - keep_tail))
            folded.extend(run[len(run) - keep_tail :])
        run.clear()

    seen_change = False
    for row in rows:
        if row.kind == "equal":
            run.append(row)
            continue
        flush(at_start=not seen_change, at_end=False)
        seen_change = True
        folded.append(row)
    flush(at_start=not seen_change, at_end=True)
    return folded


def side_by_side(old_text: str, new_text: str, *, fold: bool = True) -> TextDiff:
    """The rows of a side-by-side diff from `old_text` (left) to `new_text` (right), numbered from 1."""
    old_lines = old_text.splitlines()
    new_lines = new_text.splitlines()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    rows: list[DiffRow] = []
    added = removed = changed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                line = escape(old_lines[i1 + k])
                rows.append(DiffRow("equal", i1 + k + 1, line, j1 + k + 1, line))
        elif tag == "delete":
            removed += i2 - i1
            rows.extend(DiffRow("del", left_number=i + 1, left_html=escape(old_lines[i])) for i in range(i1, i2))
        elif tag == "insert":
            added += j2 - j1
            rows.extend(DiffRow("add", right_number=j + 1, right_html=escape(new_lines[j])) for j in range(j1, j2))
        else:  # replace: pair lines up; the longer side's leftovers are plain deletions or insertions
            pairs = min(i2 - i1, j2 - j1)
            for k in range(pairs):
                left, right = _inline(old_lines[i1 + k], new_lines[j1 + k])
                rows.append(DiffRow("chg", i1 + k + 1, left, j1 + k + 1, right))
            changed += pairs
            for i in range(i1 + pairs, i2):
                removed += 1
                rows.append(DiffRow("del", left_number=i + 1, left_html=escape(old_lines[i])))
            for j in range(j1 + pairs, j2):
                added += 1
                rows.append(DiffRow("add", right_number=j + 1, right_html=escape(new_lines[j])))
    return TextDiff(rows=_fold(rows) if fold else rows, added=added, removed=removed, changed=changed)


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    old: str
    new: str


# The settings that change what the model is asked to answer, besides the text.
COMPARED_FIELDS = (
    ("label_scheme", "Label scheme"),
    ("labels", "Labels"),
    ("output_format", "Output format"),
    ("reasoning_effort", "Reasoning effort"),
)


def _shown(version: Any, field: str) -> str:
    if field == "labels":
        return ", ".join(getattr(version, field) or []) or "—"
    display = getattr(version, f"get_{field}_display", None)
    return str(display()) if display else str(getattr(version, field))


def changed_settings(old: Any, new: Any) -> list[FieldChange]:
    """The compared settings whose values differ between two versions, in display form."""
    return [
        FieldChange(label, _shown(old, field), _shown(new, field))
        for field, label in COMPARED_FIELDS
        if getattr(old, field) != getattr(new, field)
    ]
