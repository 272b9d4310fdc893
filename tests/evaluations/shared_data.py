"""Where the public labelled data lives (../shared/data), and a skip that says so where it is missing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TEEN = DATA / "teen-safety"
SPAM_SET = DATA / "spam-policy" / "golden_dataset.csv"
SPAM_POLICY = DATA / "spam-policy" / "policy.txt"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"the public policy data is missing ({path.resolve()}); these tests need ../shared/data")
    return path


def teen_csvs() -> list[Path]:
    return sorted(need(TEEN / "datasets").glob("*.csv"))


def raw_rows(path: Path) -> list[list[str]]:
    """A CSV's records as the csv module reads them, independently of evaluations.files."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))
