"""Write the statements of reasons of a period as Transparency Database submissions (JSON batches)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from enforcement import exports


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = ("Write statements of reasons applied from --since to --until (inclusive) to --out as a JSON array "
            "of submissions, each the body of one POST /api/v1/statements (at most 100 statements).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, type=_day)
        parser.add_argument("--until", type=_day)
        parser.add_argument("--out", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            batches = exports.submission_batches(options["since"], options["until"])
        except exports.ExportError as exc:
            raise CommandError(str(exc)) from exc
        with open(options["out"], "w", encoding="utf-8") as out:
            json.dump(batches, out, indent=1, ensure_ascii=False)
        count = sum(len(b["statements"]) for b in batches)
        self.stdout.write(f"{count} statements in {len(batches)} batches written to {options['out']}")
