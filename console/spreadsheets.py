"""Cells of the CSV files the console exports (the audit log, an evaluation run's results), written so
that opening one in a spreadsheet never runs what somebody typed into it."""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: one that starts like a formula ("=HYPERLINK(...)", "+1", "@SUM")
    gets a leading apostrophe, so opening the export never runs what a user typed into a name or a note."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
