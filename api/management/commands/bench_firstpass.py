"""Benchmark the first pass (see bench/firstpass.py and bench/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = ("First-pass scoring items/s on one core, the share escalated at recall 0.95, and rankers and "
            "thresholds side by side on the public labelled sets")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--items", type=int, default=200_000)
        parser.add_argument("--batch", type=int, default=1000)
        parser.add_argument("--splits", type=int, default=50)
        parser.add_argument("--sets", nargs="*", default=[], help="more labelled CSV files to compare rankers on")

    def handle(self, *args: Any, **options: Any) -> None:
        from bench import firstpass

        firstpass.main(items=options["items"], batch=options["batch"], splits=options["splits"],
                       sets=[Path(p) for p in options["sets"]], write=self.stdout.write)
